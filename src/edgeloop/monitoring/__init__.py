"""On-device monitoring: mergeable sketches of features, categories and predictions, and the
drift statistics computed on them (or on samples).

Everything imported eagerly here is pure numpy and standard library, so it runs on devices:
the sketches, the drift tests, a model version's :class:`Reference` and the
:class:`WindowSketch` a device keeps. The server side (storing and merging windows from every
source) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names
from edgeloop.monitoring.drift import (
    TESTS,
    DatasetDrift,
    DriftTest,
    FeatureDrift,
    choose_test,
    dataset_drift,
    drift_by_feature,
    feature_drift,
)
from edgeloop.monitoring.reference import Reference, build_reference
from edgeloop.monitoring.sketch import (
    CategoryCounter,
    FeatureSketch,
    Histogram,
    NumericSummary,
    PredictionSketch,
    QuantileSketch,
    TopK,
)
from edgeloop.monitoring.window import WindowSketch, probabilities

if TYPE_CHECKING:
    from edgeloop.monitoring._batch import sketch_batch
    from edgeloop.monitoring._ingest import (
        MergedWindow,
        SketchWindowIn,
        ingest_window,
        merged_windows,
    )

__all__ = [
    "TESTS",
    "CategoryCounter",
    "DatasetDrift",
    "DriftTest",
    "FeatureDrift",
    "FeatureSketch",
    "Histogram",
    "MergedWindow",
    "NumericSummary",
    "PredictionSketch",
    "QuantileSketch",
    "Reference",
    "SketchWindowIn",
    "TopK",
    "WindowSketch",
    "build_reference",
    "choose_test",
    "dataset_drift",
    "drift_by_feature",
    "feature_drift",
    "ingest_window",
    "merged_windows",
    "probabilities",
    "sketch_batch",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._batch": ("sketch_batch",),
        "._ingest": ("MergedWindow", "SketchWindowIn", "ingest_window", "merged_windows"),
    },
)
