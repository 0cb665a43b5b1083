"""On-device monitoring: mergeable sketches of features, categories and predictions, and the
drift statistics computed on them (or on samples).

Everything imported here is pure numpy and standard library, so it runs on devices.
"""

from __future__ import annotations

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
from edgeloop.monitoring.sketch import (
    CategoryCounter,
    FeatureSketch,
    Histogram,
    NumericSummary,
    PredictionSketch,
    QuantileSketch,
    TopK,
)

__all__ = [
    "TESTS",
    "CategoryCounter",
    "DatasetDrift",
    "DriftTest",
    "FeatureDrift",
    "FeatureSketch",
    "Histogram",
    "NumericSummary",
    "PredictionSketch",
    "QuantileSketch",
    "TopK",
    "choose_test",
    "dataset_drift",
    "drift_by_feature",
    "feature_drift",
]
