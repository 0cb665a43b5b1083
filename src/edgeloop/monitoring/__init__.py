"""On-device monitoring: mergeable sketches of features, categories and predictions.

Everything imported here is pure numpy and standard library, so it runs on devices.
"""

from __future__ import annotations

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
    "CategoryCounter",
    "FeatureSketch",
    "Histogram",
    "NumericSummary",
    "PredictionSketch",
    "QuantileSketch",
    "TopK",
]
