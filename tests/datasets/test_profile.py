"""Dataset profiles: merge == profile of the union, chunking changes nothing, column kinds,
reference edges, serialisation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeloop.datasets._profiler as profile_module
from edgeloop.datasets._profile import ColumnProfile, DatasetProfile
from edgeloop.datasets._profiler import (
    column_kind,
    profile_batches,
    profile_parquet,
    profile_table,
    reference_edges,
)
from edgeloop.errors import ValidationFailed

FAST = settings(max_examples=40, deadline=None)

maybe_float = st.one_of(
    st.none(),
    st.just(math.nan),
    st.just(0.0),
    st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-3),
)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 50))

    def col(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    return pa.table(
        {
            "x": pa.array(col(maybe_float), pa.float64()),
            "i": pa.array(col(st.one_of(st.none(), st.integers(-5, 5))), pa.int64()),
            "flag": pa.array(col(st.one_of(st.none(), st.booleans())), pa.bool_()),
            "site": pa.array(col(st.one_of(st.none(), st.sampled_from("abcde"))), pa.string()),
            "seq": pa.array(
                col(st.one_of(st.none(), st.lists(maybe_float, max_size=3))),
                pa.list_(pa.float64()),
            ),
            "y": pa.array(col(st.integers(0, 2)), pa.int64()),
        }
    )


def values(table: pa.Table, column: str) -> np.ndarray:
    arr = table[column].combine_chunks()
    return np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


@FAST
@given(tables(), st.data())
def test_merge_of_parts_equals_profile_of_the_union(table: pa.Table, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, table.num_rows))
    a, b = table.slice(0, k), table.slice(k)
    edges = profile_table(a if data.draw(st.booleans()) else table, label="y").edges()
    pa_, pb = profile_table(a, label="y", edges=edges), profile_table(b, label="y", edges=edges)
    union = profile_table(table, label="y", edges=edges)
    merged = pa_.merge(pb)
    assert merged.almost_equal(union)
    assert pb.merge(pa_).almost_equal(union)
    assert merged.edges() == union.edges() == edges
    # ground truth for the exact parts
    x = values(table, "x")
    col = merged.columns["x"]
    assert (col.count, col.nulls) == (int(np.sum(~np.isnan(x))), int(np.sum(np.isnan(x))))
    if col.count:
        assert (col.min, col.max) == (np.nanmin(x), np.nanmax(x))
        assert col.mean == pytest.approx(np.nanmean(x), rel=1e-9, abs=1e-6)
    finite = x[~np.isnan(x)]
    cut = np.asarray(edges["x"])
    expected = np.bincount(np.searchsorted(cut, finite, side="right"), minlength=cut.size + 1)
    assert col.histogram == expected.tolist()
    sites = [s for s in table["site"].to_pylist() if s is not None]
    assert merged.columns["site"].categories is not None
    assert merged.columns["site"].categories.counts == {s: sites.count(s) for s in set(sites)}
    assert merged.class_balance() == {
        str(v): table["y"].to_pylist().count(v) for v in set(table["y"].to_pylist())
    }


@FAST
@given(tables(), st.integers(1, 17))
def test_batch_size_changes_nothing(table: pa.Table, batch_rows: int) -> None:
    whole = profile_table(table, label="y")
    chunked = profile_table(table, label="y", batch_rows=batch_rows)
    assert chunked.almost_equal(whole, rel_tol=1e-12)
    assert chunked.edges() == whole.edges()
    streamed = profile_batches(iter(table.to_batches(max_chunksize=batch_rows)), label="y")
    if table.num_rows:
        assert streamed.almost_equal(whole, rel_tol=1e-12)
    back = DatasetProfile.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert back == whole


def test_parquet_in_small_batches_equals_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    table = pa.table(
        {
            "temp": 290.0 + rng.normal(0, 3, n),
            "acc": np.where(rng.random(n) < 0.01, np.nan, rng.standard_t(3, n)),
            "count": pa.array(rng.poisson(3, n), mask=rng.random(n) < 0.05),
            "site": pa.array(rng.choice(["north", "south", "east"], n)),
            "label": pa.array(rng.choice(["ok", "fault"], n, p=[0.9, 0.1])),
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path, row_group_size=50_000)
    small = profile_parquet(path, label="label", batch_rows=7_000)
    one = profile_table(pq.read_table(path), label="label", batch_rows=n)
    assert small.almost_equal(one, rel_tol=1e-12)
    assert small.edges() == one.edges()
    assert small.rows == n
    assert small.class_balance().keys() == {"ok", "fault"}
    # the reference bins hold roughly equal shares, also for an offset column like kelvins
    for name in ("temp", "acc"):
        hist = small.columns[name].histogram
        assert hist is not None
        assert hist[0] == hist[-1] == 0
        assert 19 <= len(hist) - 2 <= 21
        shares = np.array(hist[1:-1]) / sum(hist)
        assert shares.max() < 0.07 and shares.min() > 0.03, (name, hist)
    # windows of production data are binned with the reference edges, in one pass
    window = profile_parquet(path, label="label", edges=small.edges(), batch_rows=50_000)
    assert window.almost_equal(small, rel_tol=1e-12)
    # row groups too big for the read budget are read one column group at a time
    monkeypatch.setattr(profile_module, "_READ_BUDGET", 1)
    by_column = profile_parquet(path, label="label", batch_rows=50_000)
    assert by_column.almost_equal(small, rel_tol=1e-12)


def test_column_kinds() -> None:
    n = 4
    table = pa.table(
        {
            "f32": pa.array([1.5, None, 2.5, 3.5], pa.float32()),
            "flag": pa.array([True, False, None, True]),
            "ts": pa.array([0, 1000, None, 3000], pa.timestamp("us")),
            "day": pa.array([0, 1, 2, None], pa.date32()),
            "dec": pa.array([1, 2, 3, 4], pa.decimal128(5, 2)),
            "word": pa.array(["a", "b", None, "a"], pa.large_string()),
            "dict": pa.array(["x", "y", "x", None]).dictionary_encode(),
            "vec": pa.array([[1, 2], None, [3, 4], [5, 6]], pa.list_(pa.int32(), 2)),
            "lst": pa.array([[1.0], [], None, [2.0, 3.0]], pa.large_list(pa.float64())),
            "nested": pa.array([{"a": 1}] * n),
            "label": pa.array([1, 0, 1, 1], pa.int8()),
        }
    )
    p = profile_table(table, label="label")
    kinds = {name: col.kind for name, col in p.columns.items()}
    assert kinds == {
        "f32": "numeric",
        "flag": "numeric",
        "ts": "numeric",
        "day": "numeric",
        "dec": "numeric",
        "word": "categorical",
        "dict": "categorical",
        "vec": "sequence",
        "lst": "sequence",
        "label": "categorical",
    }  # the struct column is left out
    c = p.columns
    assert (c["f32"].count, c["f32"].nulls, c["f32"].min, c["f32"].max) == (3, 1, 1.5, 3.5)
    assert c["flag"].mean == pytest.approx(2 / 3)
    assert c["flag"].nulls == 1
    assert (c["ts"].min, c["ts"].max) == (0.0, 3.0)  # epoch milliseconds
    assert c["day"].max == 2 * 86_400_000.0
    assert c["dec"].mean == pytest.approx(2.5)
    assert (c["word"].count, c["word"].nulls) == (3, 1)
    assert c["dict"].categories is not None and c["dict"].categories.counts == {"x": 2, "y": 1}
    assert (c["vec"].count, c["vec"].nulls) == (3, 1)
    assert c["vec"].mean == pytest.approx(3.5)
    assert c["lst"].lengths is not None and c["lst"].lengths.mean == pytest.approx(1.0)
    assert c["lst"].feature is not None and c["lst"].feature.count == 3
    assert p.class_balance() == {"1": 3, "0": 1}
    assert column_kind(pa.int8(), is_label=True) == "categorical"
    assert column_kind(pa.binary()) is None
    row = c["word"].summary_row()
    assert row == ("categorical", 3, 1, None, None, None, None, "a:2, b:1")
    assert c["f32"].summary_row()[6] == pytest.approx(2.5, rel=0.01)


def test_reference_edges_for_special_columns() -> None:
    n = 1_000
    table = pa.table(
        {
            "const": np.full(n, 7.0),
            "empty": pa.array([None] * n, pa.float64()),
            "flag": np.arange(n) % 10 < 7,
            "small": np.arange(n) % 4,
        }
    )
    edges = reference_edges(table)
    assert edges["const"] == [6.5, 7.5]
    assert edges["empty"] == [0.0, 1.0]
    p = profile_table(table)
    assert p.columns["flag"].histogram == [0, 300, 700, 0]  # 0 and 1 in bins of their own
    assert p.columns["small"].histogram == [0, 250, 250, 250, 250, 0]
    assert p.columns["empty"].count == 0 and p.columns["empty"].nulls == n
    assert reference_edges(p) == p.edges() == edges
    assert reference_edges(iter(table.to_batches(100))) == edges


def test_merge_rules() -> None:
    a = profile_table(pa.table({"x": [1.0, 2.0], "s": ["a", "b"]}))
    b = profile_table(pa.table({"x": [3.0, 4.0]}), edges=a.edges())
    merged = a.merge(b)
    assert merged.rows == 4
    assert (merged.columns["s"].count, merged.columns["s"].nulls) == (2, 2)
    with pytest.raises(ValidationFailed, match="column 'x'"):
        a.merge(profile_table(pa.table({"x": [3.0, 4.0]})))  # its own edges
    with pytest.raises(ValidationFailed, match="labels"):
        a.merge(DatasetProfile(0, {}, "y"))
    with pytest.raises(ValidationFailed, match="cannot merge a numeric column"):
        a.merge(profile_table(pa.table({"x": ["a"]})))


def test_validation_and_empty_input() -> None:
    table = pa.table({"x": [1.0], "y": ["a"]})
    with pytest.raises(ValidationFailed, match="label column 'z'"):
        profile_table(table, label="z")
    with pytest.raises(ValidationFailed, match="edges of column 'x'"):
        profile_table(table, edges={"x": [1.0, 0.0]})
    with pytest.raises(ValidationFailed, match="bins"):
        profile_table(table, bins=0)
    with pytest.raises(ValidationFailed, match="Parquet"):
        profile_parquet("/nonexistent/file.parquet")
    with pytest.raises(ValidationFailed):
        DatasetProfile.from_dict({"format": "other"})
    with pytest.raises(ValidationFailed, match="column 'x'"):
        DatasetProfile.from_dict(
            {"format": "edgeloop.profile/1", "rows": 1, "label": None, "columns": {"x": {}}}
        )
    assert profile_batches([]) == DatasetProfile(0, {}, None)
    empty = profile_table(table.slice(0, 0), label="y")
    assert empty.rows == 0 and empty.columns["x"].count == 0
    assert empty.columns["x"].quantile(0.5) is None
    assert empty.to_dict()["columns"]["x"]["stats"]["mean"] is None
    assert isinstance(ColumnProfile.from_dict(empty.columns["y"].to_dict()), ColumnProfile)
