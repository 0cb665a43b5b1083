"""A monitoring window: what a device (or any other source) saw of a model's inputs and outputs
during one telemetry window, as mergeable sketches.

This module runs **on devices**: numpy, the standard library and :mod:`edgeloop.errors` only.

A :class:`WindowSketch` holds one :class:`~edgeloop.monitoring.sketch.FeatureSketch` per model
input feature (the feature vector *after* the feature block, binned on the reference's edges)
and, for a classifier, a :class:`~edgeloop.monitoring.sketch.PredictionSketch` (predicted-class
counts and confidences). Make one with :meth:`Reference.new_window
<edgeloop.monitoring.reference.Reference.new_window>`, so that its bins are the reference's
and the server can merge windows from thousands of devices and compare them with the
reference bin for bin.

**Update cost.** ``update(X, proba)`` copies small batches into a row buffer of
``buffer_rows`` rows (64 by default) and folds the buffer into the sketches with the
vectorised code when it fills; a batch of ``buffer_rows`` rows or more goes straight to the
sketches. Each sample therefore costs O(1) amortised per feature (measured on a shared 2-core
machine: one-row updates of 20 features 23-87 µs per inference, i.e. 0.2-0.9 million
feature-samples per second; batches about 5 million feature-samples per second).

**Memory per feature** (the bound, whatever the data): the quantile sketch keeps at most
``2 * max_buckets`` int64 buckets (256 buckets by default: 4,096 bytes), the histogram
``bins + 1`` float64 edges and ``bins + 2`` int64 counts (344 bytes for 20 bins) and the row
buffer ``buffer_rows`` float64 (512 bytes): **at most 4.95 KB of numpy arrays per feature**,
plus about 1.5 KB of Python objects (measured with tracemalloc: 6.3-6.5 KB per feature in
all once both quantile stores are full, which N(0, 1) data reaches within an hour). With the
default relative accuracy (0.02) a quantile store spans a factor of about 28,000 (4.4
decades) before its smallest-magnitude buckets fold into one; the histogram stays exact and
bounds every quantile estimate to its bin.

**Merging** is associative and commutative: exactly for counts, histograms, minima, maxima
and quantile buckets; up to float rounding for means, variances and confidence sums.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._sketch_codec import (
    MAX_BODY_BYTES,
    Reader,
    Writer,
    check_type,
    pack,
    parse_dict,
    unpack,
)
from edgeloop.monitoring.sketch import FeatureSketch, PredictionSketch

__all__ = [
    "DEFAULT_MAX_BUCKETS",
    "DEFAULT_RELATIVE_ACCURACY",
    "MAX_BINS",
    "MAX_CLASSES",
    "MAX_FEATURES",
    "PACKED_KEY",
    "ScoreKind",
    "WindowSketch",
    "feature_matrix",
    "probabilities",
]

DEFAULT_RELATIVE_ACCURACY = 0.02
"""The quantile sketches' relative accuracy on devices (and in their reference)."""
DEFAULT_MAX_BUCKETS = 256
"""The most quantile buckets per sign and feature on devices (4 KB of int64 for both)."""
MAX_FEATURES = 1024
"""The most features a window (or a reference) may have."""
MAX_BINS = 1024
"""The most histogram bins per feature."""
MAX_CLASSES = 1024
"""The most classes of a prediction sketch."""
PACKED_KEY = "packed"
"""The key of a window's compact wire form, ``{"packed": base64 of to_bytes()}``."""
_MAX_QUANTILE_BUCKETS = 4096
_BUFFER_ROWS = 64
_WINDOW_CODE = 7

ScoreKind = Literal["logits", "probabilities", "auto"]


def feature_matrix(x: object, n_features: int) -> np.ndarray:
    """``x`` as a float64 ``(rows, n_features)`` matrix.

    ``(n, n_features)`` is taken as it is; one sample ``(n_features,)`` becomes one row;
    windows ``(n, length, n_features)``, or flattened ``(n, length * n_features)`` in
    row-major order, become ``n * length`` rows (a 1-D CNN's input: one feature per axis).
    """
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"features must be numbers: {exc}") from exc
    f = n_features
    if a.ndim == 1 and a.size == f:
        return a.reshape(1, f)
    if a.ndim == 2 and a.shape[1] == f:
        return a
    if a.ndim == 2 and f and a.shape[1] and a.shape[1] % f == 0:
        return a.reshape(-1, f)
    if a.ndim == 3 and a.shape[2] == f:
        return a.reshape(-1, f)
    raise ValidationFailed(
        f"features must have shape (n, {f}) (or windows (n, length, {f})), got {a.shape}",
        details={"field": "X"},
    )


def probabilities(scores: object, kind: ScoreKind = "auto") -> np.ndarray:
    """Class probabilities ``(n, classes)`` from a model's scores ``(n, units)``.

    One unit is a binary logit: ``[1 - sigmoid(s), sigmoid(s)]``. ``"logits"`` applies a
    softmax, ``"probabilities"`` only renormalises rows (tree ensembles' mean leaf shares),
    ``"auto"`` keeps rows that already are probabilities (non-negative, summing to 1 within
    1e-3) and applies a softmax otherwise.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s.reshape(1, -1)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValidationFailed(f"scores must have shape (n, units), got {s.shape}")
    if s.shape[1] == 1:
        p = np.empty_like(s[:, 0])
        pos = s[:, 0] >= 0
        p[pos] = 1.0 / (1.0 + np.exp(-s[pos, 0]))
        e = np.exp(s[~pos, 0])
        p[~pos] = e / (1.0 + e)
        return np.column_stack((1.0 - p, p))
    if kind not in ("logits", "probabilities", "auto"):
        raise ValidationFailed(f"kind must be logits, probabilities or auto, got {kind!r}")
    if kind == "auto":
        sums = s.sum(axis=1)
        kind = "probabilities" if (s >= 0).all() and np.allclose(sums, 1.0, atol=1e-3) else "logits"
    if kind == "probabilities":
        p = np.maximum(s, 0.0)
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / s.shape[1])
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class WindowSketch:
    """One :class:`FeatureSketch` per feature (``features``, in the reference's order), an
    optional :class:`PredictionSketch` (``prediction``) and ``count``, the samples seen.

    >>> from edgeloop.monitoring.reference import build_reference
    >>> rng = np.random.default_rng(0)
    >>> ref = build_reference(rng.normal(size=(500, 2)), ["a", "b"], labels=["no", "yes"],
    ...                       proba=rng.dirichlet([1, 1], 500))
    >>> w = ref.new_window()
    >>> w.update(rng.normal(size=(10, 2)), rng.dirichlet([1, 1], 10))
    >>> w.count, w.features["a"].count, w.prediction.count
    (10, 10, 10)
    """

    __slots__ = (
        "_buf",
        "_conf",
        "_count",
        "_features",
        "_names",
        "_pending",
        "_pred",
        "_prediction",
        "_rows",
    )

    def __init__(
        self,
        features: Mapping[str, FeatureSketch],
        prediction: PredictionSketch | None = None,
        count: int = 0,
        *,
        buffer_rows: int = _BUFFER_ROWS,
    ) -> None:
        if not isinstance(features, Mapping) or not all(
            isinstance(k, str) and isinstance(v, FeatureSketch) for k, v in features.items()
        ):
            raise ValidationFailed("features must map feature names to FeatureSketch objects")
        if len(features) > MAX_FEATURES:
            raise ValidationFailed(f"a window holds at most {MAX_FEATURES} features")
        if prediction is not None and not isinstance(prediction, PredictionSketch):
            raise ValidationFailed("prediction must be a PredictionSketch or None")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationFailed(f"count must be an integer >= 0, got {count!r}")
        self._features = dict(features)
        self._names = list(self._features)
        self._prediction = prediction
        self._count = count
        rows = max(1, int(buffer_rows))
        self._buf = np.empty((rows, len(self._names)), dtype=np.float64)
        self._rows = 0
        self._pending = 0
        self._pred = np.empty(rows if prediction is not None else 0, dtype=np.int64)
        self._conf = np.empty(rows if prediction is not None else 0, dtype=np.float64)

    # state ------------------------------------------------------------------------------

    @property
    def features(self) -> dict[str, FeatureSketch]:
        """The feature sketches, by name (buffered rows folded in first)."""
        self.flush()
        return self._features

    @property
    def prediction(self) -> PredictionSketch | None:
        """The prediction sketch (None for a window without class probabilities)."""
        self.flush()
        return self._prediction

    @property
    def count(self) -> int:
        """Samples seen (one per row of ``X`` given to :meth:`update`)."""
        return self._count

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    def flush(self) -> None:
        """Fold the buffered rows (and predictions) into the sketches."""
        k, p = self._rows, self._pending
        if k:
            self._rows = 0
            block = self._buf[:k]
            for j, name in enumerate(self._names):
                self._features[name].update(block[:, j])
        if p and self._prediction is not None:
            self._pending = 0
            self._prediction.update_predictions(self._pred[:p], self._conf[:p])

    # updating ---------------------------------------------------------------------------

    def update(self, X: object, proba: object | None = None) -> None:
        """Add a batch: ``X`` ``(n, n_features)`` (or windows, see :func:`feature_matrix`) and,
        for a window with a prediction sketch, the class probabilities ``(n, n_classes)``."""
        try:
            a = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(f"features must be numbers: {exc}") from exc
        rows = feature_matrix(a, len(self._names))
        n = int(a.shape[0]) if a.ndim > 1 else 1
        predicted = confidence = None
        if proba is not None:
            if self._prediction is None:
                raise ValidationFailed(
                    "this window has no prediction sketch (its reference has no class "
                    "probabilities): pass proba=None",
                    details={"field": "proba"},
                )
            p = np.asarray(proba, dtype=np.float64)
            if p.ndim == 1:
                p = p.reshape(1, -1)
            if p.shape != (n, self._prediction.n_classes):
                raise ValidationFailed(
                    f"proba must have shape ({n}, {self._prediction.n_classes}), got {p.shape}",
                    details={"field": "proba"},
                )
            predicted = p.argmax(axis=1)
            confidence = p[np.arange(n), predicted]
            if not np.all(np.isfinite(confidence)):
                raise ValidationFailed("proba must be finite", details={"field": "proba"})
        m = rows.shape[0]
        cap = self._buf.shape[0]
        if m >= cap or (predicted is not None and n >= cap):
            self.flush()
            for j, name in enumerate(self._names):
                self._features[name].update(rows[:, j])
            if predicted is not None and self._prediction is not None:
                self._prediction.update_predictions(predicted, confidence)
        else:
            if self._rows + m > cap or (predicted is not None and self._pending + n > cap):
                self.flush()
            self._buf[self._rows : self._rows + m] = rows
            self._rows += m
            if predicted is not None and confidence is not None:
                self._pred[self._pending : self._pending + n] = predicted
                self._conf[self._pending : self._pending + n] = confidence
                self._pending += n
        self._count += n

    # merging ----------------------------------------------------------------------------

    def _check_mergeable(self, other: WindowSketch) -> None:
        if not isinstance(other, WindowSketch):
            raise ValidationFailed(f"cannot merge a WindowSketch with {type(other).__name__}")
        if self._names != other._names:
            missing = sorted(set(self._names) ^ set(other._names))
            detail = f"features {missing} are in one only" if missing else "feature order differs"
            raise ValidationFailed(f"window sketches differ: {detail}")
        if (self._prediction is None) != (other._prediction is None):
            raise ValidationFailed("window sketches differ: only one has a prediction sketch")

    def merge(self, other: WindowSketch) -> WindowSketch:
        """A new window of both (same features, edges and classes required)."""
        out = self.copy()
        out.merge_inplace(other)
        return out

    def merge_inplace(self, other: WindowSketch) -> None:
        """Fold ``other`` into this window."""
        self._check_mergeable(other)
        self.flush()
        other.flush()
        for name in self._names:  # check every feature before changing any
            self._features[name].histogram._check_mergeable(other._features[name].histogram)
            self._features[name].sketch._check_mergeable(other._features[name].sketch)
        if self._prediction is not None and other._prediction is not None:
            self._prediction._check_mergeable(other._prediction)
            self._prediction.merge_inplace(other._prediction)
        for name in self._names:
            self._features[name].merge_inplace(other._features[name])
        self._count += other._count

    def copy(self) -> WindowSketch:
        self.flush()
        return WindowSketch(
            {k: v.copy() for k, v in self._features.items()},
            self._prediction.copy() if self._prediction is not None else None,
            self._count,
            buffer_rows=self._buf.shape[0],
        )

    def empty_like(self) -> WindowSketch:
        """A window with the same features, edges and classes, and nothing counted."""
        features = {}
        for name, fs in self._features.items():
            q = fs.sketch
            features[name] = FeatureSketch(fs.edges, q.relative_accuracy, q.max_buckets)
        prediction = self._prediction
        return WindowSketch(
            features,
            PredictionSketch(prediction.n_classes) if prediction is not None else None,
            buffer_rows=self._buf.shape[0],
        )

    def nbytes(self) -> int:
        """Bytes of live numpy arrays: the sketches and the row buffer."""
        total = sum(fs.nbytes() for fs in self._features.values())
        total += self._buf.nbytes + self._pred.nbytes + self._conf.nbytes
        if self._prediction is not None:
            total += self._prediction.counts.nbytes + self._prediction.confidence_sums.nbytes
        return int(total)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WindowSketch):
            return NotImplemented
        return (
            self._names == other._names
            and self._count == other._count
            and self.features == other.features
            and self.prediction == other.prediction
        )

    __hash__ = None  # type: ignore[assignment]

    def almost_equal(self, other: WindowSketch, rel_tol: float = 1e-9) -> bool:
        """Exact counts, histograms and quantile buckets; means, variances and confidence
        sums within ``rel_tol``."""
        if self._names != other._names or self._count != other._count:
            return False
        mine, theirs = self.features, other.features
        if not all(mine[n].almost_equal(theirs[n], rel_tol) for n in self._names):
            return False
        a, b = self.prediction, other.prediction
        if a is None or b is None:
            return a is None and b is None
        return a.almost_equal(b, rel_tol)

    def __repr__(self) -> str:
        pred = "none" if self._prediction is None else str(self._prediction.n_classes)
        return f"WindowSketch(features={len(self._names)}, classes={pred}, count={self._count})"

    # serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "window_sketch", "count", "features": {name: FeatureSketch dict},
        "prediction": PredictionSketch dict or None}`` (JSON-able; feature order kept)."""
        features = self.features
        prediction = self.prediction
        return {
            "type": "window_sketch",
            "count": self._count,
            "features": {name: features[name].to_dict() for name in self._names},
            "prediction": prediction.to_dict() if prediction is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSketch:
        """The inverse of :meth:`to_dict`; :class:`ValidationFailed` naming what is wrong
        (and refusing more than :data:`MAX_FEATURES` features, :data:`MAX_BINS` bins,
        4,096 quantile buckets or :data:`MAX_CLASSES` classes)."""
        check_type(data, "window_sketch")

        def build() -> WindowSketch:
            raw = data["features"]
            if not isinstance(raw, Mapping):
                raise ValidationFailed("window_sketch features must map names to sketches")
            if len(raw) > MAX_FEATURES:
                raise ValidationFailed(
                    f"window_sketch has {len(raw)} features; at most {MAX_FEATURES} are allowed"
                )
            features: dict[str, FeatureSketch] = {}
            for name, part in raw.items():
                _check_feature_dict(name, part)
                try:
                    features[str(name)] = FeatureSketch.from_dict(part)
                except ValidationFailed as exc:
                    raise ValidationFailed(f"feature {name!r}: {exc.message}") from exc
            pred = data.get("prediction")
            prediction = None
            if pred is not None:
                n = pred.get("n_classes") if isinstance(pred, Mapping) else None
                if isinstance(n, int) and n > MAX_CLASSES:
                    raise ValidationFailed(f"prediction has {n} classes; at most {MAX_CLASSES}")
                prediction = PredictionSketch.from_dict(pred)
                if not np.all(np.isfinite(prediction.confidence_sums)):
                    raise ValidationFailed("prediction confidence sums must be finite")
            return cls(features, prediction, data["count"])

        return parse_dict("window_sketch", build)

    def _write(self, w: Writer) -> None:
        features, prediction = self.features, self.prediction
        w.u64(self._count)
        w.u64(len(self._names))
        for name in self._names:
            w.text(name)
            features[name]._write(w)
        w.u8(0 if prediction is None else 1)
        if prediction is not None:
            prediction._write(w)

    @classmethod
    def _read(cls, r: Reader) -> WindowSketch:
        """The inverse of :meth:`_write`, with the limits :meth:`from_dict` applies (checked
        before anything is allocated for them)."""
        count, n = r.u64(), r.u64()
        if n > MAX_FEATURES:
            raise ValidationFailed(
                f"window_sketch has {n} features; at most {MAX_FEATURES} are allowed"
            )
        features = {}
        for _ in range(n):
            name = r.text()
            if not name or len(name) > 256:
                raise ValidationFailed(f"feature names must be 1-256 characters, got {name!r}")
            if name in features:
                raise ValidationFailed(f"feature {name!r} appears twice")
            try:
                part = FeatureSketch._read(r, _MAX_QUANTILE_BUCKETS)
            except ValidationFailed as exc:
                raise ValidationFailed(f"feature {name!r}: {exc.message}") from exc
            bins = part.edges.size - 1
            if bins > MAX_BINS:
                raise ValidationFailed(f"feature {name!r} has {bins} bins; at most {MAX_BINS}")
            features[name] = part
        prediction = None
        if r.u8():
            prediction = PredictionSketch._read(r)
            if prediction.n_classes > MAX_CLASSES:
                raise ValidationFailed(
                    f"prediction has {prediction.n_classes} classes; at most {MAX_CLASSES}"
                )
            if not np.all(np.isfinite(prediction.confidence_sums)):
                raise ValidationFailed("prediction confidence sums must be finite")
        return cls(features, prediction, count)

    def to_bytes(self) -> bytes:
        """Compact binary form (every feature's sketch, then the prediction sketch; zlib)."""
        w = Writer()
        self._write(w)
        return pack(_WINDOW_CODE, w.getvalue())

    def to_packed(self) -> dict[str, str]:
        """The compact wire form: ``{"packed": base64 of to_bytes()}`` (what devices send;
        about a sixth of the :meth:`to_dict` JSON)."""
        return {PACKED_KEY: base64.b64encode(self.to_bytes()).decode("ascii")}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, max_bytes: int = MAX_BODY_BYTES) -> WindowSketch:
        """A window from either wire form: :meth:`to_dict`'s JSON or :meth:`to_packed`'s
        ``{"packed": "<base64>"}`` (whose body may inflate to at most ``max_bytes``); the
        same limits and :class:`ValidationFailed` messages either way."""
        if not isinstance(data, Mapping) or PACKED_KEY not in data:
            return cls.from_dict(data)
        if set(data) != {PACKED_KEY}:
            extra = sorted(str(k) for k in data if k != PACKED_KEY)
            raise ValidationFailed(
                f"a packed window_sketch is {{{PACKED_KEY!r}: base64}} alone; remove {extra}"
            )
        text = data[PACKED_KEY]
        if not isinstance(text, str):
            raise ValidationFailed(
                f"packed must be base64 of WindowSketch.to_bytes(), got {type(text).__name__}"
            )
        limit = (max_bytes + 4096) * 4 // 3 + 4  # compressed bytes never outgrow the body by much
        if len(text) > limit:
            raise ValidationFailed(f"packed holds {len(text)} characters; at most {limit}")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(f"packed is not valid base64: {exc}") from exc
        return cls.from_bytes(raw, max_bytes=max_bytes)

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> WindowSketch:
        """The inverse of :meth:`to_bytes`, with the limits of :meth:`from_dict`;
        :class:`ValidationFailed` for bytes that are not a window, are corrupt, have bytes
        left over, or whose body inflates to more than ``max_bytes`` (refused without
        inflating more than that)."""
        r = unpack(data, _WINDOW_CODE, "WindowSketch", max_bytes=max_bytes)
        out = cls._read(r)
        r.done()
        return out


def _check_feature_dict(name: object, part: object) -> None:
    """Refuse oversized parts before building anything from them."""
    if not isinstance(name, str) or not name or len(name) > 256:
        raise ValidationFailed(f"feature names must be 1-256 characters, got {name!r}")
    if not isinstance(part, Mapping):
        raise ValidationFailed(f"feature {name!r} must be a feature_sketch dict")
    hist = part.get("histogram")
    edges = hist.get("edges") if isinstance(hist, Mapping) else None
    if isinstance(edges, list) and len(edges) > MAX_BINS + 1:
        raise ValidationFailed(f"feature {name!r} has {len(edges) - 1} bins; at most {MAX_BINS}")
    q = part.get("quantiles")
    if isinstance(q, Mapping):
        mb = q.get("max_buckets")
        if isinstance(mb, int) and mb > _MAX_QUANTILE_BUCKETS:
            raise ValidationFailed(
                f"feature {name!r} has max_buckets {mb}; at most {_MAX_QUANTILE_BUCKETS}"
            )
