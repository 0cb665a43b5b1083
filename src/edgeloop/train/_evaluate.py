"""Evaluation reports for classifiers and regressors, overall and per slice.

:func:`evaluate_classifier` and :func:`evaluate_regressor` compute the usual metrics (with
``sklearn.metrics``; per-class ones from the confusion matrix, as sklearn with
``zero_division=0``) and repeat them on every value of each slice column (device type, subject
group, ...), so a model that is good on average but bad on one kind of device shows it. A
report's :meth:`~ClassificationReport.to_metrics` flattens it to ``name -> float`` for
``log_metrics``; :meth:`~ClassificationReport.to_dict` keeps everything, JSON-ready.

Conventions:

* Labels are compared by value and reported as ``str(label)``. Without ``labels`` they are the
  sorted union of ``y_true`` and ``y_pred``; with ``proba`` they name its columns, in order.
* Per-class precision, recall and F1 are 0 where undefined (no predictions / no samples).
  Macro averages are over the labels that occur in ``y_true`` or ``y_pred`` (sklearn's
  default), so a slice is not penalised for classes it never sees; balanced accuracy is the
  mean recall over the labels in ``y_true``.
* ``proba`` rows must be probabilities (in [0, 1], summing to 1 within 1e-3; they are
  renormalised). ``roc_auc`` is the macro one-vs-rest AUC (the positive column's AUC for two
  labels); it is ``None`` without ``proba`` or when a label has no sample in ``y_true``.
* Calibration is of the top label: confidences ``max(proba)`` fall in 10 equal bins on [0, 1]
  (the last closed); ``ece = sum(count/n * |accuracy - confidence|)`` over the bins, where
  accuracy is how often ``argmax(proba)`` is right.
* Regression: ``r2`` is ``None`` for fewer than 2 samples or a constant ``y_true``; ``mape``
  is a fraction (not percent) and ``None`` when ``y_true`` holds a zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

from edgeloop.errors import ValidationFailed

__all__ = [
    "ClassificationReport",
    "RegressionReport",
    "evaluate_classifier",
    "evaluate_regressor",
]

ArrayLike: TypeAlias = Sequence[Any] | npt.NDArray[Any]
N_BINS = 10
_HEADLINE = (
    *("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro"),
    *("roc_auc", "log_loss", "mae", "rmse", "r2", "mape", "n"),
)


def _flat(report: Mapping[str, Any]) -> dict[str, float]:
    """The scalar metrics of a report dict (``None`` left out)."""
    out = {k: float(report[k]) for k in _HEADLINE if report.get(k) is not None}
    if report.get("calibration", {}).get("ece") is not None:
        out["ece"] = float(report["calibration"]["ece"])
    return out


def _slice_metrics(slices: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, float]:
    return {
        f"slice.{column}={value}.{key}": number
        for column, groups in slices.items()
        for value, report in groups.items()
        for key, number in _flat(report).items()
    }


@dataclass
class ClassificationReport:
    """Classification metrics; ``slices[column][value]`` holds the same fields as a dict."""

    accuracy: float
    balanced_accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    per_class: dict[str, dict[str, float]]
    roc_auc: float | None
    log_loss: float | None
    confusion: list[list[int]]
    labels: list[str]
    calibration: dict[str, Any]
    n: int
    slices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return dataclasses.asdict(self)

    def to_metrics(self) -> dict[str, float]:
        """Flat metrics: ``accuracy``, ``f1_macro``, ``ece``, ``f1.<label>``, ``support.<label>``,
        ``slice.<column>=<value>.f1_macro``, ... (``None`` metrics are left out)."""
        out = _flat(self.to_dict())
        for label, stats in self.per_class.items():
            out |= {f"{key}.{label}": float(value) for key, value in stats.items()}
        return out | _slice_metrics(self.slices)


@dataclass
class RegressionReport:
    """Regression metrics; ``slices[column][value]`` holds the same fields as a dict."""

    mae: float
    rmse: float
    r2: float | None
    mape: float | None
    n: int
    slices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return dataclasses.asdict(self)

    def to_metrics(self) -> dict[str, float]:
        """Flat metrics: ``mae``, ``rmse``, ``r2``, ``mape``, ``n``, ``slice.<col>=<v>.mae``..."""
        return _flat(self.to_dict()) | _slice_metrics(self.slices)


def _values(name: str, values: ArrayLike, n: int | None = None) -> list[Any]:
    array = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    if array.ndim != 1 or (n is not None and len(array) != n):
        expected = "a 1-D sequence" + (f" of length {n}" if n is not None else "")
        raise ValidationFailed(f"{name} must be {expected}, got shape {array.shape}")
    return list(array.tolist())


def _sorted(values: set[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def encode_labels(
    y_true: ArrayLike, y_pred: ArrayLike | None, labels: Sequence[Any] | None, n_columns: int | None
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp] | None, list[Any]]:
    """Label indices of ``y_true`` and ``y_pred`` and the labels, validated."""
    true = _values("y_true", y_true)
    pred = None if y_pred is None else _values("y_pred", y_pred, len(true))
    if not true:
        raise ValidationFailed("y_true must hold at least one sample")
    names = list(labels) if labels is not None else _sorted(set(true) | set(pred or []))
    index = {label: i for i, label in enumerate(names)}
    if len(index) != len(names):
        raise ValidationFailed(f"labels must be distinct, got {names}")
    unknown = _sorted({v for v in true + (pred or []) if v not in index})
    if unknown:
        raise ValidationFailed(f"values {unknown[:10]} are not among the labels {names}")
    if n_columns is not None and n_columns != len(names):
        raise ValidationFailed(
            f"proba has {n_columns} columns but there are {len(names)} labels {names}; "
            "pass labels= in the order of proba's columns"
        )
    codes = np.array([index[v] for v in true], dtype=np.intp)
    return codes, None if pred is None else np.array([index[v] for v in pred], np.intp), names


def check_proba(proba: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    """``proba`` as float64 ``(n, n_labels)`` rows of probabilities, renormalised to sum to 1."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1:
        raise ValidationFailed(f"proba must have shape ({n}, n_labels), got {p.shape}")
    sums = p.sum(axis=1)
    if not np.isfinite(p).all() or (p < -1e-6).any() or (p > 1 + 1e-6).any():
        raise ValidationFailed("proba must hold probabilities in [0, 1]")
    if (np.abs(sums - 1) > 1e-3).any():
        raise ValidationFailed("proba rows must sum to 1 (within 1e-3)")
    clipped: npt.NDArray[np.float64] = np.clip(p, 0.0, 1.0)
    normalised: npt.NDArray[np.float64] = clipped / clipped.sum(axis=1, keepdims=True)
    return normalised


def _calibration(t: npt.NDArray[np.intp], p: npt.NDArray[np.float64] | None) -> dict[str, Any]:
    if p is None:
        return {"ece": None, "n_bins": N_BINS, "curve": []}
    confidence, hit = p.max(axis=1), (p.argmax(axis=1) == t).astype(np.float64)
    bins = np.minimum((confidence * N_BINS).astype(np.intp), N_BINS - 1)
    curve, ece = [], 0.0
    for b in np.unique(bins).tolist():
        mask = bins == b
        conf, acc, count = float(confidence[mask].mean()), float(hit[mask].mean()), int(mask.sum())
        ece += count / len(t) * abs(acc - conf)
        curve.append(
            {"lower": b / N_BINS, "upper": (b + 1) / N_BINS, "count": count}
            | {"confidence": conf, "accuracy": acc}
        )
    return {"ece": ece, "n_bins": N_BINS, "curve": curve}


def _classification(
    t: npt.NDArray[np.intp],
    p: npt.NDArray[np.intp],
    proba: npt.NDArray[np.float64] | None,
    names: list[Any],
) -> ClassificationReport:
    k = len(names)
    everything = list(range(k))
    confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    hits, support, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    seen = (support > 0) | (predicted > 0)
    roc_auc = log_loss = None
    if proba is not None and k >= 2:
        log_loss = float(skm.log_loss(t, proba, labels=everything))
        if (support > 0).all():
            scores = proba[:, 1] if k == 2 else proba
            roc_auc = float(skm.roc_auc_score(t, scores, multi_class="ovr", labels=everything))
    per_class = {
        str(name): {"precision": float(precision[i]), "recall": float(recall[i])}
        | {"f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }
    return ClassificationReport(
        accuracy=float(skm.accuracy_score(t, p)),
        balanced_accuracy=float(recall[support > 0].mean()),
        precision_macro=float(precision[seen].mean()),
        recall_macro=float(recall[seen].mean()),
        f1_macro=float(f1[seen].mean()),
        per_class=per_class,
        roc_auc=roc_auc,
        log_loss=log_loss,
        confusion=confusion.tolist(),
        labels=[str(name) for name in names],
        calibration=_calibration(t, proba),
        n=len(t),
    )


def _without_slices(report: ClassificationReport | RegressionReport) -> dict[str, Any]:
    return {k: v for k, v in report.to_dict().items() if k != "slices"}


def _groups(
    slices: Mapping[str, ArrayLike] | None, n: int
) -> Iterator[tuple[str, str, npt.NDArray[np.bool_]]]:
    """``(column, str(value), mask)`` for every value of every slice column."""
    for column, raw in (slices or {}).items():
        values = [None if v != v else v for v in _values(f"slices[{column!r}]", raw, n)]  # NaN
        keys = {value: i for i, value in enumerate(_sorted(set(values)))}
        codes = np.array([keys[v] for v in values], dtype=np.intp)
        for value, i in keys.items():
            yield column, str(value), codes == i


def evaluate_classifier(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: npt.ArrayLike | None = None,
    labels: Sequence[Any] | None = None,
    slices: Mapping[str, ArrayLike] | None = None,
) -> ClassificationReport:
    """Metrics of predicted labels (and class probabilities, if given) against the truth.

    ``proba`` is ``(n, n_labels)`` with columns in the order of ``labels``; ``slices`` maps a
    column name to one value per sample, and each value gets its own report in ``slices``.
    """
    shape = None if proba is None else np.shape(proba)
    n_columns = shape[1] if shape is not None and len(shape) == 2 else None
    t, p, names = encode_labels(y_true, y_pred, labels, n_columns)
    assert p is not None
    checked = None if proba is None else check_proba(proba, len(t))
    report = _classification(t, p, checked, names)
    for column, value, mask in _groups(slices, len(t)):
        sub = _classification(t[mask], p[mask], None if checked is None else checked[mask], names)
        report.slices.setdefault(column, {})[value] = _without_slices(sub)
    return report


def _regression(t: npt.NDArray[np.float64], p: npt.NDArray[np.float64]) -> RegressionReport:
    constant = len(t) < 2 or bool((t == t[0]).all())
    return RegressionReport(
        mae=float(skm.mean_absolute_error(t, p)),
        rmse=float(skm.root_mean_squared_error(t, p)),
        r2=None if constant else float(skm.r2_score(t, p)),
        mape=None if (t == 0).any() else float(skm.mean_absolute_percentage_error(t, p)),
        n=len(t),
    )


def evaluate_regressor(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, slices: Mapping[str, ArrayLike] | None = None
) -> RegressionReport:
    """MAE, RMSE, R², MAPE of predictions against the truth, overall and per slice value."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or t.shape != p.shape or len(t) == 0:
        raise ValidationFailed(
            f"y_true and y_pred must be 1-D, equal, non-empty: {t.shape}, {p.shape}"
        )
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValidationFailed("y_true and y_pred must be finite numbers")
    report = _regression(t, p)
    for column, value, mask in _groups(slices, len(t)):
        report.slices.setdefault(column, {})[value] = _without_slices(_regression(t[mask], p[mask]))
    return report
