"""One window against the model version's reference: drift per feature, dataset drift,
prediction drift (class balance), confidence and its shift.

Everything here works on sketches (a :class:`~edgeloop.monitoring.reference.Reference` and a
merged :class:`~edgeloop.monitoring.window.WindowSketch`), never on raw samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring import PredictionSketch, feature_drift
from edgeloop.monitors._entities import TestOverride

if TYPE_CHECKING:
    from edgeloop.monitoring.reference import Reference
    from edgeloop.monitoring.window import WindowSketch

__all__ = ["drift_figures", "override_for"]


def override_for(tests: Mapping[str, TestOverride], feature: str) -> TestOverride:
    """The feature's own test and threshold, what it leaves unset taken from ``*`` (a
    threshold only with the test it was given for), the rest the defaults."""
    own, every = tests.get(feature), tests.get("*")
    if own is None or every is None:
        return own or every or TestOverride()
    test = own.test or every.test
    threshold = own.threshold
    if threshold is None and test == every.test:
        threshold = every.threshold
    return TestOverride(test=test, threshold=threshold)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _feature_entry(reference: Any, current: Any, override: TestOverride) -> dict[str, Any]:
    counts = current.histogram.counts.tolist() if hasattr(current, "histogram") else None
    try:
        result = feature_drift(reference, current, test=override.test, threshold=override.threshold)
    except ValidationFailed as exc:
        return {"drifted": False, "error": exc.message, "counts": counts}
    return {
        "test": result.test,
        "statistic": _finite(result.statistic),
        "p_value": result.p_value,
        "score": _finite(result.score),
        "threshold": result.threshold,
        "drifted": result.drifted,
        "error_bound": _finite(result.error_bound),
        "current_rows": result.current_rows,
        "counts": counts,
    }


def _prediction_figures(
    reference: PredictionSketch | None, current: PredictionSketch | None, labels: list[str]
) -> tuple[dict[str, float | None], dict[str, Any]]:
    metrics: dict[str, float | None] = dict.fromkeys(
        (
            "prediction_drift",
            "prediction_drift_score",
            "class_balance_shift",
            "mean_confidence",
            "reference_confidence",
            "confidence_shift",
        )
    )
    if current is None or current.count == 0:
        return metrics, {}
    metrics["mean_confidence"] = _finite(current.mean_confidence)
    details: dict[str, Any] = {"labels": labels, "current": current.class_shares().tolist()}
    if reference is None or reference.count == 0 or reference.n_classes != current.n_classes:
        return metrics, details
    ref_shares = reference.class_shares()
    details["reference"] = ref_shares.tolist()
    metrics["class_balance_shift"] = float(0.5 * np.abs(current.class_shares() - ref_shares).sum())
    metrics["reference_confidence"] = _finite(reference.mean_confidence)
    if metrics["mean_confidence"] is not None and metrics["reference_confidence"] is not None:
        metrics["confidence_shift"] = metrics["mean_confidence"] - metrics["reference_confidence"]
    try:
        result = feature_drift(reference, current)
    except ValidationFailed as exc:
        details["error"] = exc.message
        return metrics, details
    metrics["prediction_drift"] = float(result.drifted)
    metrics["prediction_drift_score"] = _finite(result.score)
    details.update(test=result.test, score=_finite(result.score), threshold=result.threshold)
    return metrics, details


def drift_figures(
    reference: Reference,
    current: WindowSketch,
    tests: Mapping[str, TestOverride],
    drift_share: float,
) -> tuple[dict[str, float | None], dict[str, dict[str, Any]], dict[str, Any]]:
    """``(metrics, features, prediction details)`` of ``current`` against ``reference``.

    A feature whose test cannot run (no finite value in the window, a test that does not
    apply) gets an ``error`` and counts in neither side of the drift share. The dataset
    drifts when the share of drifted features is >= ``drift_share`` (Evidently's rule, as
    :func:`edgeloop.monitoring.dataset_drift`).
    """
    features: dict[str, dict[str, Any]] = {}
    tested = {}
    for name, ref_sketch in reference.features.items():
        cur_sketch = current.features.get(name)
        if cur_sketch is None:
            features[name] = {"drifted": False, "error": "the window has no sketch of it"}
            continue
        entry = _feature_entry(ref_sketch, cur_sketch, override_for(tests, name))
        features[name] = entry
        if "error" not in entry:
            tested[name] = entry["drifted"]
    metrics: dict[str, float | None] = {
        "drift_share": None,
        "dataset_drift": None,
        "drifted_features": None,
    }
    if tested:
        drifted = sum(1 for flag in tested.values() if flag)
        share = drifted / len(tested)
        metrics.update(
            drift_share=share,
            dataset_drift=float(share >= drift_share),
            drifted_features=float(drifted),
        )
    prediction_metrics, prediction = _prediction_figures(
        reference.prediction, current.prediction, list(reference.labels)
    )
    metrics.update(prediction_metrics)
    return metrics, features, prediction
