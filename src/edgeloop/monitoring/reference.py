"""A model version's monitoring reference: the sketches of its training features (after the
feature block) and class probabilities, whose histogram edges every monitoring window reuses.

This module runs **on devices** (numpy, the standard library and :mod:`edgeloop.errors`
only): the agent reads ``monitoring/reference.json`` from its bundle and makes its windows
with :meth:`Reference.new_window`. The edge export writes that file
(``Reference.to_dict()`` as JSON) into the model version; the server reads it back with
``edgeloop.edge.load_reference(ws, model, version)``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = build_reference(rng.normal(size=(1000, 3)), ["rms", "kurtosis", "peak"],
...                       labels=["ok", "worn"], proba=rng.dirichlet([2, 1], 1000))
>>> ref.rows, ref.feature_names, len(ref.features["rms"].edges)
(1000, ['rms', 'kurtosis', 'peak'], 21)
>>> window = ref.new_window()
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, get_args

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._sketch_codec import check_type, parse_dict
from edgeloop.monitoring.sketch import FeatureSketch, PredictionSketch, reference_edges
from edgeloop.monitoring.window import (
    DEFAULT_MAX_BUCKETS,
    DEFAULT_RELATIVE_ACCURACY,
    MAX_BINS,
    MAX_CLASSES,
    MAX_FEATURES,
    ScoreKind,
    WindowSketch,
    feature_matrix,
    probabilities,
)

__all__ = ["REFERENCE_FORMAT", "REFERENCE_PATH", "Reference", "build_reference"]

REFERENCE_PATH = "monitoring/reference.json"
"""Where a model version (and its bundles) keep the reference."""
REFERENCE_FORMAT = "edgeloop-reference/1"


class Reference:
    """The reference of one model version: ``features`` (a :class:`FeatureSketch` per model
    input feature, edges chosen from the reference data), ``prediction`` (the reference's
    predicted classes and confidences, or None), ``labels`` (class names, in score order),
    ``rows`` (reference samples) and ``scores`` (how a device turns its model's scores into
    probabilities: ``"logits"``, ``"probabilities"`` or ``"auto"``, see
    :func:`~edgeloop.monitoring.window.probabilities`)."""

    __slots__ = ("features", "labels", "prediction", "rows", "scores")

    def __init__(
        self,
        features: Mapping[str, FeatureSketch],
        prediction: PredictionSketch | None,
        labels: Sequence[str],
        rows: int,
        scores: ScoreKind = "auto",
    ) -> None:
        if len(features) > MAX_FEATURES:
            raise ValidationFailed(f"a reference holds at most {MAX_FEATURES} features")
        if scores not in get_args(ScoreKind):
            raise ValidationFailed(f"scores must be logits, probabilities or auto, got {scores!r}")
        if prediction is not None and prediction.n_classes != len(labels):
            raise ValidationFailed(
                f"the prediction sketch has {prediction.n_classes} classes but there are "
                f"{len(labels)} labels"
            )
        self.features: dict[str, FeatureSketch] = dict(features)
        self.prediction = prediction
        self.labels = [str(label) for label in labels]
        self.rows = int(rows)
        self.scores: ScoreKind = scores

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    def new_window(self) -> WindowSketch:
        """An empty window binned like this reference (same edges, accuracy and classes)."""
        features = {
            name: FeatureSketch(fs.edges, fs.sketch.relative_accuracy, fs.sketch.max_buckets)
            for name, fs in self.features.items()
        }
        prediction = PredictionSketch(len(self.labels)) if self.prediction is not None else None
        return WindowSketch(features, prediction)

    def window(self, X: object, proba: object | None = None) -> WindowSketch:
        """A window of ``X`` (and ``proba``) binned like this reference."""
        w = self.new_window()
        w.update(X, proba if w.prediction is not None else None)
        return w

    def probabilities(self, scores: object) -> np.ndarray:
        """Class probabilities from a model's scores, as the reference's were made."""
        return probabilities(scores, self.scores)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return (
            list(self.features) == list(other.features)
            and self.features == other.features
            and self.prediction == other.prediction
            and (self.labels, self.rows, self.scores) == (other.labels, other.rows, other.scores)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Reference(features={len(self.features)}, labels={self.labels!r}, rows={self.rows})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``format``, ``rows``, ``labels``, ``scores``, ``features`` (name ->
        FeatureSketch dict, in order) and ``prediction``."""
        return {
            "type": "monitoring_reference",
            "format": REFERENCE_FORMAT,
            "rows": self.rows,
            "labels": list(self.labels),
            "scores": self.scores,
            "features": {name: fs.to_dict() for name, fs in self.features.items()},
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
        }

    def to_json(self) -> bytes:
        """The bytes of ``monitoring/reference.json``."""
        return (json.dumps(self.to_dict(), separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        check_type(data, "monitoring_reference")
        if data.get("format") != REFERENCE_FORMAT:
            raise ValidationFailed(
                f"reference format {data.get('format')!r} is not {REFERENCE_FORMAT!r}"
            )

        def build() -> Reference:
            # a window of the same layout checks names, sizes and every part
            shape = {"type": "window_sketch", "count": 0, "features": data["features"]}
            shape["prediction"] = data.get("prediction")
            window = WindowSketch.from_dict(shape)
            rows = data["rows"]
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
                raise ValidationFailed(f"reference rows must be an integer >= 0, got {rows!r}")
            labels = data["labels"]
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise ValidationFailed("reference labels must be a list of strings")
            return cls(window.features, window.prediction, labels, rows, data["scores"])

        return parse_dict("monitoring_reference", build)

    @classmethod
    def from_json(cls, data: bytes | str) -> Reference:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"the reference is not valid JSON: {exc}") from exc
        return cls.from_dict(parsed)


def build_reference(
    X: object,
    feature_names: Sequence[str] | None,
    *,
    labels: Sequence[str],
    proba: object | None = None,
    bins: int = 20,
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    max_buckets: int = DEFAULT_MAX_BUCKETS,
    scores: ScoreKind = "auto",
) -> Reference:
    """The reference of a model from its training features ``X`` ``(n, F)`` (for a model fed
    windows ``(n, length, F)``: one feature per axis) and, for a classifier, its class
    probabilities ``proba`` ``(n, len(labels))`` on them.

    Each feature's edges are its equal-mass quantile edges (``reference_edges(values, bins)``:
    about ``bins`` bins); ``feature_names`` default to ``f0, f1, …``.
    """
    a = np.asarray(X, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[0] < 1:
        raise ValidationFailed(
            f"X must be (n, features) or (n, length, features) with n >= 1, got {a.shape}",
            details={"field": "X"},
        )
    n_features = int(a.shape[-1])
    names = list(feature_names) if feature_names else [f"f{i}" for i in range(n_features)]
    if len(names) != n_features or len(set(names)) != len(names):
        raise ValidationFailed(
            f"feature_names must be {n_features} distinct names, got {len(names)}",
            details={"field": "feature_names"},
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValidationFailed(f"bins must be an integer in 1..{MAX_BINS}, got {bins!r}")
    if not 1 <= len(labels) <= MAX_CLASSES:
        raise ValidationFailed(f"labels must name 1..{MAX_CLASSES} classes")
    rows = feature_matrix(a, n_features)
    features: dict[str, FeatureSketch] = {}
    for j, name in enumerate(names):
        column = rows[:, j]
        fs = FeatureSketch(reference_edges(column, bins), relative_accuracy, max_buckets)
        fs.update(column)
        features[str(name)] = fs
    prediction = None
    if proba is not None:
        p = np.asarray(proba, dtype=np.float64)
        if p.shape != (a.shape[0], len(labels)):
            raise ValidationFailed(
                f"proba must have shape ({a.shape[0]}, {len(labels)}), got {p.shape}",
                details={"field": "proba"},
            )
        prediction = PredictionSketch(len(labels))
        prediction.update(p)
    return Reference(features, prediction, labels, int(a.shape[0]), scores)
