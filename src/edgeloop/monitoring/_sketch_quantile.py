"""A DDSketch-style quantile sketch with a relative-error guarantee (pure numpy + stdlib)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._sketch_codec import (
    Reader,
    Writer,
    as_float_array,
    check_type,
    pack,
    parse_dict,
    unpack,
)
from edgeloop.monitoring._sketch_numeric import edges_from_points

__all__ = ["QuantileSketch"]

_QUANTILE_CODE = 3
_FLUSH_AT = 512
_EMPTY = np.zeros(0, dtype=np.int64)


class _Store:
    """Dense bucket counts for indices ``offset … offset + len(counts) - 1``.

    Always trimmed (first and last cells non-zero, or no cells at all), so equal contents have
    equal representations. When the index span would exceed ``max_buckets`` the lowest indices
    fold into the lowest kept one: index ``i`` becomes ``max(i, top - max_buckets + 1)``. The
    fold depends only on the highest index ever seen, so folding early or late gives the same
    state (merge stays exactly associative and commutative).
    """

    __slots__ = ("counts", "max_buckets", "offset")

    def __init__(self, max_buckets: int) -> None:
        self.max_buckets = max_buckets
        self.offset = 0
        self.counts = _EMPTY

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def top(self) -> int | None:
        return self.offset + self.counts.size - 1 if self.counts.size else None

    def add_indices(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        lo, hi = int(idx.min()), int(idx.max())
        top = self.top
        floor = max(hi, hi if top is None else top) - self.max_buckets + 1
        if lo < floor:
            idx = np.maximum(idx, floor)
            lo = floor
        self.add_dense(lo, np.bincount(idx - lo))

    def add_dense(self, lo: int, counts: np.ndarray) -> None:
        """Add ``counts`` (index ``lo`` first); ``counts`` may hold zeros at either end."""
        nz = np.flatnonzero(counts)
        if nz.size == 0:
            return
        counts = counts[nz[0] : nz[-1] + 1]
        lo += int(nz[0])
        hi = lo + counts.size - 1
        if self.counts.size:
            new_lo, new_hi = min(lo, self.offset), max(hi, self.offset + self.counts.size - 1)
            merged = np.zeros(new_hi - new_lo + 1, dtype=np.int64)
            merged[self.offset - new_lo : self.offset - new_lo + self.counts.size] += self.counts
            merged[lo - new_lo : lo - new_lo + counts.size] += counts
        else:
            new_lo, merged = lo, counts.astype(np.int64, copy=True)
            new_hi = hi
        floor = new_hi - self.max_buckets + 1
        if new_lo < floor:
            cut = floor - new_lo
            merged[cut] += merged[:cut].sum()
            merged = merged[cut:]
            first = int(np.flatnonzero(merged)[0])  # the fold target may still be empty
            merged, new_lo = merged[first:], floor + first
        if merged.base is not None:  # a trimmed view: do not keep the bigger array alive
            merged = merged.copy()
        self.offset, self.counts = new_lo, merged

    def copy(self) -> _Store:
        out = _Store(self.max_buckets)
        out.offset, out.counts = self.offset, self.counts.copy()
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Store):
            return NotImplemented
        return (
            self.counts.size == other.counts.size
            and (self.counts.size == 0 or self.offset == other.offset)
            and np.array_equal(self.counts, other.counts)
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset if self.counts.size else 0, "counts": self.counts.tolist()}

    def load(self, offset: int, counts: np.ndarray) -> None:
        if counts.size and int(counts.min()) < 0:
            raise ValidationFailed("quantile sketch bucket counts must be >= 0")
        if counts.size > self.max_buckets:
            raise ValidationFailed(
                f"quantile sketch store spans {counts.size} buckets > max_buckets "
                f"{self.max_buckets}"
            )
        self.offset, self.counts = 0, _EMPTY
        self.add_dense(offset, counts)

    def write(self, w: Writer) -> None:
        nz = np.flatnonzero(self.counts)
        w.i64(self.offset + int(nz[0]) if nz.size else 0)
        w.ints(np.diff(nz))  # gaps between non-zero buckets
        w.ints(self.counts[nz])

    def read(self, r: Reader) -> None:
        first, gaps, counts = r.i64(), r.ints(), r.ints()
        if counts.size != gaps.size + (1 if counts.size else 0) or (gaps.size and gaps.min() < 1):
            raise ValidationFailed("quantile sketch bytes hold an inconsistent bucket list")
        # the buckets are stored densely: refuse a span over max_buckets before allocating it
        if gaps.size and (
            int(gaps.max()) >= self.max_buckets or int(gaps.sum()) >= self.max_buckets
        ):
            raise ValidationFailed(
                f"quantile sketch store spans more than max_buckets {self.max_buckets} buckets"
            )
        pos = np.concatenate(([0], np.cumsum(gaps))) if counts.size else _EMPTY
        dense = np.zeros(int(pos[-1]) + 1 if counts.size else 0, dtype=np.int64)
        dense[pos] = counts
        self.load(first, dense)


class QuantileSketch:
    """DDSketch-style quantile sketch: log-spaced buckets with a relative-error guarantee.

    With ``relative_accuracy`` alpha, let ``g = (1 + alpha) / (1 - alpha)``. A positive value
    ``x`` goes to bucket ``i = ceil(log_g(x))``, which covers ``(g**(i-1), g**i]``; the bucket's
    representative ``2 * g**i / (g + 1)`` is within ``alpha * x`` of every value in it.
    Negative values go to a second store by ``|x|``, exact zeros to a zero count. NaN and +-inf
    are ignored (they are not ranked).

    **Quantile definition and error.** ``quantile(q)`` estimates the *rank-exact lower
    quantile*: with the ``n`` values sorted ``x_(0) <= ... <= x_(n-1)``, the true value is
    ``v = x_(k)`` with ``k = floor(q * (n - 1))``, which is what
    ``np.quantile(x, q, method="lower")`` returns. The estimate ``e`` satisfies
    ``|e - v| <= alpha * |v|`` (so zero is exact and the sign is always right).

    **Merging.** Bucket counts add, so merge is exact, associative and commutative; ``add``
    one value at a time gives exactly the state ``update`` gives. Both sketches need the same
    ``relative_accuracy`` and ``max_buckets``.

    **Bounded size.** Each store keeps at most ``max_buckets`` consecutive buckets; when the
    span of indices would exceed it, the lowest-magnitude buckets are folded into the lowest
    kept bucket. The guarantee then holds only for quantiles whose value has magnitude at
    least ``g**(top - max_buckets + 1)``: the upper quantiles of the positive store (and the
    most negative ones of the negative store). With the defaults (alpha = 0.01, 2048 buckets)
    a store spans a factor of ``g**2047``, about 6e17, before anything folds.

    **Memory.** Two int64 arrays of at most ``max_buckets`` cells each. With alpha = 0.01 a
    store uses about 115 buckets per decade of magnitude the data spans (0.9 KB of int64 per
    decade; 16 KB per store at the cap); serialised (sparse, narrowest ints, zlib) typically a
    few hundred bytes to ~2 KB.
    """

    __slots__ = ("_buffer", "_gamma", "_mult", "_neg", "_pos", "_zero", "alpha", "max_buckets")

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        alpha = float(relative_accuracy)
        if not 0.0 < alpha < 1.0:
            raise ValidationFailed(f"relative_accuracy must be in (0, 1), got {alpha!r}")
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 1:
            raise ValidationFailed(f"max_buckets must be an integer >= 1, got {max_buckets!r}")
        self.alpha = alpha
        self.max_buckets = max_buckets
        self._gamma = (1.0 + alpha) / (1.0 - alpha)
        self._mult = 1.0 / math.log(self._gamma)
        self._pos = _Store(max_buckets)
        self._neg = _Store(max_buckets)
        self._zero = 0
        self._buffer: list[float] = []

    @property
    def relative_accuracy(self) -> float:
        """alpha: estimates are within ``alpha·|true|`` of the rank-exact lower quantile."""
        return self.alpha

    @property
    def count(self) -> int:
        """How many (finite) values the sketch holds."""
        self._flush()
        return self._pos.total + self._neg.total + self._zero

    def add(self, x: float) -> None:
        """Add one value (amortised O(1): buffered, then indexed with the vectorised code)."""
        x = float(x)
        if x - x != 0.0:  # NaN or ±inf
            return
        self._buffer.append(x)
        if len(self._buffer) >= _FLUSH_AT:
            self._flush()

    def update(self, values: object) -> None:
        """Add an array of values (vectorised)."""
        x = as_float_array(values)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        self._flush()
        self._update_finite(x)

    def _flush(self) -> None:
        if self._buffer:
            buf, self._buffer = self._buffer, []
            self._update_finite(np.array(buf, dtype=np.float64))

    def _update_finite(self, x: np.ndarray) -> None:
        n = x.size
        if n == 0:
            return
        neg = x < 0
        n_neg = int(np.count_nonzero(neg))
        if n_neg == 0 or n_neg == n:
            n_zero = n - int(np.count_nonzero(x)) if n_neg == 0 else 0
            if n_zero == 0:  # one sign only: one store
                store = self._pos if n_neg == 0 else self._neg
                store.add_indices(self._index(x if n_neg == 0 else -x))
                return
        n_zero = n - n_neg - int(np.count_nonzero(x > 0))
        # Mixed signs (or zeros): index |x| once and count both stores with one bincount,
        # negatives shifted past the positives' cells.
        a = np.abs(x)
        if n_zero == n:
            self._zero += n
            return
        if n_zero:
            a[a == 0] = a.max()  # counted at the top cell, then taken off again
        idx = self._index(a)
        lo, hi = int(idx.min()), int(idx.max())
        span = hi - lo + 1
        if span > 4 * self.max_buckets:  # a huge range: let each store clamp before counting
            self._zero += n_zero
            self._pos.add_indices(self._index(x[x > 0]))
            self._neg.add_indices(self._index(-x[neg]))
            return
        idx -= lo
        idx += neg * span
        both = np.bincount(idx, minlength=2 * span)
        pos_counts, neg_counts = both[:span], both[span:]
        if n_zero:
            pos_counts[span - 1] -= n_zero
            self._zero += n_zero
        self._pos.add_dense(lo, pos_counts)
        self._neg.add_dense(lo, neg_counts)

    def _index(self, v: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.log(v)
        out *= self._mult
        np.ceil(out, out=out)
        return out.astype(np.int64)

    def _value(self, idx: np.ndarray) -> np.ndarray:
        log_gamma = math.log(self._gamma)
        return np.exp(idx * log_gamma + math.log(2.0 / (1.0 + self._gamma)))

    def _buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Representative values ascending and their counts (zero-count cells included)."""
        neg, pos = self._neg, self._pos
        neg_idx = neg.offset + np.arange(neg.counts.size - 1, -1, -1)
        pos_idx = pos.offset + np.arange(pos.counts.size)
        values = np.concatenate((-self._value(neg_idx), [0.0], self._value(pos_idx)))
        counts = np.concatenate((neg.counts[::-1], [self._zero], pos.counts))
        return values, counts

    def quantile(self, q: float) -> float:
        """The estimate of the lower quantile at ``q`` in [0, 1]; NaN when empty."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: object) -> np.ndarray:
        """:meth:`quantile` for each of ``qs`` (vectorised)."""
        q = as_float_array(qs)
        if q.size and not (np.all(q >= 0.0) and np.all(q <= 1.0)):
            raise ValidationFailed("quantiles must be in [0, 1]")
        n = self.count
        if n == 0:
            return np.full(q.size, math.nan)
        values, counts = self._buckets()
        ranks = np.floor(q * (n - 1))
        found: np.ndarray = values[np.searchsorted(np.cumsum(counts), ranks, side="right")]
        return found

    def edges(self, bins: int = 20, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        """Histogram edges at the estimated quantiles 0, 1/bins, …, 1 (see
        :func:`edges_from_points`); ``lo``/``hi`` are the exact minimum and maximum when known
        (they replace the estimates at 0 and 1 and bound the others)."""
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValidationFailed(f"bins must be an integer >= 1, got {bins!r}")
        points = self.quantiles(np.linspace(0.0, 1.0, bins + 1))
        if points.size == 0 or math.isnan(points[0]):
            return edges_from_points([] if lo is None else [lo, hi if hi is not None else lo])
        if lo is not None and math.isfinite(lo):
            points[0] = lo
            points = np.maximum(points, lo)
        if hi is not None and math.isfinite(hi):
            points[-1] = hi
            points = np.minimum(points, hi)
        return edges_from_points(points)

    def _check_mergeable(self, other: QuantileSketch) -> None:
        if not isinstance(other, QuantileSketch):
            raise ValidationFailed(f"cannot merge a QuantileSketch with {type(other).__name__}")
        if (self.alpha, self.max_buckets) != (other.alpha, other.max_buckets):
            raise ValidationFailed(
                "quantile sketches differ: relative_accuracy/max_buckets "
                f"{self.alpha}/{self.max_buckets} vs {other.alpha}/{other.max_buckets}"
            )

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of both streams (same alpha and max_buckets required)."""
        out = self.copy()
        out.merge_inplace(other)
        return out

    def merge_inplace(self, other: QuantileSketch) -> None:
        """Fold ``other``'s buckets into this sketch."""
        self._check_mergeable(other)
        self._flush()
        other._flush()
        self._zero += other._zero
        self._pos.add_dense(other._pos.offset, other._pos.counts)
        self._neg.add_dense(other._neg.offset, other._neg.counts)

    def copy(self) -> QuantileSketch:
        self._flush()
        out = QuantileSketch(self.alpha, self.max_buckets)
        out._pos, out._neg, out._zero = self._pos.copy(), self._neg.copy(), self._zero
        return out

    def nbytes(self) -> int:
        """Bytes held by the bucket arrays (the live numpy memory of the sketch)."""
        self._flush()
        return int(self._pos.counts.nbytes + self._neg.counts.nbytes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        self._flush()
        other._flush()
        return (
            (self.alpha, self.max_buckets, self._zero)
            == (other.alpha, other.max_buckets, other._zero)
            and self._pos == other._pos
            and self._neg == other._neg
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(relative_accuracy={self.alpha}, count={self.count}, "
            f"buckets={self._pos.counts.size}+{self._neg.counts.size})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; each store is ``{"offset": first index, "counts": dense counts}``."""
        self._flush()
        return {
            "type": "quantile_sketch",
            "relative_accuracy": self.alpha,
            "max_buckets": self.max_buckets,
            "zero": self._zero,
            "positive": self._pos.to_dict(),
            "negative": self._neg.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileSketch:
        check_type(data, "quantile_sketch")

        def build() -> QuantileSketch:
            out = cls(float(data["relative_accuracy"]), int(data["max_buckets"]))
            zero = data["zero"]
            if isinstance(zero, bool) or not isinstance(zero, int) or zero < 0:
                raise ValidationFailed(f"quantile sketch zero count must be >= 0, got {zero!r}")
            out._zero = zero
            for store, key in ((out._pos, "positive"), (out._neg, "negative")):
                part = data[key]
                store.load(int(part["offset"]), np.asarray(part["counts"], dtype=np.int64))
            return out

        return parse_dict("quantile_sketch", build)

    def _write(self, w: Writer) -> None:
        self._flush()
        w.f64(self.alpha)
        w.u64(self.max_buckets)
        w.u64(self._zero)
        self._pos.write(w)
        self._neg.write(w)

    @classmethod
    def _read(cls, r: Reader, max_buckets_limit: int | None = None) -> QuantileSketch:
        """Read a sketch; with ``max_buckets_limit``, refuse a larger ``max_buckets`` before
        allocating anything for its buckets."""
        alpha, max_buckets, zero = r.f64(), r.u64(), r.u64()
        if max_buckets_limit is not None and max_buckets > max_buckets_limit:
            raise ValidationFailed(
                f"max_buckets is {max_buckets}; at most {max_buckets_limit}",
            )
        out = cls(alpha, max_buckets)
        out._zero = zero
        out._pos.read(r)
        out._neg.read(r)
        return out

    def to_bytes(self) -> bytes:
        """Compact binary form: sparse buckets (index gaps + counts, narrowest ints, zlib)."""
        w = Writer()
        self._write(w)
        return pack(_QUANTILE_CODE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        r = unpack(data, _QUANTILE_CODE, "QuantileSketch")
        out = cls._read(r)
        r.done()
        return out
