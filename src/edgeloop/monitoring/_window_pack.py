"""How the server stores monitoring windows, and merges thousands of them at once.

Every window of one model version shares one *layout* (feature names, histogram edges,
quantile accuracy and size, number of classes): the reference's. The layout is stored once;
each window is stored as its counts only, in a flat little-endian record (zlib'd)::

    b"ELWP" | u8 version | u32 F | u32 C | u64 count | u64 H | u64 P | u64 N
    i8[F] counts, nulls, zeros, pos offsets, pos lengths, neg offsets, neg lengths
    f8[F] min, max, mean, m2
    i8[H] histogram counts (all features)   i8[P] positive buckets   i8[N] negative buckets
    i8[C] prediction counts                 f8[C] confidence sums

:func:`merge_packed` decodes N records into arrays and merges them with a handful of numpy
reductions (no Python loop over windows and features): counts, histograms and quantile buckets
add exactly (the buckets with one ``bincount`` over their global positions, then the same
fold to ``max_buckets`` a pairwise merge applies), minima and maxima exactly, and the moments
with the N-way form of Chan's formula (equal to pairwise merging up to float rounding).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.sketch import (
    FeatureSketch,
    Histogram,
    NumericSummary,
    PredictionSketch,
    QuantileSketch,
)
from edgeloop.monitoring.window import WindowSketch

__all__ = ["Layout", "layout_of", "merge_packed", "pack_window"]

_MAGIC = b"ELWP"
_HEADER = struct.Struct("<4sBIIQQQQBBB")
_COUNT_DTYPES = ("<u1", "<u2", "<u4", "<i8")
_CHUNK = 128


def _narrow(a: np.ndarray) -> tuple[int, bytes]:
    """Non-negative counts in the narrowest of u1/u2/u4/i8 (the code, the bytes)."""
    top = int(a.max()) if a.size else 0
    code = 0 if top < 1 << 8 else 1 if top < 1 << 16 else 2 if top < 1 << 32 else 3
    return code, a.astype(_COUNT_DTYPES[code]).tobytes()


@dataclass(frozen=True)
class Layout:
    """What the windows of one model version share; ``digest`` names it."""

    features: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    relative_accuracy: float
    max_buckets: int
    n_classes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "edges": [list(e) for e in self.edges],
            "relative_accuracy": self.relative_accuracy,
            "max_buckets": self.max_buckets,
            "n_classes": self.n_classes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            tuple(str(f) for f in data["features"]),
            tuple(tuple(float(x) for x in e) for e in data["edges"]),
            float(data["relative_accuracy"]),
            int(data["max_buckets"]),
            None if data.get("n_classes") is None else int(data["n_classes"]),
        )

    @property
    def digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def describe_difference(self, other: Layout) -> str:
        if self.features != other.features:
            a, b = set(self.features), set(other.features)
            if a != b:
                return f"features {sorted(a ^ b)} are in one only"
            return "the features are in another order"
        for name, ea, eb in zip(self.features, self.edges, other.edges, strict=True):
            if ea != eb:
                return f"feature {name!r} has other histogram edges"
        if (self.relative_accuracy, self.max_buckets) != (
            other.relative_accuracy,
            other.max_buckets,
        ):
            return "the quantile sketches' relative_accuracy/max_buckets differ"
        return f"the number of classes differs ({self.n_classes} vs {other.n_classes})"


def layout_of(window: WindowSketch) -> Layout:
    """The layout of ``window``; its features must share one quantile accuracy and size."""
    features = window.features
    params = {(fs.sketch.relative_accuracy, fs.sketch.max_buckets) for fs in features.values()}
    if len(params) > 1:
        raise ValidationFailed("every feature of a window must use the same quantile accuracy")
    alpha, buckets = params.pop() if params else (0.02, 256)
    prediction = window.prediction
    return Layout(
        tuple(features),
        tuple(tuple(fs.edges.tolist()) for fs in features.values()),
        float(alpha),
        int(buckets),
        prediction.n_classes if prediction is not None else None,
    )


def pack_window(window: WindowSketch) -> bytes:
    """The stored form of ``window`` (its counts; the layout is stored apart)."""
    feats = list(window.features.values())
    prediction = window.prediction
    f = len(feats)
    ints = np.zeros((7, f), dtype="<i8")
    floats = np.zeros((4, f), dtype="<f8")
    hist, pos, neg = [], [], []
    for j, fs in enumerate(feats):
        s, q = fs.summary, fs.sketch
        q._flush()
        ints[:, j] = (
            s.count,
            s.nulls,
            q._zero,
            q._pos.offset,
            q._pos.counts.size,
            q._neg.offset,
            q._neg.counts.size,
        )
        floats[:, j] = (s.min, s.max, s.mean, s.m2)
        hist.append(fs.histogram.counts)
        pos.append(q._pos.counts)
        neg.append(q._neg.counts)
    h = np.concatenate(hist).astype("<i8") if hist else np.zeros(0, "<i8")
    p = np.concatenate(pos).astype("<i8") if pos else np.zeros(0, "<i8")
    n = np.concatenate(neg).astype("<i8") if neg else np.zeros(0, "<i8")
    c = 0 if prediction is None else prediction.n_classes
    (hc, hb), (pc, pb), (nc, nb) = _narrow(h), _narrow(p), _narrow(n)
    header = _HEADER.pack(_MAGIC, 1, f, c, window.count, h.size, p.size, n.size, hc, pc, nc)
    parts = [header, ints.tobytes(), floats.tobytes(), hb, pb, nb]
    if prediction is not None:
        parts.append(prediction.counts.astype("<i8").tobytes())
        parts.append(prediction.confidence_sums.astype("<f8").tobytes())
    return zlib.compress(b"".join(parts), 1)


@dataclass
class _Record:
    count: int
    ints: np.ndarray
    floats: np.ndarray
    hist: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    pred_counts: np.ndarray | None
    pred_sums: np.ndarray | None


def _unpack(blob: bytes, f: int, c: int) -> _Record:
    raw = zlib.decompress(blob)
    magic, version, nf, nc, count, nh, npos, nneg, *codes = _HEADER.unpack_from(raw)
    if magic != _MAGIC or version != 1 or nf != f or nc != c:
        raise ValidationFailed("a stored monitoring window does not match its layout")
    at = _HEADER.size
    ints = np.frombuffer(raw, "<i8", 7 * f, at).reshape(7, f)
    at += 56 * f
    floats = np.frombuffer(raw, "<f8", 4 * f, at).reshape(4, f)
    at += 32 * f
    arrays = []
    for size, code in zip((nh, npos, nneg), codes, strict=True):
        dtype = np.dtype(_COUNT_DTYPES[code])
        arrays.append(np.frombuffer(raw, dtype, size, at))
        at += size * dtype.itemsize
    hist, pos, neg = arrays
    pc = ps = None
    if c:
        pc = np.frombuffer(raw, "<i8", c, at)
        ps = np.frombuffer(raw, "<f8", c, at + 8 * c)
    return _Record(int(count), ints, floats, hist, pos, neg, pc, ps)


def _merge_stores(
    offsets: np.ndarray, lengths: np.ndarray, counts: Sequence[np.ndarray]
) -> list[tuple[int, np.ndarray]]:
    """Per feature, (offset, dense counts) of the sum of N stores given as ``(N, F)``
    offsets and lengths and, per window, its features' counts concatenated."""
    n, f = offsets.shape
    used = lengths > 0
    big = np.iinfo(np.int64).max
    lo = np.where(used, offsets, big).min(axis=0, initial=big)
    hi = np.where(used, offsets + lengths - 1, -big).max(axis=0, initial=-big)
    has = lo <= hi
    span = np.where(has, hi - lo + 1, 0)
    base = np.concatenate(([0], np.cumsum(span)[:-1])).astype(np.int64)
    dense = np.zeros(int(span.sum()), dtype=np.int64)
    # chunks of windows keep the position arrays small; within a chunk every bucket's
    # position is a cumulative sum of ones that jumps at each segment's start
    for a in range(0, n, _CHUNK):
        seg_len = lengths[a : a + _CHUNK].ravel()
        size = int(seg_len.sum())
        if not size:
            continue
        seg_feature = np.tile(np.arange(f), min(_CHUNK, n - a))
        first = base[seg_feature] - lo[seg_feature] + offsets[a : a + _CHUNK].ravel()
        keep = seg_len > 0
        first, seg_len = first[keep], seg_len[keep]
        starts = np.concatenate(([0], np.cumsum(seg_len)[:-1]))
        step = np.ones(size, dtype=np.int64)
        step[starts] = first - np.concatenate(([0], first[:-1] + seg_len[:-1] - 1))
        position = np.cumsum(step)
        chunk = np.concatenate(counts[a : a + _CHUNK])
        dense += np.bincount(position, weights=chunk, minlength=dense.size).astype(np.int64)
    out: list[tuple[int, np.ndarray]] = []
    for j in range(f):
        if not has[j]:
            out.append((0, np.zeros(0, dtype=np.int64)))
        else:
            out.append((int(lo[j]), dense[base[j] : base[j] + span[j]]))
    return out


def merge_packed(blobs: Sequence[bytes], layout: Layout) -> WindowSketch:
    """One window: the merge of the packed windows ``blobs`` (all of ``layout``)."""
    f, c = len(layout.features), layout.n_classes or 0
    records = [_unpack(b, f, c) for b in blobs]
    n = len(records)
    ints = np.stack([r.ints for r in records]) if n else np.zeros((0, 7, f), np.int64)
    floats = np.stack([r.floats for r in records]) if n else np.zeros((0, 4, f))
    counts = ints[:, 0, :]
    total = counts.sum(axis=0)
    nulls = ints[:, 1, :].sum(axis=0)
    zeros = ints[:, 2, :].sum(axis=0)
    mins = floats[:, 0, :].min(axis=0, initial=np.inf)
    maxs = floats[:, 1, :].max(axis=0, initial=-np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        weighted = np.where(counts > 0, counts * floats[:, 2, :], 0.0).sum(axis=0)
        mean = np.where(total > 0, weighted / np.where(total > 0, total, 1), 0.0)
        dev = np.where(counts > 0, floats[:, 2, :] - mean, 0.0)
        m2 = (np.where(counts > 0, floats[:, 3, :], 0.0) + counts * dev * dev).sum(axis=0)
    hist = np.sum([r.hist for r in records], axis=0) if n else None
    pos = _merge_stores(
        ints[:, 3, :],
        ints[:, 4, :],
        [r.pos for r in records],
    )
    neg = _merge_stores(
        ints[:, 5, :],
        ints[:, 6, :],
        [r.neg for r in records],
    )
    features: dict[str, FeatureSketch] = {}
    at = 0
    for j, (name, edges) in enumerate(zip(layout.features, layout.edges, strict=True)):
        cells = len(edges) + 1
        summary = NumericSummary()
        if total[j]:
            summary.count, summary.min, summary.max = int(total[j]), float(mins[j]), float(maxs[j])
            summary.mean, summary.m2 = float(mean[j]), float(m2[j])
        summary.nulls = int(nulls[j])
        histogram = Histogram(edges, hist[at : at + cells] if hist is not None else None)
        at += cells
        sketch = QuantileSketch(layout.relative_accuracy, layout.max_buckets)
        sketch._zero = int(zeros[j])
        sketch._pos.add_dense(*pos[j])
        sketch._neg.add_dense(*neg[j])
        features[name] = FeatureSketch.from_parts(summary, histogram, sketch)
    prediction = None
    if layout.n_classes is not None:
        prediction = PredictionSketch(layout.n_classes)
        for r in records:
            if r.pred_counts is not None and r.pred_sums is not None:
                prediction.counts += r.pred_counts
                prediction.confidence_sums += r.pred_sums
    return WindowSketch(features, prediction, sum(r.count for r in records))
