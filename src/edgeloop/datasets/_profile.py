"""Dataset profiles: per-column mergeable summaries (see ``_profiler`` for how they are built)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.sketch import (
    CategoryCounter,
    FeatureSketch,
    NumericSummary,
    TopK,
)

__all__ = ["PROFILE_FORMAT", "ColumnKind", "ColumnProfile", "DatasetProfile"]

ColumnKind = Literal["numeric", "categorical", "sequence"]
PROFILE_FORMAT = "edgeloop.profile/1"
_KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "sequence")
_STAT_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
_TO_MS = {"s": (1000.0, 1.0), "ms": (1.0, 1.0), "us": (1.0, 1e3), "ns": (1.0, 1e6)}  # (x, ÷)
_MS_PER_DAY = 86_400_000.0


# --------------------------------------------------------------------------- column profiles


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(eq=True)
class ColumnProfile:
    """The profile of one column.

    ``count`` counts present values (for sequences: present lists) and ``nulls`` missing ones
    (Arrow nulls, plus NaN for numeric columns; null lists for sequences). ``feature`` is set
    for numeric and sequence columns, ``categories`` for categorical ones, ``lengths`` (list
    lengths) for sequences.
    """

    kind: ColumnKind
    count: int = 0
    nulls: int = 0
    feature: FeatureSketch | None = None
    categories: CategoryCounter | None = None
    lengths: NumericSummary | None = None

    # ---- statistics
    def _summary(self) -> NumericSummary | None:
        if self.feature is None or self.feature.summary.count == 0:
            return None
        return self.feature.summary

    @property
    def min(self) -> float | None:
        """Minimum (numeric and sequence columns with values), else ``None``."""
        s = self._summary()
        return None if s is None else s.min

    @property
    def max(self) -> float | None:
        s = self._summary()
        return None if s is None else s.max

    @property
    def mean(self) -> float | None:
        s = self._summary()
        return None if s is None else _opt(s.mean)

    @property
    def std(self) -> float | None:
        """Population standard deviation."""
        s = self._summary()
        return None if s is None else _opt(s.std)

    def quantile(self, q: float) -> float | None:
        """Estimated lower quantile (relative error ≤ alpha, see QuantileSketch), else ``None``."""
        if self._summary() is None or self.feature is None or self.feature.sketch.count == 0:
            return None
        return self.feature.quantile(q)

    @property
    def edges(self) -> list[float] | None:
        """Histogram edges (numeric and sequence columns), else ``None``."""
        return None if self.feature is None else self.feature.edges.tolist()

    @property
    def histogram(self) -> list[int] | None:
        """Histogram counts, underflow first and overflow last, else ``None``."""
        return None if self.feature is None else self.feature.histogram.counts.tolist()

    def top(self, k: int = 10) -> TopK | None:
        """The ``k`` most frequent values and the count of the rest (categorical), else None."""
        return None if self.categories is None else self.categories.top(k)

    def summary_row(
        self,
    ) -> tuple[str, int, int, float | None, float | None, float | None, float | None, str]:
        """``(kind, count, nulls, min, max, mean, p50, top)`` for a one-line display."""
        top = ""
        if self.categories is not None:
            t = self.categories.top(3)
            top = ", ".join(f"{v}:{n}" for v, n in t.items)
            if t.other:
                top += f", other:{t.other}"
        return (
            self.kind,
            self.count,
            self.nulls,
            self.min,
            self.max,
            self.mean,
            self.quantile(0.5),
            top,
        )

    # ---- merging
    @classmethod
    def _all_null(cls, like: ColumnProfile, rows: int) -> ColumnProfile:
        out = cls(like.kind, 0, rows)
        if like.feature is not None:
            f = like.feature
            out.feature = FeatureSketch(f.edges, f.sketch.relative_accuracy, f.sketch.max_buckets)
            if like.kind == "numeric":
                out.feature.summary.nulls = rows
        if like.categories is not None:
            out.categories = CategoryCounter(like.categories.max_categories)
        if like.lengths is not None:
            out.lengths = NumericSummary()
            out.lengths.nulls = rows
        return out

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both columns' values (same kind and edges required)."""
        if self.kind != other.kind:
            raise ValidationFailed(f"cannot merge a {self.kind} column with a {other.kind} one")
        out = ColumnProfile(self.kind, self.count + other.count, self.nulls + other.nulls)
        if self.feature is not None and other.feature is not None:
            out.feature = self.feature.merge(other.feature)
        if self.categories is not None and other.categories is not None:
            out.categories = self.categories.merge(other.categories)
        if self.lengths is not None and other.lengths is not None:
            out.lengths = self.lengths.merge(other.lengths)
        return out

    def almost_equal(self, other: ColumnProfile, rel_tol: float = 1e-9) -> bool:
        """Equal, except mean and std (and list-length moments) within ``rel_tol``."""

        def close(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return bool(a.almost_equal(b, rel_tol))

        return (
            (self.kind, self.count, self.nulls) == (other.kind, other.count, other.nulls)
            and self.categories == other.categories
            and close(self.feature, other.feature)
            and close(self.lengths, other.lengths)
        )

    # ---- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-able. ``stats`` (min, max, mean, std, p05…p95) is derived, for reading only."""
        out: dict[str, Any] = {"kind": self.kind, "count": self.count, "nulls": self.nulls}
        if self.feature is not None:
            stats: dict[str, float | None] = {
                "min": self.min,
                "max": self.max,
                "mean": self.mean,
                "std": self.std,
            }
            stats.update({k: self.quantile(q) for k, q in _STAT_QUANTILES.items()})
            out["stats"] = {
                k: (v if v is None or math.isfinite(v) else None) for k, v in stats.items()
            }
            out["feature"] = self.feature.to_dict()
        if self.categories is not None:
            out["categories"] = self.categories.to_dict()
        if self.lengths is not None:
            out["lengths"] = self.lengths.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        if not isinstance(data, Mapping):
            raise ValidationFailed(f"a column profile must be a dict, got {type(data).__name__}")
        kind = data.get("kind")
        if kind not in _KINDS:
            raise ValidationFailed(f"column kind must be one of {_KINDS}, got {kind!r}")
        count, nulls = data.get("count"), data.get("nulls")
        for name, v in (("count", count), ("nulls", nulls)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValidationFailed(f"column {name} must be an integer >= 0, got {v!r}")
        out = cls(cast(ColumnKind, kind), cast(int, count), cast(int, nulls))
        needs = {
            "numeric": ("feature",),
            "sequence": ("feature", "lengths"),
            "categorical": ("categories",),
        }[cast(str, kind)]
        for key in needs:
            if key not in data:
                raise ValidationFailed(f"a {kind} column profile needs {key!r}")
        if "feature" in needs:
            out.feature = FeatureSketch.from_dict(data["feature"])
        if "categories" in needs:
            out.categories = CategoryCounter.from_dict(data["categories"])
        if "lengths" in needs:
            out.lengths = NumericSummary.from_dict(data["lengths"])
        return out


@dataclass(eq=True)
class DatasetProfile:
    """Profiles of every column of a dataset; ``label`` names the label column, whose
    category counts are the class balance."""

    rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    label: str | None = None

    def edges(self) -> dict[str, list[float]]:
        """Histogram edges per numeric and sequence column: pass as ``edges=`` to bin other
        data identically."""
        return {
            name: col.feature.edges.tolist()
            for name, col in self.columns.items()
            if col.feature is not None
        }

    def class_balance(self) -> dict[str, int]:
        """The label column's counts, heaviest first (empty without a label)."""
        col = self.columns.get(self.label) if self.label else None
        if col is None or col.categories is None:
            return {}
        return dict(col.categories.top(len(col.categories.counts)).items)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both datasets' rows.

        Columns must have the same kind and edges. A column present on one side only counts
        the other side's rows as nulls (as if the column were there, all null).
        """
        if not isinstance(other, DatasetProfile):
            raise ValidationFailed(f"cannot merge a DatasetProfile with {type(other).__name__}")
        if self.label != other.label:
            raise ValidationFailed(
                f"profiles have different labels: {self.label!r} vs {other.label!r}"
            )
        columns: dict[str, ColumnProfile] = {}
        for name in [*self.columns, *(c for c in other.columns if c not in self.columns)]:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is None:
                a = ColumnProfile._all_null(cast(ColumnProfile, b), self.rows)
            if b is None:
                b = ColumnProfile._all_null(a, other.rows)
            try:
                columns[name] = a.merge(b)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    f"column {name!r}: {exc.message}", details={"column": name}
                ) from exc
        return DatasetProfile(self.rows + other.rows, columns, self.label)

    def almost_equal(self, other: DatasetProfile, rel_tol: float = 1e-9) -> bool:
        """Equal, except means and standard deviations within ``rel_tol``."""
        return (self.rows, self.label, list(self.columns)) == (
            other.rows,
            other.label,
            list(other.columns),
        ) and all(c.almost_equal(other.columns[n], rel_tol) for n, c in self.columns.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"format", "rows", "label", "columns": {name: column dict}}``."""
        return {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "label": self.label,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProfile:
        if not isinstance(data, Mapping) or data.get("format") != PROFILE_FORMAT:
            raise ValidationFailed(f"not a dataset profile (format must be {PROFILE_FORMAT!r})")
        rows, label, columns = data.get("rows"), data.get("label"), data.get("columns")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValidationFailed(f"profile rows must be an integer >= 0, got {rows!r}")
        if label is not None and not isinstance(label, str):
            raise ValidationFailed(f"profile label must be a string or null, got {label!r}")
        if not isinstance(columns, Mapping):
            raise ValidationFailed("profile columns must be a mapping")
        parsed: dict[str, ColumnProfile] = {}
        for name, col in columns.items():
            try:
                parsed[str(name)] = ColumnProfile.from_dict(col)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    f"column {name!r}: {exc.message}", details={"column": name}
                ) from exc
        return cls(rows, parsed, label)


# --------------------------------------------------------------------------- Arrow → numpy
