"""A reference and a current distribution in one of the accepted forms, behind one interface.

Samples (numeric or categorical arrays), :class:`FeatureSketch` or :class:`Histogram` pairs,
and count pairs (:class:`CategoryCounter`, :class:`PredictionSketch`, ``{value: count}``) each
answer the questions the drift tests ask: how many rows, how many distinct values, the KS
statistic, the normalised Wasserstein distance, and aligned counts for the categorical tests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._drift_sketch import (
    check_same_edges,
    histogram_ks,
    histogram_wasserstein,
    numeric_cells,
    sketch_ks,
    sketch_wasserstein,
    unique_lower_bound,
)
from edgeloop.monitoring._drift_stats import STD_FLOOR, ks_statistic_sorted, wasserstein_sorted
from edgeloop.monitoring.sketch import CategoryCounter, FeatureSketch, Histogram, PredictionSketch

__all__ = ["FeatureKind", "Pair", "make_pair"]

FeatureKind = Literal["numeric", "categorical"]
_OTHER = "\x00other"  # the untracked mass of an approximate category counter
_EVIDENTLY_MAX_VALUES = 20  # at most this many reference values: bin by value, not by range


class Pair(Protocol):
    """What the drift tests need from a (reference, current) pair."""

    kind: FeatureKind
    n_reference: int
    n_current: int

    def n_unique(self) -> int:
        """Distinct values of both together: exact up to 20 on samples (at least 21 past
        that), a lower bound on sketches."""
        ...

    def ks(self) -> tuple[float, float | None]:
        """(statistic, error bound)."""
        ...

    def wasserstein(self) -> tuple[float, float | None]:
        """(W1 / max(std_ref, 0.001), error bound)."""
        ...

    def counts(self, binned: bool) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Aligned counts (reference, current) and the error bound of statistics on them.

        ``binned``: for Jensen-Shannon and PSI (numeric data with many values is binned);
        otherwise for chi-squared and the z-test (one cell per value)."""
        ...


def _not_numeric(kind: str) -> ValidationFailed:
    return ValidationFailed(f"this test needs numeric data; the feature is {kind}")


def _distinct_sorted(x: np.ndarray) -> int:
    return int(np.count_nonzero(x[1:] != x[:-1])) + 1 if x.size else 0


class _NumericSamples:
    kind: FeatureKind = "numeric"

    def __init__(self, reference: object, current: object) -> None:
        def finite(values: object, name: str) -> np.ndarray:
            try:
                x = np.asarray(values, dtype=np.float64).ravel()
            except (TypeError, ValueError) as exc:
                raise ValidationFailed(f"{name} values must be numbers: {exc}") from exc
            return np.sort(x[np.isfinite(x)])  # NaN and ±inf are left out, as Evidently does

        self.a, self.b = finite(reference, "reference"), finite(current, "current")
        self.n_reference, self.n_current = int(self.a.size), int(self.b.size)

    def n_unique(self) -> int:
        distinct = _distinct_sorted(self.a)
        if distinct > _EVIDENTLY_MAX_VALUES:
            return distinct  # enough to know that there are many
        return int(np.union1d(np.unique(self.a), np.unique(self.b)).size)

    def ks(self) -> tuple[float, float | None]:
        return ks_statistic_sorted(self.a, self.b), 0.0

    def wasserstein(self) -> tuple[float, float | None]:
        w1 = wasserstein_sorted(self.a, self.b)
        return w1 / max(float(np.std(self.a)), STD_FLOOR), 0.0

    def counts(self, binned: bool) -> tuple[np.ndarray, np.ndarray, float | None]:
        both = np.concatenate((self.a, self.b))
        if binned and _distinct_sorted(self.a) > _EVIDENTLY_MAX_VALUES:
            edges = np.histogram_bin_edges(both, bins="sturges")  # Evidently's binning
            r = np.histogram(self.a, edges)[0]
            c = np.histogram(self.b, edges)[0]
            return r, c, 0.0
        values, inverse = np.unique(both, return_inverse=True)
        r = np.bincount(inverse[: self.n_reference], minlength=values.size)
        c = np.bincount(inverse[self.n_reference :], minlength=values.size)
        return r, c, 0.0


def _present(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


class _Counts:
    kind: FeatureKind = "categorical"

    def __init__(self, reference: Mapping[object, int], current: Mapping[object, int]) -> None:
        self.keys = sorted(set(reference) | set(current), key=lambda k: (type(k).__name__, k))
        self.r = np.array([reference.get(k, 0) for k in self.keys], dtype=np.int64)
        self.c = np.array([current.get(k, 0) for k in self.keys], dtype=np.int64)
        if self.r.size and int(min(self.r.min(), self.c.min())) < 0:
            raise ValidationFailed("category counts must be >= 0")
        self.n_reference, self.n_current = int(self.r.sum()), int(self.c.sum())
        self.error: float | None = 0.0

    def n_unique(self) -> int:
        return int(np.count_nonzero(self.r + self.c))

    def ks(self) -> tuple[float, float | None]:
        raise _not_numeric(self.kind)

    def wasserstein(self) -> tuple[float, float | None]:
        raise _not_numeric(self.kind)

    def counts(self, binned: bool) -> tuple[np.ndarray, np.ndarray, float | None]:
        keep = (self.r + self.c) > 0
        return self.r[keep], self.c[keep], self.error


def _category_samples(reference: object, current: object) -> _Counts:
    def tally(values: object) -> Counter[object]:
        if isinstance(values, np.ndarray):
            values = values.ravel().tolist()
        if not isinstance(values, Iterable):
            raise ValidationFailed(f"samples must be an array or a sequence, got {values!r}")
        return Counter(v for v in values if _present(v))

    return _Counts(tally(reference), tally(current))


def _counter_counts(counter: CategoryCounter) -> dict[object, int]:
    out: dict[object, int] = {}
    out.update(counter.counts)
    if counter.untracked:
        out[_OTHER] = counter.untracked
    return out


class _NumericSketches:
    kind: FeatureKind = "numeric"

    def __init__(
        self, reference: FeatureSketch | Histogram, current: FeatureSketch | Histogram
    ) -> None:
        if isinstance(reference, Histogram) or isinstance(current, Histogram):
            reference = reference.histogram if isinstance(reference, FeatureSketch) else reference
            current = current.histogram if isinstance(current, FeatureSketch) else current
            self.n_reference, self.n_current = reference.total, current.total
        else:
            self.n_reference, self.n_current = reference.sketch.count, current.sketch.count
        check_same_edges(
            reference.histogram if isinstance(reference, FeatureSketch) else reference,
            current.histogram if isinstance(current, FeatureSketch) else current,
        )
        self.reference, self.current = reference, current
        self._unique: int | None = None

    def n_unique(self) -> int:
        if self._unique is None:
            self._unique = unique_lower_bound(self.reference, self.current)
        return self._unique

    def ks(self) -> tuple[float, float | None]:
        r, c = self.reference, self.current
        if isinstance(r, FeatureSketch) and isinstance(c, FeatureSketch):
            return sketch_ks(r, c)
        assert isinstance(r, Histogram) and isinstance(c, Histogram)
        return histogram_ks(r, c)

    def wasserstein(self) -> tuple[float, float | None]:
        r, c = self.reference, self.current
        if isinstance(r, FeatureSketch) and isinstance(c, FeatureSketch):
            return sketch_wasserstein(r, c)
        assert isinstance(r, Histogram) and isinstance(c, Histogram)
        return histogram_wasserstein(r, c)

    def counts(self, binned: bool) -> tuple[np.ndarray, np.ndarray, float | None]:
        per_value = not binned or self.n_unique() <= _EVIDENTLY_MAX_VALUES
        r, c = numeric_cells(self.reference, self.current, per_value)
        return r, c, None


def _is_samples(x: object) -> bool:
    return not isinstance(
        x, FeatureSketch | Histogram | CategoryCounter | PredictionSketch | Mapping | str
    )


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _samples_kind(values: object) -> FeatureKind:
    """Numbers (None and NaN allowed among them) are numeric; anything else categorical."""
    try:
        probe = np.asarray(values)
    except ValueError as exc:
        raise ValidationFailed(f"samples must be a flat sequence of values: {exc}") from exc
    if probe.dtype.kind in "iuf":
        return "numeric"
    if probe.dtype.kind == "O":
        present = [v for v in probe.ravel().tolist() if _present(v)]
        if present and all(_is_number(v) for v in present):
            return "numeric"
    return "categorical"


def _none_as_nan(values: object) -> np.ndarray:
    probe = np.asarray(values)
    if probe.dtype.kind != "O":
        return probe
    return np.array([math.nan if v is None else v for v in probe.ravel().tolist()], dtype=float)


def make_pair(reference: object, current: object, kind: FeatureKind | None) -> Pair:
    """The :class:`Pair` for two distributions of the same form."""
    if kind not in (None, "numeric", "categorical"):
        raise ValidationFailed(f"kind must be 'numeric' or 'categorical', got {kind!r}")
    numeric_sketches = (FeatureSketch, Histogram)
    if isinstance(reference, numeric_sketches) and isinstance(current, numeric_sketches):
        if kind == "categorical":
            raise ValidationFailed("feature sketches and histograms hold numeric data")
        return _NumericSketches(reference, current)
    if isinstance(reference, CategoryCounter) and isinstance(current, CategoryCounter):
        pair = _Counts(_counter_counts(reference), _counter_counts(current))
        pair.error = 0.0 if reference.exact and current.exact else None
        return pair
    if isinstance(reference, PredictionSketch) and isinstance(current, PredictionSketch):
        if reference.n_classes != current.n_classes:
            raise ValidationFailed(
                f"prediction sketches differ: n_classes {reference.n_classes} vs "
                f"{current.n_classes}"
            )
        classes = range(reference.n_classes)
        return _Counts(
            {k: int(reference.counts[k]) for k in classes},
            {k: int(current.counts[k]) for k in classes},
        )
    if isinstance(reference, Mapping) and isinstance(current, Mapping):
        return _Counts(reference, current)
    if _is_samples(reference) and _is_samples(current):
        if kind is None:
            kind = _samples_kind(reference)
        if kind == "numeric":
            return _NumericSamples(_none_as_nan(reference), _none_as_nan(current))
        return _category_samples(reference, current)
    raise ValidationFailed(
        "reference and current must be of the same form: two arrays of samples, two "
        "FeatureSketch/Histogram, two CategoryCounter, two PredictionSketch or two "
        f"{{value: count}} mappings; got {type(reference).__name__} and "
        f"{type(current).__name__}"
    )
