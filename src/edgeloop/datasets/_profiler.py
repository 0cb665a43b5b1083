"""Dataset profiles: per-column mergeable sketches, the reference for drift monitoring.

A profile holds, per column, the sketches of :mod:`edgeloop.monitoring.sketch` — the same ones
a device keeps — so a device window is compared with the reference bin for bin.

- **numeric** (integers, floats, booleans as 0/1, decimals; timestamps, dates, times and
  durations in milliseconds): a :class:`FeatureSketch` (count, NaN-or-null count, min, max,
  mean, std, quantiles, histogram over fixed edges).
- **categorical** (strings, dictionaries; the label column always, whatever its type): a
  :class:`CategoryCounter` (exact up to ``max_categories`` values, top-k + other past it).
- **sequence** (list / large_list / fixed_size_list of numbers): a :class:`FeatureSketch` of the
  flattened values plus a :class:`NumericSummary` of the list lengths; ``count``/``nulls``
  count lists.

Columns of any other type (structs, binaries, nested lists, …) are left out.

**Edges.** A *reference* profile chooses its histogram edges from the data, in two passes.
Pass 1 feeds a quantile sketch per numeric column (plus the exact min and max); its estimates
of the quantiles at 1/bins, 2/bins, … bracket the true ones within the sketch's relative
error, and cut points are laid over those brackets (densely where the brackets overlap, as for
timestamps or pressures, whose spread is small next to their magnitude). Pass 2 counts the
values over the cut points, exactly, and keeps for each target quantile the cut point nearest
to it: about ``bins`` bins of equal mass whose counts are exact sums. Constant columns get
``[c - 0.5, c + 0.5)``; a value holding a large share of the mass gets a bin of its own.

Later windows are binned identically by passing ``edges=reference.edges()``, in one pass;
then ``profile(A, edges=E).merge(profile(B, edges=E))`` equals ``profile(A + B, edges=E)``
(exactly for counts, histograms, categories, quantile buckets, min and max; up to float
rounding for mean and std). The batch size changes nothing either (same rounding caveat).

Work is vectorised per batch (pyarrow.compute and numpy); memory is bounded by one batch (for
Parquet, one row group's column group) plus the sketches, whatever the number of rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from edgeloop.datasets._profile import (
    _MS_PER_DAY,
    _TO_MS,
    ColumnKind,
    ColumnProfile,
    DatasetProfile,
)
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.sketch import (
    CategoryCounter,
    FeatureSketch,
    Histogram,
    NumericSummary,
    QuantileSketch,
    edges_from_points,
)

BatchSource = Callable[[Sequence[str] | None], Iterator[pa.RecordBatch]]

__all__ = [
    "column_kind",
    "profile_batches",
    "profile_parquet",
    "profile_table",
    "reference_edges",
]


def column_kind(dtype: pa.DataType, *, is_label: bool = False) -> ColumnKind | None:
    """How a column of ``dtype`` is profiled (``None``: left out)."""
    t = pa.types
    if is_label:
        ok = (
            t.is_integer(dtype)
            or t.is_floating(dtype)
            or t.is_boolean(dtype)
            or _is_stringish(dtype)
            or t.is_dictionary(dtype)
        )
        return "categorical" if ok else None
    if _is_numberish(dtype) or t.is_null(dtype):
        return "numeric"
    if _is_stringish(dtype) or t.is_dictionary(dtype):
        return "categorical"
    if (
        t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype)
    ) and _is_numberish(dtype.value_type):
        return "sequence"
    return None


def _is_stringish(dtype: pa.DataType) -> bool:
    t = pa.types
    return bool(t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype))


def _is_numberish(dtype: pa.DataType) -> bool:
    t = pa.types
    return bool(
        t.is_integer(dtype)
        or t.is_floating(dtype)
        or t.is_boolean(dtype)
        or t.is_decimal(dtype)
        or t.is_temporal(dtype)
    )


def _float_values(arr: pa.Array) -> np.ndarray:
    """A numeric-ish Arrow array as float64, nulls as NaN (temporal values in ms)."""
    t = arr.type
    if pa.types.is_null(t):
        return np.full(len(arr), np.nan)
    mul, div = 1.0, 1.0
    if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_time(t):
        mul, div = _TO_MS[t.unit]
        arr = pc.cast(arr, pa.int64() if t.bit_width == 64 else pa.int32())
    elif pa.types.is_date32(t):
        mul = _MS_PER_DAY
        arr = pc.cast(arr, pa.int32())
    elif pa.types.is_date64(t):
        arr = pc.cast(arr, pa.int64())
    if arr.type != pa.float64():
        arr = pc.cast(arr, pa.float64(), safe=False)
    x: np.ndarray = arr.to_numpy(zero_copy_only=False)
    if mul != 1.0:
        x = x * mul
    if div != 1.0:
        x = x / div
    return x


def _category_counts(arr: pa.Array) -> tuple[list[Any], np.ndarray]:
    """The non-null values of ``arr`` (as strings) and their counts."""
    if pa.types.is_dictionary(arr.type):
        vc = pc.value_counts(arr.indices)
        idx, counts = vc.field("values"), vc.field("counts")
        if idx.null_count:
            valid = idx.is_valid()
            idx, counts = idx.filter(valid), counts.filter(valid)
        keys = arr.dictionary.take(idx)
    else:
        vc = pc.value_counts(arr)
        keys, counts = vc.field("values"), vc.field("counts")
    if keys.null_count:
        valid = keys.is_valid()
        keys, counts = keys.filter(valid), counts.filter(valid)
    if not _is_stringish(keys.type):
        keys = pc.cast(keys, pa.string())
    return keys.to_pylist(), counts.to_numpy(zero_copy_only=False)


def _finite_range(summary: NumericSummary, sketch: QuantileSketch) -> tuple[float, float] | None:
    """The exact finite min and max, or the sketch's estimates when infinities hide them."""
    if sketch.count == 0:
        return None
    lo = summary.min if math.isfinite(summary.min) else sketch.quantile(0.0)
    hi = summary.max if math.isfinite(summary.max) else sketch.quantile(1.0)
    return lo, hi


def _candidate_edges(
    sketch: QuantileSketch, lo: float, hi: float, bins: int, per_quantile: int = 32
) -> np.ndarray:
    """Cut points that bracket every target quantile closely enough to pick edges from.

    The sketch's estimate ``e`` of each quantile is within ``alpha*|v|`` of the true value
    ``v``, so ``v`` lies in ``[e/(1+alpha), e/(1-alpha)]`` (clipped to ``[lo, hi]``). Where
    such intervals overlap — data whose spread is small next to its magnitude, such as
    timestamps or pressures — a uniform grid of ``per_quantile`` points per quantile is laid
    over their union; elsewhere the estimate itself is the candidate.
    """
    a = sketch.relative_accuracy
    est = np.clip(sketch.quantiles(np.arange(1, bins) / bins), lo, hi)
    lo_k = np.clip(np.where(est >= 0, est / (1 + a), est / (1 - a)), lo, hi)
    hi_k = np.clip(np.where(est >= 0, est / (1 - a), est / (1 + a)), lo, hi)
    parts = [np.array([lo, hi]), est]
    start = 0
    for k in range(1, est.size + 1):
        if k == est.size or lo_k[k] > hi_k[start:k].max():
            if k - start >= 2:
                g_lo, g_hi = float(lo_k[start:k].min()), float(hi_k[start:k].max())
                parts.append(np.linspace(g_lo, g_hi, per_quantile * (k - start) + 1))
            start = k
    top = float(np.nextafter(hi, np.inf))
    if math.isfinite(top):
        parts.append(np.array([top]))
    points: np.ndarray = np.unique(np.concatenate(parts))
    return points


def _select_edges(fine: Histogram, bins: int) -> Histogram:
    """Coarsen a histogram over candidate cut points to ~``bins`` equal-mass bins, exactly.

    For each target rank ``k/bins`` the cut point whose count of smaller values is nearest is
    kept (the largest such point when several tie, so edges sit on data values); counts of
    the kept bins are sums of the fine bins, hence exact.
    """
    b, c = fine.edges, fine.counts
    cdf = np.cumsum(c)[:-1]  # cdf[i] = number of values < b[i]
    base, n = int(cdf[0]), int(cdf[-1] - cdf[0])
    targets = base + n * np.arange(1, bins) / bins
    pos = np.clip(np.searchsorted(cdf, targets), 1, b.size - 1)
    below = np.abs(cdf[pos - 1] - targets) <= np.abs(cdf[pos] - targets)
    chosen = np.where(below, pos - 1, pos)
    chosen = np.searchsorted(cdf, cdf[chosen], side="right") - 1
    keep = np.unique(np.concatenate(([0], chosen, [b.size - 1])))
    cum = np.concatenate(([0], np.cumsum(c)))
    counts = np.concatenate(([c[0]], cum[keep[1:] + 1] - cum[keep[:-1] + 1], [c[-1]]))
    return Histogram(b[keep], counts)


class _ColumnBuilder:
    """Accumulates one column over the batches of one or two passes.

    With known edges everything happens in pass 1. Without, pass 1 feeds the summary and the
    quantile sketch; :meth:`plan_edges` turns the sketch into candidate cut points; pass 2
    counts the values over them; :meth:`result` keeps about ``bins`` equal-mass bins.
    """

    def __init__(
        self,
        kind: ColumnKind,
        edges: np.ndarray | None,
        max_categories: int,
        relative_accuracy: float,
    ) -> None:
        self.kind = kind
        self.count = 0
        self.nulls = 0
        self.counter = CategoryCounter(max_categories) if kind == "categorical" else None
        self.summary = NumericSummary()
        self.sketch = QuantileSketch(relative_accuracy)
        self.hist = None if edges is None else Histogram(edges)
        self.lengths = NumericSummary() if kind == "sequence" else None
        self.needs_edges = kind != "categorical" and edges is None
        self.refine = False

    def _values(self, arr: pa.Array) -> np.ndarray:
        if self.kind == "sequence":
            return _float_values(pc.list_flatten(arr))
        return _float_values(arr)

    def first_pass(self, arr: pa.Array) -> None:
        if self.counter is not None:
            keys, counts = _category_counts(arr)
            self.counter.update_counts(keys, counts)
            present = int(counts.sum())
            self.count += present
            self.nulls += len(arr) - present
            return
        if self.lengths is not None:
            self.lengths.update(_float_values(pc.list_value_length(arr)))
        x = self._values(arr)
        if self.hist is not None:  # edges known: one pass does it all
            FeatureSketch.from_parts(self.summary, self.hist, self.sketch).update(x)
        else:
            self.summary.update(x)
            self.sketch.update(x)

    def plan_edges(self, bins: int) -> None:
        span = _finite_range(self.summary, self.sketch)
        if span is None or span[0] == span[1]:  # empty or constant: fixed edges
            self.hist = Histogram(edges_from_points([] if span is None else [span[0]]))
        else:
            self.hist = Histogram(_candidate_edges(self.sketch, span[0], span[1], bins))
            self.refine = True

    def second_pass(self, arr: pa.Array) -> None:
        assert self.hist is not None
        self.hist.update(self._values(arr))

    def result(self, bins: int) -> ColumnProfile:
        if self.counter is not None:
            return ColumnProfile("categorical", self.count, self.nulls, categories=self.counter)
        assert self.hist is not None
        hist = _select_edges(self.hist, bins) if self.refine else self.hist
        feature = FeatureSketch.from_parts(self.summary, hist, self.sketch)
        if self.lengths is not None:
            return ColumnProfile(
                "sequence", self.lengths.count, self.lengths.nulls, feature, lengths=self.lengths
            )
        return ColumnProfile("numeric", self.summary.count, self.summary.nulls, feature)


def _check_edges(edges: Mapping[str, Sequence[float]] | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, e in (edges or {}).items():
        try:
            out[name] = Histogram(e).edges
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"edges of column {name!r}: {exc.message}", details={"column": name}
            ) from exc
    return out


def _plan(
    schema: pa.Schema,
    label: str | None,
    edges: Mapping[str, Sequence[float]] | None,
    max_categories: int,
    relative_accuracy: float,
) -> dict[str, _ColumnBuilder]:
    if label is not None and label not in schema.names:
        raise ValidationFailed(f"label column {label!r} is not among the columns {schema.names}")
    fixed = _check_edges(edges)
    builders: dict[str, _ColumnBuilder] = {}
    for f in schema:
        kind = column_kind(f.type, is_label=f.name == label)
        if kind is None or f.name in builders:
            continue
        builders[f.name] = _ColumnBuilder(
            kind,
            fixed.get(f.name) if kind != "categorical" else None,
            max_categories,
            relative_accuracy,
        )
    return builders


def _profile(
    source: BatchSource,
    schema: pa.Schema,
    *,
    label: str | None,
    edges: Mapping[str, Sequence[float]] | None,
    bins: int,
    max_categories: int,
    relative_accuracy: float,
    rows: int | None = None,
) -> DatasetProfile:
    """Run the passes. Batches hold every column, or (when ``rows`` is given, as for Parquet
    read one column group at a time) any subset of them, each column in row order."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationFailed(f"bins must be an integer >= 1, got {bins!r}")
    builders = _plan(schema, label, edges, max_categories, relative_accuracy)
    expected = set(schema.names)
    counted = 0
    for batch in source(None):
        counted += batch.num_rows
        present = batch.schema.names
        subset_ok = rows is not None and set(present) <= expected
        if set(present) != expected and not subset_ok:
            raise ValidationFailed(
                f"a batch has the columns {present}, not {schema.names}",
                details={"columns": present},
            )
        for i, name in enumerate(present):
            builder = builders.get(name)
            if builder is None:
                continue
            arr = batch.column(i)
            if column_kind(arr.type, is_label=name == label) != builder.kind:
                raise ValidationFailed(
                    f"column {name!r} changed type between batches: {arr.type} is not "
                    f"{builder.kind}",
                    details={"column": name},
                )
            builder.first_pass(arr)
    pending = [name for name, b in builders.items() if b.needs_edges]
    for name in pending:
        builders[name].plan_edges(bins)
    if pending:
        for batch in source(pending):
            for i, name in enumerate(batch.schema.names):
                if name in builders and builders[name].needs_edges:
                    builders[name].second_pass(batch.column(i))
    total = counted if rows is None else rows
    return DatasetProfile(total, {n: b.result(bins) for n, b in builders.items()}, label)


def _select(batch: pa.RecordBatch, columns: Sequence[str] | None) -> pa.RecordBatch:
    return batch if columns is None else batch.select(list(columns))


def _needs_second_pass(
    schema: pa.Schema, label: str | None, edges: Mapping[str, Sequence[float]] | None
) -> bool:
    fixed = edges or {}
    return any(
        column_kind(f.type, is_label=f.name == label) in ("numeric", "sequence")
        and f.name not in fixed
        for f in schema
    )


# --------------------------------------------------------------------------- public API


def profile_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    label: str | None = None,
    edges: Mapping[str, Sequence[float]] | None = None,
    bins: int = 20,
    schema: pa.Schema | None = None,
    max_categories: int = 1000,
    relative_accuracy: float = 0.01,
) -> DatasetProfile:
    """Profile a stream of record batches.

    Numeric and sequence columns named in ``edges`` are binned with those edges; the others get
    about ``bins`` equal-mass bins chosen from the data, which takes a second pass. A list (or
    other re-iterable) is simply read twice; a one-shot iterator is then kept in memory for the
    second pass, so pass a re-iterable, or every column's ``edges``, to keep memory bounded.
    ``schema`` defaults to the first batch's (an empty stream without one profiles no column).
    """
    it = iter(batches)
    first = next(it, None)
    if schema is None:
        if first is None:
            return DatasetProfile(0, {}, label)
        schema = first.schema
    reiterable = it is not batches
    hold = not reiterable and _needs_second_pass(schema, label, edges)
    held: list[pa.RecordBatch] = []

    def source(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        nonlocal first
        if reiterable:
            yield from (_select(b, columns) for b in batches)
        elif first is not None:  # the first pass over a one-shot iterator
            batch, first = first, None
            for b in itertools.chain([batch], it):
                if hold:
                    held.append(b)
                yield _select(b, columns)
        else:
            yield from (_select(b, columns) for b in held)

    return _profile(
        source,
        schema,
        label=label,
        edges=edges,
        bins=bins,
        max_categories=max_categories,
        relative_accuracy=relative_accuracy,
    )


def profile_table(
    table: pa.Table,
    *,
    label: str | None = None,
    edges: Mapping[str, Sequence[float]] | None = None,
    bins: int = 20,
    batch_rows: int = 65_536,
    max_categories: int = 1000,
    relative_accuracy: float = 0.01,
) -> DatasetProfile:
    """Profile an in-memory table, ``batch_rows`` rows at a time (see
    :func:`profile_batches`; the batch size changes nothing but rounding in means)."""
    if not isinstance(table, pa.Table):
        raise ValidationFailed(f"profile_table needs a pyarrow.Table, got {type(table).__name__}")

    def source(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        t = table if columns is None else table.select(list(columns))
        return iter(t.to_batches(max_chunksize=batch_rows))

    return _profile(
        source,
        table.schema,
        label=label,
        edges=edges,
        bins=bins,
        max_categories=max_categories,
        relative_accuracy=relative_accuracy,
    )


def profile_parquet(
    path: str | Path,
    *,
    label: str | None = None,
    edges: Mapping[str, Sequence[float]] | None = None,
    bins: int = 20,
    batch_rows: int = 65_536,
    max_categories: int = 1000,
    relative_accuracy: float = 0.01,
) -> DatasetProfile:
    """Profile a Parquet file, streaming ``batch_rows`` rows at a time.

    Memory stays bounded whatever the number of rows: the file is read one row group at a
    time, and a row group whose columns decode to more than 64 MB is read a few columns at a
    time (so the peak follows the largest column chunk, not the file or the row group). String
    columns are read as dictionaries and counted by index. When edges must be chosen from the
    data, the second pass reads only the columns that need them.
    """
    pf = _open_parquet(path)
    with pf:
        return _profile(
            _parquet_source(pf, batch_rows),
            pf.schema_arrow,
            label=label,
            edges=edges,
            bins=bins,
            max_categories=max_categories,
            relative_accuracy=relative_accuracy,
            rows=pf.metadata.num_rows,
        )


_READ_BUDGET = 64 * 2**20  # uncompressed bytes of column chunks read at once


def _parquet_source(pf: pq.ParquetFile, batch_rows: int) -> BatchSource:
    """Batches of ``pf``, one row group and one group of columns at a time.

    Iterating a whole file with one ``iter_batches`` keeps what it has read until it ends
    (peak RSS ~ the file's size); one call per row group and column group keeps it bounded.
    """
    meta = pf.metadata
    names = pf.schema_arrow.names

    def sizes(rg: int) -> dict[str, int]:
        out: dict[str, int] = {}
        group = meta.row_group(rg)
        for j in range(group.num_columns):
            chunk = group.column(j)
            top = chunk.path_in_schema.split(".")[0]
            out[top] = out.get(top, 0) + int(chunk.total_uncompressed_size)
        return out

    def source(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        wanted = names if columns is None else list(columns)
        for rg in range(meta.num_row_groups):
            size = sizes(rg)
            group: list[str] = []
            used = 0
            for name in [*wanted, None]:
                cost = size.get(name, 0) if name is not None else 0
                if group and (name is None or used + cost > _READ_BUDGET):
                    yield from pf.iter_batches(
                        batch_size=batch_rows, row_groups=[rg], columns=group
                    )
                    group, used = [], 0
                if name is not None:
                    group.append(name)
                    used += cost

    return source


def _open_parquet(path: str | Path) -> pq.ParquetFile:
    try:
        schema = pq.read_schema(path)
        strings = [f.name for f in schema if _is_stringish(f.type)]
        return pq.ParquetFile(path, read_dictionary=strings or None)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ValidationFailed(f"cannot read Parquet file {str(path)!r}: {exc}") from exc


def reference_edges(
    data: DatasetProfile | pa.Table | Iterable[pa.RecordBatch] | str | Path,
    *,
    label: str | None = None,
    bins: int = 20,
) -> dict[str, list[float]]:
    """Histogram edges per numeric and sequence column, chosen from ``data`` (a profile's own
    edges; or a table, batches or Parquet path profiled as a reference)."""
    if isinstance(data, DatasetProfile):
        return data.edges()
    if isinstance(data, str | Path):
        return profile_parquet(data, label=label, bins=bins).edges()
    if isinstance(data, pa.Table):
        return profile_table(data, label=label, bins=bins).edges()
    return profile_batches(data, label=label, bins=bins).edges()
