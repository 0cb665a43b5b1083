"""Fixed-edge histograms, streaming moments and edge choice (pure numpy + standard library)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._sketch_codec import (
    Reader,
    Writer,
    as_float_array,
    check_type,
    decode_float,
    encode_float,
    pack,
    parse_dict,
    unpack,
)

__all__ = ["DEFAULT_EDGES", "Histogram", "NumericSummary", "edges_from_points", "reference_edges"]

DEFAULT_EDGES: tuple[float, float] = (0.0, 1.0)
"""The edges chosen when the reference holds no finite value: one bin, [0, 1)."""

_HISTOGRAM_CODE = 1
_SUMMARY_CODE = 2


def _constant_edges(c: float) -> np.ndarray:
    lo, hi = c - 0.5, c + 0.5
    if lo == c:
        lo = float(np.nextafter(c, -np.inf))
    if hi == c:
        hi = float(np.nextafter(c, np.inf))
    return np.array([lo, hi], dtype=np.float64)


def edges_from_points(points: object) -> np.ndarray:
    """Strictly increasing histogram edges from candidate cut points (e.g. quantiles).

    ``points`` should run from the reference minimum to its maximum (the quantiles at
    0, 1/b, …, 1). They are de-duplicated; the top edge becomes the float just above the
    maximum, so that the maximum falls in the last bin rather than the overflow bin (bins are
    ``[e_i, e_i+1)``). A maximum that carries much of the mass (it repeats among the points,
    as 1 does in a 0/1 column) gets a bin of its own, ``[max, max⁺)``. A single distinct
    point ``c`` gives the one bin ``[c - 0.5, c + 0.5)``; no finite point gives
    :data:`DEFAULT_EDGES`.
    """
    p = as_float_array(points)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return np.array(DEFAULT_EDGES, dtype=np.float64)
    p = np.sort(p)
    top = float(p[-1])
    heavy_top = p.size >= 2 and float(p[-2]) == top
    u = np.unique(p)
    if u.size == 1:
        return _constant_edges(top)
    above = float(np.nextafter(top, np.inf))
    if not math.isfinite(above):
        return u
    if heavy_top:
        return np.append(u, above)
    u[-1] = above
    return u


def reference_edges(
    values: object, bins: int = 20, strategy: Literal["quantile", "uniform"] = "quantile"
) -> np.ndarray:
    """Edges for ``bins`` bins chosen from reference ``values`` (finite values only).

    ``"quantile"``: the exact lower quantiles (data values) at 0, 1/bins, …, 1 (fewer bins
    when they tie);
    ``"uniform"``: equal widths between the minimum and the maximum. See
    :func:`edges_from_points` for the top edge, constants and empty input.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationFailed(f"bins must be an integer >= 1, got {bins!r}")
    x = as_float_array(values)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array(DEFAULT_EDGES, dtype=np.float64)
    if strategy == "quantile":
        points = np.quantile(x, np.linspace(0.0, 1.0, bins + 1), method="lower")
    elif strategy == "uniform":
        lo, hi = float(x.min()), float(x.max())
        points = np.linspace(lo, hi, bins + 1)
    else:
        raise ValidationFailed(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    return edges_from_points(points)


_LUT_MIN_VALUES = 4096  # arrays at least this long are binned through a lookup table


class _BinIndex:
    """``np.searchsorted(edges, x, side="right")`` for NaN-free ``x``, faster for big arrays.

    A lookup table over a uniform grid of cells between the inner edges gives each value a
    candidate bin, one comparison moves it past an edge inside its cell, and a final check
    (``edges[c-1] <= x < edges[c]``) sends every value whose candidate is still wrong (cells
    holding several edges, rounding at cell borders, values outside the grid) to searchsorted.
    The result is therefore exactly searchsorted's. When more than a fifth of the values need
    that fallback (edges far from uniform), the histogram stops using the table.
    """

    __slots__ = ("_cells", "_edges", "_ext", "_lo", "_lut", "_scale")

    def __init__(self, edges: np.ndarray) -> None:
        m = edges.size
        lo, hi = _BinIndex._range(edges)
        self._cells = int(min(max(16 * m, 4096), 65536))
        self._scale = self._cells / (hi - lo)
        self._lo = lo
        self._edges = edges
        self._ext = np.concatenate(([-np.inf], edges, [np.inf, np.inf]))
        points = lo + np.arange(self._cells) / self._scale
        dtype = np.int16 if m < 32_000 else np.int32
        self._lut = np.searchsorted(edges, points, side="right").astype(dtype)

    @staticmethod
    def _range(edges: np.ndarray) -> tuple[float, float]:
        # the grid spans the inner edges, so that one extreme edge (a heavy tail's maximum)
        # does not squeeze all the others into a few cells
        if edges.size >= 8:
            return float(edges[1]), float(edges[-2])
        return float(edges[0]), float(edges[-1])

    @staticmethod
    def usable(edges: np.ndarray) -> bool:
        lo, hi = _BinIndex._range(edges)
        return bool(math.isfinite(hi - lo) and hi > lo and math.isfinite(1.0 / (hi - lo)))

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Bin indices of ``x`` and how many needed the searchsorted fallback."""
        t = x - self._lo
        t *= self._scale
        np.clip(t, 0, self._cells - 1, out=t)
        c = self._lut[t.astype(np.intp)].astype(np.intp)
        ext = self._ext
        c += x >= ext[c + 1]
        bad = np.flatnonzero((x < ext[c]) | (x >= ext[c + 1]))
        if bad.size:
            c[bad] = np.searchsorted(self._edges, x[bad], side="right")
        return c, int(bad.size)


class Histogram:
    """Counts over fixed bin edges, with an underflow and an overflow bin.

    ``edges`` are strictly increasing finite floats (at least two). ``counts`` has
    ``len(edges) + 1`` int64 cells: ``counts[0]`` holds ``x < edges[0]``, ``counts[i]`` holds
    ``edges[i-1] <= x < edges[i]`` and ``counts[-1]`` holds ``x >= edges[-1]`` — exactly
    ``np.bincount(np.searchsorted(edges, x, side="right"))``. ``-inf`` goes to the underflow
    bin, ``+inf`` to the overflow bin; NaN is ignored (a :class:`NumericSummary` counts it).
    Merging needs identical edges; counts then add, so merge is exact, associative and
    commutative.
    """

    __slots__ = ("_edge_list", "_edges", "_index", "counts")

    def __init__(self, edges: object, counts: object | None = None) -> None:
        e = as_float_array(edges).copy()
        if e.size < 2:
            raise ValidationFailed(f"a histogram needs at least 2 edges, got {e.size}")
        if not np.all(np.isfinite(e)):
            raise ValidationFailed("histogram edges must be finite")
        if not np.all(np.diff(e) > 0):
            raise ValidationFailed("histogram edges must be strictly increasing")
        e.flags.writeable = False
        self._edges = e
        self._edge_list: list[float] = e.tolist()
        self._index: _BinIndex | bool | None = None  # built on first big update; False: never
        if counts is None:
            self.counts = np.zeros(e.size + 1, dtype=np.int64)
        else:
            c = np.array(counts, dtype=np.int64).ravel()
            if c.size != e.size + 1:
                raise ValidationFailed(
                    f"histogram counts need len(edges) + 1 = {e.size + 1} cells, got {c.size}"
                )
            if c.size and int(c.min()) < 0:
                raise ValidationFailed("histogram counts must be >= 0")
            self.counts = c

    @classmethod
    def from_reference(
        cls,
        values: object,
        bins: int = 20,
        strategy: Literal["quantile", "uniform"] = "quantile",
    ) -> Histogram:
        """A histogram of ``values`` with edges chosen from them (:func:`reference_edges`).

        Never fails on empty or NaN-only input: that gives the degenerate one-bin histogram
        over :data:`DEFAULT_EDGES` with zero counts.
        """
        hist = cls(reference_edges(values, bins, strategy))
        hist.update(values)
        return hist

    @property
    def edges(self) -> np.ndarray:
        """The bin edges (read-only float64 array)."""
        return self._edges

    @property
    def total(self) -> int:
        """How many values were counted (NaN excluded)."""
        return int(self.counts.sum())

    def add(self, x: float) -> None:
        """Count one value (bisect over the edges)."""
        if x != x:
            return
        self.counts[bisect.bisect_right(self._edge_list, x)] += 1

    def update(self, values: object) -> None:
        """Count an array of values (vectorised: searchsorted + bincount)."""
        x = as_float_array(values)
        nan = np.isnan(x)
        if nan.any():
            x = x[~nan]
        self._update_clean(x)

    def _update_clean(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        if x.size >= _LUT_MIN_VALUES and self._index is None:
            self._index = _BinIndex(self._edges) if _BinIndex.usable(self._edges) else False
        if x.size >= _LUT_MIN_VALUES and isinstance(self._index, _BinIndex):
            idx, misses = self._index(x)
            if misses * 5 > x.size:
                self._index = False
        else:
            idx = np.searchsorted(self._edges, x, side="right")
        self.counts += np.bincount(idx, minlength=self.counts.size)

    def _check_mergeable(self, other: Histogram) -> None:
        if not isinstance(other, Histogram):
            raise ValidationFailed(f"cannot merge a Histogram with {type(other).__name__}")
        if self._edges.size != other._edges.size:
            raise ValidationFailed(
                f"histogram edges differ: {self._edges.size} edges vs {other._edges.size}"
            )
        if not np.array_equal(self._edges, other._edges):
            i = int(np.flatnonzero(self._edges != other._edges)[0])
            raise ValidationFailed(
                f"histogram edges differ at index {i}: {self._edge_list[i]!r} vs "
                f"{other._edge_list[i]!r}"
            )

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram counting both (edges must be identical)."""
        self._check_mergeable(other)
        return Histogram(self._edges, self.counts + other.counts)

    def merge_inplace(self, other: Histogram) -> None:
        """Add ``other``'s counts to this histogram (edges must be identical)."""
        self._check_mergeable(other)
        self.counts += other.counts

    def copy(self) -> Histogram:
        return Histogram(self._edges, self.counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return np.array_equal(self._edges, other._edges) and np.array_equal(
            self.counts, other.counts
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Histogram(edges={self._edge_list!r}, counts={self.counts.tolist()!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "histogram", "edges": [...], "counts": [...]}``."""
        return {"type": "histogram", "edges": list(self._edge_list), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        check_type(data, "histogram")
        return parse_dict("histogram", lambda: cls(data["edges"], data["counts"]))

    def _write(self, w: Writer) -> None:
        w.floats(self._edges)
        w.ints(self.counts)

    @classmethod
    def _read(cls, r: Reader) -> Histogram:
        return cls(r.floats(), r.ints())

    def to_bytes(self) -> bytes:
        """Compact binary form (float64 edges, narrowest-int counts, zlib)."""
        w = Writer()
        self._write(w)
        return pack(_HISTOGRAM_CODE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> Histogram:
        r = unpack(data, _HISTOGRAM_CODE, "Histogram")
        out = cls._read(r)
        r.done()
        return out


def _same_float(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


class NumericSummary:
    """Count, NaN count, min, max, mean and variance of a stream of floats.

    ``count`` counts non-NaN values (infinities included); ``nulls`` counts NaN. ``variance``
    is the population variance (ddof=0). Moments merge with Chan et al.'s parallel formula,
    written symmetrically, so merge is exactly commutative and equals the summary of the
    concatenation up to float rounding (count, nulls, min and max exactly). ``add`` is Welford's
    update, O(1) per value.
    """

    __slots__ = ("count", "m2", "max", "mean", "min", "nulls")

    def __init__(self) -> None:
        self.count = 0
        self.nulls = 0
        self.min = math.inf
        self.max = -math.inf
        self.mean = 0.0
        self.m2 = 0.0

    @property
    def variance(self) -> float:
        """Population variance (NaN when empty)."""
        return self.m2 / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation (NaN when empty)."""
        v = self.variance
        return math.sqrt(v) if v >= 0 else math.nan

    def add(self, x: float) -> None:
        """Welford's update with one value."""
        x = float(x)
        if x != x:
            self.nulls += 1
            return
        self.count += 1
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def update(self, values: object) -> None:
        """Summarise an array (vectorised); NaN counts as a null."""
        x = as_float_array(values)
        nan = np.isnan(x)
        k = int(np.count_nonzero(nan))
        if k:
            self.nulls += k
            x = x[~nan]
        self._update_clean(x)

    def _update_clean(self, x: np.ndarray) -> tuple[float, float]:
        """Fold in NaN-free ``x``; returns its (min, max)."""
        n = int(x.size)
        if n == 0:
            return math.inf, -math.inf
        mn, mx = float(x.min()), float(x.max())
        mean = float(x.mean())
        d = x - mean
        self._combine(n, mn, mx, mean, float(np.einsum("i,i->", d, d)))
        return mn, mx

    def _combine(self, n: int, mn: float, mx: float, mean: float, m2: float) -> None:
        if n == 0:
            return
        if mn < self.min:
            self.min = mn
        if mx > self.max:
            self.max = mx
        na = self.count
        if na == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = na + n
        delta = mean - self.mean
        self.mean = (na * self.mean + n * mean) / total
        self.m2 = (self.m2 + m2) + delta * delta * (na * n / total)
        self.count = total

    def merge(self, other: NumericSummary) -> NumericSummary:
        """A new summary of both streams."""
        out = self.copy()
        out.merge_inplace(other)
        return out

    def merge_inplace(self, other: NumericSummary) -> None:
        """Fold ``other`` into this summary."""
        if not isinstance(other, NumericSummary):
            raise ValidationFailed(f"cannot merge a NumericSummary with {type(other).__name__}")
        self.nulls += other.nulls
        self._combine(other.count, other.min, other.max, other.mean, other.m2)

    def copy(self) -> NumericSummary:
        out = NumericSummary()
        out.count, out.nulls, out.min, out.max = self.count, self.nulls, self.min, self.max
        out.mean, out.m2 = self.mean, self.m2
        return out

    def _fields(self) -> tuple[int, int, float, float, float, float]:
        return self.count, self.nulls, self.min, self.max, self.mean, self.m2

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericSummary):
            return NotImplemented
        return all(_same_float(a, b) for a, b in zip(self._fields(), other._fields(), strict=True))

    __hash__ = None  # type: ignore[assignment]

    def almost_equal(self, other: NumericSummary, rel_tol: float = 1e-9) -> bool:
        """Exact count, nulls, min and max; mean within ``rel_tol·s`` and variance within
        ``rel_tol·s²``, where ``s = max(|mean|, std)`` is the data's scale."""
        if (self.count, self.nulls) != (other.count, other.nulls):
            return False
        if not (_same_float(self.min, other.min) and _same_float(self.max, other.max)):
            return False
        if self.count == 0:
            return True
        s = max(abs(self.mean), abs(other.mean), self.std, other.std)
        if not math.isfinite(s):
            return _same_float(self.mean, other.mean) and _same_float(self.m2, other.m2)
        return (
            abs(self.mean - other.mean) <= rel_tol * s
            and abs(self.variance - other.variance) <= rel_tol * s * s
        )

    def __repr__(self) -> str:
        return (
            f"NumericSummary(count={self.count}, nulls={self.nulls}, min={self.min!r}, "
            f"max={self.max!r}, mean={self.mean!r}, std={self.std!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: non-finite floats are written as ``"nan"``, ``"inf"``, ``"-inf"``."""
        return {
            "type": "numeric_summary",
            "count": self.count,
            "nulls": self.nulls,
            "min": encode_float(self.min),
            "max": encode_float(self.max),
            "mean": encode_float(self.mean),
            "m2": encode_float(self.m2),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericSummary:
        check_type(data, "numeric_summary")

        def build() -> NumericSummary:
            out = cls()
            out.count, out.nulls = _nonneg(data["count"]), _nonneg(data["nulls"])
            out.min, out.max = decode_float(data["min"]), decode_float(data["max"])
            out.mean, out.m2 = decode_float(data["mean"]), decode_float(data["m2"])
            return out

        return parse_dict("numeric_summary", build)

    def _write(self, w: Writer) -> None:
        w.u64(self.count)
        w.u64(self.nulls)
        for v in (self.min, self.max, self.mean, self.m2):
            w.f64(v)

    @classmethod
    def _read(cls, r: Reader) -> NumericSummary:
        out = cls()
        out.count, out.nulls = r.u64(), r.u64()
        out.min, out.max, out.mean, out.m2 = r.f64(), r.f64(), r.f64(), r.f64()
        return out

    def to_bytes(self) -> bytes:
        w = Writer()
        self._write(w)
        return pack(_SUMMARY_CODE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> NumericSummary:
        r = unpack(data, _SUMMARY_CODE, "NumericSummary")
        out = cls._read(r)
        r.done()
        return out


def _nonneg(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValidationFailed(f"expected an integer >= 0, got {v!r}")
    return v
