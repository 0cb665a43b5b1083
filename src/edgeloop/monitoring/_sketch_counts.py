"""Category counts (Misra-Gries past a cap) and prediction counts (pure numpy + stdlib)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._sketch_codec import (
    Reader,
    Writer,
    check_type,
    pack,
    parse_dict,
    unpack,
)

__all__ = ["CategoryCounter", "PredictionSketch", "TopK"]

_CATEGORY_CODE = 4
_PREDICTION_CODE = 5


def _positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValidationFailed(f"{name} must be an integer >= 1, got {v!r}")
    return v


class TopK(NamedTuple):
    """The heaviest categories, heaviest first, and the count of everything else."""

    items: list[tuple[str, int]]
    other: int


class CategoryCounter:
    """Counts of string categories: exact up to ``max_categories`` distinct values.

    While at most ``max_categories`` distinct values have been seen, the counts are exact and
    merge is the exact union (so associative and commutative). Past the cap the counter is a
    Misra-Gries summary: the (cap + 1)-th largest count is subtracted from every counter and
    the non-positive ones are dropped, keeping at most ``max_categories`` values. Then, with
    ``untracked = total - Σ counts``, for every value ``v``::

        counts.get(v, 0) <= true_count(v) <= counts.get(v, 0) + untracked / (max_categories + 1)

    so any value with more than ``total / (max_categories + 1)`` occurrences is kept. Merge
    (add, then reduce; Agarwal et al.) keeps this bound and stays commutative, but past the
    cap it is associative only up to that bound. Non-string values are counted by ``str(v)``.
    """

    __slots__ = ("_counts", "_total", "max_categories")

    def __init__(self, max_categories: int = 1000) -> None:
        self.max_categories = _positive_int("max_categories", max_categories)
        self._counts: dict[str, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        """How many values were counted."""
        return self._total

    @property
    def counts(self) -> dict[str, int]:
        """A copy of the tracked counts (exact while :attr:`exact`)."""
        return dict(self._counts)

    @property
    def untracked(self) -> int:
        """Occurrences not attributed to a tracked value (0 while exact)."""
        return self._total - sum(self._counts.values())

    @property
    def exact(self) -> bool:
        """Whether every count is exact (the cap was never exceeded)."""
        return self.untracked == 0

    @property
    def error_bound(self) -> float:
        """The most any tracked count can fall short of the true count."""
        return self.untracked / (self.max_categories + 1)

    def add(self, value: object, count: int = 1) -> None:
        """Count ``value`` ``count`` times (O(1) amortised)."""
        key = value if isinstance(value, str) else str(value)
        if count < 0:
            raise ValidationFailed(f"count must be >= 0, got {count}")
        self._counts[key] = self._counts.get(key, 0) + count
        self._total += count
        if len(self._counts) > self.max_categories:
            self._reduce()

    def update(self, values: Iterable[object]) -> None:
        """Count every value of ``values`` (one C-level pass with :class:`collections.Counter`)."""
        if isinstance(values, np.ndarray):
            values = values.ravel().tolist()
        tally = Counter(values)
        self.update_counts(list(tally.keys()), list(tally.values()))

    def update_counts(self, keys: Sequence[object], counts: Sequence[int] | np.ndarray) -> None:
        """Add ``counts[i]`` occurrences of ``keys[i]`` (e.g. from a value_counts)."""
        c = np.asarray(counts, dtype=np.int64).ravel()
        if c.size != len(keys):
            raise ValidationFailed(f"{len(keys)} keys but {c.size} counts")
        if c.size == 0:
            return
        if int(c.min()) < 0:
            raise ValidationFailed("counts must be >= 0")
        self._total += int(c.sum())
        cap = self.max_categories
        if c.size > cap:  # reduce the batch first, vectorised: same bound, less Python
            kth = int(np.partition(c, c.size - cap - 1)[c.size - cap - 1])
            keep = np.flatnonzero(c > kth)
            keys = [keys[i] for i in keep.tolist()]
            c = c[keep] - kth
        d = self._counts
        for k, n in zip(keys, c.tolist(), strict=True):
            key = k if isinstance(k, str) else str(k)
            d[key] = d.get(key, 0) + n
        if len(d) > cap:
            self._reduce()

    def _reduce(self) -> None:
        cap = self.max_categories
        vals = np.fromiter(self._counts.values(), dtype=np.int64, count=len(self._counts))
        kth = int(np.partition(vals, vals.size - cap - 1)[vals.size - cap - 1])
        self._counts = {k: v - kth for k, v in self._counts.items() if v > kth}

    def top(self, k: int = 10) -> TopK:
        """The ``k`` heaviest values (ties by value) and the count of all the others."""
        ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(k, 0)]
        return TopK(ranked, self._total - sum(n for _, n in ranked))

    def _check_mergeable(self, other: CategoryCounter) -> None:
        if not isinstance(other, CategoryCounter):
            raise ValidationFailed(f"cannot merge a CategoryCounter with {type(other).__name__}")
        if self.max_categories != other.max_categories:
            raise ValidationFailed(
                f"category counters differ: max_categories {self.max_categories} vs "
                f"{other.max_categories}"
            )

    def merge(self, other: CategoryCounter) -> CategoryCounter:
        """A new counter of both streams (same ``max_categories`` required)."""
        out = self.copy()
        out.merge_inplace(other)
        return out

    def merge_inplace(self, other: CategoryCounter) -> None:
        """Fold ``other`` into this counter."""
        self._check_mergeable(other)
        d = self._counts
        for k, n in other._counts.items():
            d[k] = d.get(k, 0) + n
        self._total += other._total
        if len(d) > self.max_categories:
            self._reduce()

    def copy(self) -> CategoryCounter:
        out = CategoryCounter(self.max_categories)
        out._counts, out._total = dict(self._counts), self._total
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryCounter):
            return NotImplemented
        return (self.max_categories, self._total, self._counts) == (
            other.max_categories,
            other._total,
            other._counts,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        top = self.top(5)
        return f"CategoryCounter(total={self._total}, top={top.items!r}, other={top.other})"

    def to_dict(self) -> dict[str, Any]:
        """``{"type", "max_categories", "total", "counts": {value: count}}`` (heaviest first)."""
        return {
            "type": "category_counter",
            "max_categories": self.max_categories,
            "total": self._total,
            "counts": dict(self.top(len(self._counts)).items),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoryCounter:
        check_type(data, "category_counter")

        def build() -> CategoryCounter:
            out = cls(data["max_categories"])
            counts = data["counts"]
            if not isinstance(counts, Mapping):
                raise ValidationFailed("category_counter counts must be a mapping")
            out._load(list(counts.keys()), list(counts.values()), data["total"])
            return out

        return parse_dict("category_counter", build)

    def _load(self, keys: list[Any], counts: list[Any], total: object) -> None:
        if not all(isinstance(k, str) for k in keys):
            raise ValidationFailed("category_counter keys must be strings")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in counts):
            raise ValidationFailed("category_counter counts must be integers > 0")
        if len(keys) > self.max_categories:
            raise ValidationFailed(f"{len(keys)} categories > max_categories")
        if isinstance(total, bool) or not isinstance(total, int) or total < sum(counts):
            raise ValidationFailed(f"category_counter total {total!r} < sum of counts")
        self._counts = dict(zip(keys, counts, strict=True))
        self._total = total

    def _write(self, w: Writer) -> None:
        items = sorted(self._counts.items())
        encoded = [k.encode("utf-8") for k, _ in items]
        w.u64(self.max_categories)
        w.u64(self._total)
        w.ints(np.array([len(e) for e in encoded], dtype=np.int64))
        w.raw(b"".join(encoded))
        w.ints(np.array([n for _, n in items], dtype=np.int64))

    @classmethod
    def _read(cls, r: Reader) -> CategoryCounter:
        cap, total = r.u64(), r.u64()
        lengths, blob, counts = r.ints(), r.raw(), r.ints()
        if lengths.size != counts.size or int(lengths.sum()) != len(blob):
            raise ValidationFailed("category counter bytes are inconsistent")
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]] if ends else []
        try:
            keys = [blob[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"category counter bytes hold invalid UTF-8: {exc}") from exc
        out = cls(cap)
        out._load(keys, counts.tolist(), total)
        return out

    def to_bytes(self) -> bytes:
        """Compact binary form (key lengths + UTF-8 keys + narrowest-int counts, zlib)."""
        w = Writer()
        self._write(w)
        return pack(_CATEGORY_CODE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoryCounter:
        r = unpack(data, _CATEGORY_CODE, "CategoryCounter")
        out = cls._read(r)
        r.done()
        return out


class PredictionSketch:
    """Predicted-class counts and confidence sums of a classifier's outputs.

    For each prediction the class is the arg-max of the probabilities and the confidence their
    maximum. ``counts[c]`` counts predictions of class ``c`` and ``confidence_sums[c]`` adds
    their confidences; ``mean_confidence`` is the overall mean. Counts merge exactly; the float
    sums merge commutatively and associatively up to rounding.
    """

    __slots__ = ("confidence_sums", "counts", "n_classes")

    def __init__(self, n_classes: int) -> None:
        self.n_classes = _positive_int("n_classes", n_classes)
        self.counts = np.zeros(n_classes, dtype=np.int64)
        self.confidence_sums = np.zeros(n_classes, dtype=np.float64)

    @property
    def count(self) -> int:
        """How many predictions were counted."""
        return int(self.counts.sum())

    @property
    def mean_confidence(self) -> float:
        """Mean of the max-probability over all predictions (NaN when empty)."""
        n = self.count
        return float(self.confidence_sums.sum()) / n if n else math.nan

    def class_shares(self) -> np.ndarray:
        """The share of predictions per class (zeros when empty)."""
        n = self.count
        return self.counts / n if n else np.zeros(self.n_classes)

    def add(self, probabilities: Sequence[float] | np.ndarray) -> None:
        """Count one prediction from its class probabilities (or scores)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (self.n_classes,):
            raise ValidationFailed(f"expected {self.n_classes} probabilities, got shape {p.shape}")
        c = int(p.argmax())
        self.add_prediction(c, float(p[c]))

    def add_prediction(self, predicted: int, confidence: float) -> None:
        """Count one prediction of class ``predicted`` with ``confidence`` (O(1))."""
        if not 0 <= predicted < self.n_classes:
            raise ValidationFailed(f"class {predicted} is outside 0..{self.n_classes - 1}")
        if not math.isfinite(confidence):
            raise ValidationFailed(f"confidence must be finite, got {confidence!r}")
        self.counts[predicted] += 1
        self.confidence_sums[predicted] += confidence

    def update(self, probabilities: np.ndarray) -> None:
        """Count a batch: ``probabilities`` has shape ``(n, n_classes)``."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.n_classes:
            raise ValidationFailed(
                f"probabilities must have shape (n, {self.n_classes}), got {p.shape}"
            )
        if p.shape[0] == 0:
            return
        predicted = p.argmax(axis=1)
        self.update_predictions(predicted, p[np.arange(p.shape[0]), predicted])

    def update_predictions(self, predicted: object, confidences: object) -> None:
        """Count a batch of (class, confidence) pairs (vectorised)."""
        c = np.asarray(predicted).ravel()
        w = np.asarray(confidences, dtype=np.float64).ravel()
        if c.size != w.size:
            raise ValidationFailed(f"{c.size} classes but {w.size} confidences")
        if c.size == 0:
            return
        if not np.issubdtype(c.dtype, np.integer):
            raise ValidationFailed(f"predicted classes must be integers, got {c.dtype}")
        if int(c.min()) < 0 or int(c.max()) >= self.n_classes:
            raise ValidationFailed(f"predicted classes must be in 0..{self.n_classes - 1}")
        if not np.all(np.isfinite(w)):
            raise ValidationFailed("confidences must be finite")
        self.counts += np.bincount(c, minlength=self.n_classes)
        self.confidence_sums += np.bincount(c, weights=w, minlength=self.n_classes)

    def _check_mergeable(self, other: PredictionSketch) -> None:
        if not isinstance(other, PredictionSketch):
            raise ValidationFailed(f"cannot merge a PredictionSketch with {type(other).__name__}")
        if self.n_classes != other.n_classes:
            raise ValidationFailed(
                f"prediction sketches differ: n_classes {self.n_classes} vs {other.n_classes}"
            )

    def merge(self, other: PredictionSketch) -> PredictionSketch:
        """A new sketch of both streams (same ``n_classes`` required)."""
        out = self.copy()
        out.merge_inplace(other)
        return out

    def merge_inplace(self, other: PredictionSketch) -> None:
        self._check_mergeable(other)
        self.counts += other.counts
        self.confidence_sums += other.confidence_sums

    def copy(self) -> PredictionSketch:
        out = PredictionSketch(self.n_classes)
        out.counts, out.confidence_sums = self.counts.copy(), self.confidence_sums.copy()
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PredictionSketch):
            return NotImplemented
        return (
            self.n_classes == other.n_classes
            and np.array_equal(self.counts, other.counts)
            and np.array_equal(self.confidence_sums, other.confidence_sums)
        )

    __hash__ = None  # type: ignore[assignment]

    def almost_equal(self, other: PredictionSketch, rel_tol: float = 1e-9) -> bool:
        """Exact counts; confidence sums within ``rel_tol``."""
        return (
            self.n_classes == other.n_classes
            and np.array_equal(self.counts, other.counts)
            and bool(np.allclose(self.confidence_sums, other.confidence_sums, rtol=rel_tol))
        )

    def __repr__(self) -> str:
        return (
            f"PredictionSketch(n_classes={self.n_classes}, counts={self.counts.tolist()}, "
            f"mean_confidence={self.mean_confidence!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "prediction_sketch",
            "n_classes": self.n_classes,
            "counts": self.counts.tolist(),
            "confidence_sums": self.confidence_sums.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionSketch:
        check_type(data, "prediction_sketch")

        def build() -> PredictionSketch:
            out = cls(data["n_classes"])
            out._load(
                np.asarray(data["counts"], dtype=np.int64),
                np.asarray(data["confidence_sums"], dtype=np.float64),
            )
            return out

        return parse_dict("prediction_sketch", build)

    def _load(self, counts: np.ndarray, sums: np.ndarray) -> None:
        if counts.shape != (self.n_classes,) or sums.shape != (self.n_classes,):
            raise ValidationFailed(f"prediction sketch needs {self.n_classes} counts and sums")
        if counts.size and int(counts.min()) < 0:
            raise ValidationFailed("prediction counts must be >= 0")
        self.counts, self.confidence_sums = counts.copy(), sums.copy()

    def _write(self, w: Writer) -> None:
        w.u64(self.n_classes)
        w.ints(self.counts)
        w.floats(self.confidence_sums)

    @classmethod
    def _read(cls, r: Reader) -> PredictionSketch:
        n, counts, sums = r.u64(), r.ints(), r.floats()
        if counts.size != n or sums.size != n:  # before allocating n classes
            raise ValidationFailed(f"prediction sketch needs {n} counts and sums")
        out = cls(n)
        out._load(counts, sums)
        return out

    def to_bytes(self) -> bytes:
        w = Writer()
        self._write(w)
        return pack(_PREDICTION_CODE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> PredictionSketch:
        r = unpack(data, _PREDICTION_CODE, "PredictionSketch")
        out = cls._read(r)
        r.done()
        return out
