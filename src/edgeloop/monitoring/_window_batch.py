"""One batch straight to a window's compact form, vectorised across features.

:class:`BatchPacker` gives ``WindowSketch.to_bytes()`` of an empty window (``template``'s
features, edges, quantile accuracy and classes) updated with one batch ``(X, proba)``,
without building the window: the histograms count every feature at once (one comparison of
the batch with the padded edges, one ``bincount``), the quantile stores index every value at
once (one ``log``), and the body is written with a handful of ``struct`` calls per feature.
Counts, histograms, minima, maxima and quantile buckets are exactly those of
``template.empty_like()`` updated with the batch; means and variances equal up to float
rounding. A batch with NaN or infinite values, of another shape or of more than 1,024 rows takes
the exact path (a window updated and serialised). Used by the simulated fleet, whose devices
send one such window per telemetry window (measured on the demo's 63-feature, 4-class model,
100 samples, CPU time on a shared 2-core machine: 2.1 ms for the packed, base64'd window
instead of 3.8 ms for building the window and its JSON).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from edgeloop.monitoring._sketch_codec import FORMAT_VERSION, MAGIC
from edgeloop.monitoring.window import WindowSketch

__all__ = ["BatchPacker"]

_WINDOW_CODE = 7
_INT_DTYPES = ("<u1", "<u2", "<u4", "<u8")
_MAX_COMPARISONS = 1 << 21
_MAX_ROWS = 1024
"""Bigger batches take the exact path: the sketches' own vectorised code is as fast there."""


def _code(top: int) -> int:
    """The codec's dtype code of non-negative integers up to ``top``."""
    return 0 if top < 1 << 8 else 1 if top < 1 << 16 else 2 if top < 1 << 32 else 3


def _ints(parts: list[bytes], values: np.ndarray) -> None:
    """``Writer.ints`` for non-negative integers."""
    code = _code(int(values.max())) if values.size else 0
    parts.append(struct.pack("<BI", code, values.size))
    parts.append(values.astype(_INT_DTYPES[code]).tobytes())


def _store(parts: list[bytes], idx: np.ndarray, max_buckets: int) -> None:
    """A quantile store holding the bucket indices ``idx`` (``_Store.write``)."""
    if idx.size == 0:
        parts.append(struct.pack("<qBIBI", 0, 0, 0, 0, 0))
        return
    idx = np.maximum(idx, int(idx.max()) - max_buckets + 1)  # the fold of add_indices
    lo = int(idx.min())
    counts = np.bincount(idx - lo)
    nz = np.flatnonzero(counts)
    parts.append(struct.pack("<q", lo))  # counts[0] is never zero: nz[0] == 0
    _ints(parts, np.diff(nz))
    _ints(parts, counts[nz])


class BatchPacker:
    """Packs batches on ``template``'s layout (see the module docstring)."""

    def __init__(self, template: WindowSketch) -> None:
        self.template = template.empty_like()
        features = self.template.features
        self.names = [name.encode("utf-8") for name in features]
        self.edges = [fs.edges for fs in features.values()]
        params = {(fs.sketch.relative_accuracy, fs.sketch.max_buckets) for fs in features.values()}
        self.fast = len(params) == 1 and bool(self.names)
        self.alpha, self.max_buckets = params.pop() if len(params) == 1 else (0.0, 0)
        gamma = (1.0 + self.alpha) / (1.0 - self.alpha) if self.fast else 2.0
        self.mult = 1.0 / math.log(gamma)
        width = max((e.size for e in self.edges), default=0)
        self.padded = np.full((len(self.edges), width), np.inf)
        for j, e in enumerate(self.edges):
            self.padded[j, : e.size] = e
        self.cells = np.array([e.size + 1 for e in self.edges], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(self.cells)[:-1])).astype(np.int64)
        prediction = self.template.prediction
        self.n_classes = prediction.n_classes if prediction is not None else None
        self._edge_bytes = [
            struct.pack("<I", e.size) + e.astype("<f8").tobytes() for e in self.edges
        ]

    def pack(self, X: np.ndarray, proba: np.ndarray | None) -> bytes:
        """``to_bytes()`` of the template's empty window updated with ``(X, proba)``."""
        x = np.asarray(X, dtype=np.float64)
        p = None if proba is None or self.n_classes is None else np.asarray(proba, np.float64)
        f = len(self.names)
        if (
            not self.fast
            or x.ndim != 2
            or x.shape[1] != f
            or not 0 < x.shape[0] <= _MAX_ROWS
            or not np.isfinite(x).all()
            or (p is not None and (p.shape != (x.shape[0], self.n_classes)))
        ):
            return self._exact(x, p)
        n = x.shape[0]
        xt = np.ascontiguousarray(x.T)  # one row per feature
        mins, maxs, means = xt.min(axis=1), xt.max(axis=1), xt.mean(axis=1)
        d = xt - means[:, None]
        m2 = np.einsum("ij,ij->i", d, d)
        if n * self.padded.size <= _MAX_COMPARISONS:
            cell = (xt[:, :, None] >= self.padded[:, None, :]).sum(axis=2)
        else:
            cell = np.stack(
                [
                    np.searchsorted(e, row, side="right")
                    for e, row in zip(self.edges, xt, strict=True)
                ]
            )
        flat = (cell + self.starts[:, None]).ravel()
        hist = np.bincount(flat, minlength=int(self.cells.sum()))
        with np.errstate(divide="ignore"):
            logs = np.log(np.abs(xt))
        logs *= self.mult
        np.ceil(logs, out=logs)
        zero = xt == 0
        logs[zero] = 0
        idx = logs.astype(np.int64)
        pos, neg = xt > 0, xt < 0
        parts = [struct.pack("<QQ", n, f)]
        head = struct.pack("<dQ", self.alpha, self.max_buckets)
        for j in range(f):
            name = self.names[j]
            parts.append(struct.pack("<I", len(name)) + name)
            parts.append(struct.pack("<QQdddd", n, 0, mins[j], maxs[j], means[j], m2[j]))
            parts.append(self._edge_bytes[j])
            a = int(self.starts[j])
            _ints(parts, hist[a : a + int(self.cells[j])])
            parts.append(head + struct.pack("<Q", int(np.count_nonzero(zero[j]))))
            _store(parts, idx[j][pos[j]], self.max_buckets)
            _store(parts, idx[j][neg[j]], self.max_buckets)
        if self.n_classes is None:
            parts.append(b"\x00")
        else:
            parts.append(b"\x01" + struct.pack("<Q", self.n_classes))
            counts: np.ndarray = np.zeros(self.n_classes, np.int64)
            sums: np.ndarray = np.zeros(self.n_classes)
            if p is not None:
                predicted = p.argmax(axis=1)
                confidence = p[np.arange(n), predicted]
                counts = np.bincount(predicted, minlength=self.n_classes)
                sums = np.bincount(predicted, weights=confidence, minlength=self.n_classes)
            _ints(parts, counts)
            parts.append(struct.pack("<I", sums.size) + sums.astype("<f8").tobytes())
        header = struct.pack("<4sBB", MAGIC, FORMAT_VERSION, _WINDOW_CODE)
        return header + zlib.compress(b"".join(parts), 6)

    def _exact(self, x: np.ndarray, p: np.ndarray | None) -> bytes:
        window = self.template.empty_like()
        window.update(x, p)
        return window.to_bytes()
