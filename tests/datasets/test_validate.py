"""Validation: every rule fires with the right count and samples, and clean data passes."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from edgeloop.datasets._readers import SensorInfo
from edgeloop.datasets._schema import ColumnSchema, DatasetSchema, SensorSchema, infer_schema
from edgeloop.datasets._validate import RuleResult, ValidationReport, validate_table
from edgeloop.errors import ValidationFailed


def clean() -> pa.Table:
    return pa.table(
        {
            "id": ["r0", "r1", "r2", "r3", "r4", "r5"],
            "temp": [-10.0, 0.0, 5.5, 20.0, 35.0, None],
            "count": pa.array([0, 1, 2, 3, 4, 5], pa.int32()),
            "site": ["north", "south", "north", "south", "north", "east"],
            "code": ["AB-1", "CD-22", "EF-3", "GH-4", "IJ-5", "KL-6"],
            "label": ["idle", "walk", "idle", "run", "walk", "idle"],
        }
    )


def schema(**changes: Any) -> DatasetSchema:
    """The clean table's schema, tightened; ``changes`` update whole columns or fields."""
    columns = [
        ColumnSchema(name="id", type="string", nullable=False, unique=True),
        ColumnSchema(name="temp", type="float", min=-10.0, max=35.0),
        ColumnSchema(name="count", type="int", nullable=False, min=0, max=5),
        ColumnSchema(name="site", type="string", categories=["east", "north", "south"]),
        ColumnSchema(name="code", type="string", regex=r"[A-Z]{2}-\d+"),
        ColumnSchema(name="label", type="string", nullable=False),
    ]
    fields: dict[str, Any] = {
        "columns": columns,
        "label": "label",
        "key": "id",
        "label_set": ["idle", "run", "walk"],
    }
    fields.update(changes)
    return DatasetSchema(**fields)


def replace(table: pa.Table, name: str, values: Any, typ: pa.DataType | None = None) -> pa.Table:
    index = table.column_names.index(name)
    return table.set_column(index, name, pa.array(values, type=typ))


def only(report: ValidationReport, rule: str) -> RuleResult:
    assert not report.ok
    assert [r.rule for r in report.results] == [rule], report.summary()
    return report.results[0]


def test_clean_data_passes() -> None:
    report = validate_table(clean(), schema())
    assert report == ValidationReport(ok=True, rows=6, results=[])
    assert report.summary() == "all 6 rows passed every rule"


def test_inferred_schema_accepts_its_own_data() -> None:
    table = clean()
    assert validate_table(table, infer_schema(table, label="label", key="id", sensor=None)).ok


def test_not_null() -> None:
    table = replace(clean(), "count", [0, None, 2, None, 4, 5], pa.int32())
    result = only(validate_table(table, schema()), "not_null")
    assert (result.column, result.failed) == ("count", 2)
    assert result.samples == [
        {"row": 1, "value": None, "id": "r1"},
        {"row": 3, "value": None, "id": "r3"},
    ]
    assert "2 null value(s) but is not nullable" in result.message


def test_the_key_is_never_null_and_always_unique_whatever_its_column_says() -> None:
    loose = schema()
    loose.columns[0] = ColumnSchema(name="id", type="string")
    table = replace(clean(), "id", ["a", "a", None, "b", "b", "b"])
    rules = {r.rule: r for r in validate_table(table, loose).results}
    assert rules["not_null"].failed == 1
    assert rules["unique"].failed == 3


def test_min_and_max_are_inclusive() -> None:
    table = replace(clean(), "temp", [-10.5, -10.0, 35.0, 35.1, 99.0, None])
    report = validate_table(table, schema())
    low, high = report.results
    assert (low.rule, low.failed, [s["row"] for s in low.samples]) == ("min", 1, [0])
    assert (high.rule, high.failed, [s["value"] for s in high.samples]) == ("max", 2, [35.1, 99.0])
    assert "below min -10.0" in low.message and "above max 35.0" in high.message


def test_int_bounds_on_an_int_column() -> None:
    table = replace(clean(), "count", [0, 1, 2, 3, 4, 6], pa.int32())
    result = only(validate_table(table, schema()), "max")
    assert result.samples == [{"row": 5, "value": 6, "id": "r5"}]


def test_allowed_set() -> None:
    table = replace(clean(), "site", ["north", "west", None, "up", "west", "east"])
    result = only(validate_table(table, schema()), "allowed_set")
    assert result.failed == 3
    assert [s["value"] for s in result.samples] == ["west", "up", "west"]


def test_categories_on_ints_compare_as_strings() -> None:
    s = schema()
    s.columns[2] = ColumnSchema(name="count", type="int", categories=["0", "1", "2", "3", "4"])
    result = only(validate_table(clean(), s), "allowed_set")
    assert (result.failed, result.samples[0]["value"]) == (1, 5)


def test_unique_reports_duplicates() -> None:
    s = schema()
    s.columns[3] = ColumnSchema(name="site", type="string", unique=True)
    result = only(validate_table(clean(), s), "unique")
    assert result.failed == 3  # north x3 and south x2: 3 rows repeat an earlier value
    assert result.samples == [
        {"value": "north", "count": 3, "rows": [0, 2, 4]},
        {"value": "south", "count": 2, "rows": [1, 3]},
    ]
    assert "3 duplicate value(s) (2 value(s) repeat)" in result.message


def test_regex_matches_whole_values() -> None:
    table = replace(clean(), "code", ["AB-1", "xAB-1", "AB-1x", None, "ab-1", "AB-77"])
    result = only(validate_table(table, schema()), "regex")
    assert result.failed == 3
    assert [s["value"] for s in result.samples] == ["xAB-1", "AB-1x", "ab-1"]


def test_type_mismatch_with_unparsable_strings() -> None:
    table = replace(clean(), "temp", ["1.5", "n/a", "-2e3", "warm", None, "inf"])
    result = only(validate_table(table, schema()), "type")
    assert (result.column, result.failed) == ("temp", 5)
    assert [s["value"] for s in result.samples] == ["n/a", "warm"]
    assert "holds string but the schema expects float; 2 value(s) are not float" in result.message


def test_type_mismatch_with_parsable_strings_says_convert() -> None:
    table = replace(clean(), "count", ["0", "1", "2", "3", "4", "5"])
    result = only(validate_table(table, schema()), "type")
    assert result.failed == 6 and "every value reads as int: convert the column" in result.message
    assert len(result.samples) == 5


def test_type_mismatch_of_other_kinds() -> None:
    table = replace(clean(), "site", [1, 2, 3, 4, 5, 6])
    result = only(validate_table(table, schema()), "type")
    assert result.message == "column 'site' holds int64 but the schema expects string"
    assert result.samples[0] == {"row": 0, "value": 1, "id": "r0"}


def test_types_that_fit() -> None:
    table = replace(clean(), "temp", [-10, 0, 5, 20, 35, None], pa.int64())
    assert validate_table(table, schema()).ok
    table = replace(clean(), "temp", pa.nulls(6))
    assert validate_table(table, schema()).ok
    table = replace(clean(), "site", pa.array(["north"] * 6).dictionary_encode())
    assert validate_table(table, schema()).ok
    decimals = [Decimal("-10"), Decimal("0"), Decimal("5.5"), Decimal("20"), Decimal("36"), None]
    result = only(validate_table(replace(clean(), "temp", decimals), schema()), "max")
    assert result.samples[0]["value"] == "36.0"


def test_missing_and_unexpected_columns() -> None:
    table = clean().drop_columns(["code"]).append_column("extra", pa.array([1] * 6))
    report = validate_table(table, schema())
    assert [(r.rule, r.column, r.failed) for r in report.results] == [
        ("missing_column", "code", 1),
        ("unexpected_column", "extra", 1),
    ]
    assert "column 'code' (string) is missing" in report.results[0].message


def test_row_count() -> None:
    assert only(validate_table(clean(), schema(row_count_min=7)), "row_count").message == (
        "the data has 6 rows, fewer than row_count_min 7"
    )
    assert (
        "more than row_count_max 5"
        in only(validate_table(clean(), schema(row_count_max=5)), "row_count").message
    )
    assert validate_table(clean(), schema(row_count_min=6, row_count_max=6)).ok


def test_label_set() -> None:
    table = replace(clean(), "label", ["idle", "jump", "idle", "swim", "jump", "idle"])
    result = only(validate_table(table, schema()), "label_set")
    assert (result.column, result.failed) == ("label", 3)
    assert "'jump', 'swim'" in result.message
    assert [s["row"] for s in result.samples] == [1, 3, 4]


def sensor_table() -> pa.Table:
    return pa.table(
        {
            "sample_id": ["a.csv", "b.csv", "c.csv"],
            "x": pa.array([[0.1] * 4, [0.2] * 2, [0.3] * 5], pa.list_(pa.float32())),
        }
    )


def sensor_schema(**sensor: Any) -> DatasetSchema:
    return DatasetSchema(
        columns=[
            ColumnSchema(name="sample_id", type="string", nullable=False),
            ColumnSchema(name="x", type="sequence"),
        ],
        sensor=SensorSchema(**{"sample_rate": 100.0, "axes": ["x"], **sensor}),
    )


def test_sensor_rules() -> None:
    info = SensorInfo(101.0, ("x",), 2, 5)
    assert validate_table(sensor_table(), sensor_schema(), sensor=info).ok
    slow = only(
        validate_table(sensor_table(), sensor_schema(), sensor=SensorInfo(50.0, ("x",), 2, 5)),
        "sensor_sample_rate",
    )
    assert slow.message == "the recordings' sample rate is 50 Hz, the schema expects 100 Hz"
    unknown = SensorInfo(None, ("x",), 2, 5)
    assert (
        "unknown"
        in only(
            validate_table(sensor_table(), sensor_schema(), sensor=unknown), "sensor_sample_rate"
        ).message
    )
    axes = only(
        validate_table(sensor_table(), sensor_schema(), sensor=SensorInfo(100.0, ("y",), 2, 5)),
        "sensor_axes",
    )
    assert "axes ['y'], the schema expects ['x']" in axes.message
    assert (
        "not sensor recordings"
        in only(validate_table(sensor_table(), sensor_schema(), sensor=None), "sensor_axes").message
    )
    short = only(
        validate_table(sensor_table(), sensor_schema(window_length=4), sensor=info),
        "sensor_length",
    )
    assert (short.failed, short.samples) == (
        1,
        [{"row": 1, "value": [0.20000000298023224] * 2, "sample_id": "b.csv"}],
    )


def test_a_schema_without_sensor_ignores_sensor_info() -> None:
    s = infer_schema(sensor_table(), label=None, key=None, sensor=None)
    assert validate_table(sensor_table(), s, sensor=SensorInfo(1.0, ("x",), 1, 1)).ok


def test_samples_are_json_and_capped_at_five() -> None:
    n = 20
    table = pa.table(
        {
            "at": pa.array([dt.datetime(2024, 1, 1)] * n, pa.timestamp("s")),
            "v": [math.nan if i % 2 else math.inf for i in range(n)],
            "seq": [list(range(30))] * n,
        }
    )
    s = DatasetSchema(
        columns=[
            ColumnSchema(name="at", type="int"),
            ColumnSchema(name="v", type="int"),
            ColumnSchema(name="seq", type="string"),
        ]
    )
    report = validate_table(table, s)
    assert [len(r.samples) for r in report.results] == [5, 5, 5]
    assert report.results[0].samples[0]["value"] == "2024-01-01T00:00:00"
    assert report.results[1].samples[:2] == [{"row": 0, "value": "inf"}, {"row": 1, "value": "nan"}]
    assert report.results[2].samples[0]["value"][-1] == "…"
    json.dumps(report.model_dump(mode="json"), allow_nan=False)


def test_summary_groups_by_rule_with_counts() -> None:
    table = replace(clean(), "temp", [-99.0, -98.0, 0.0, 0.0, 0.0, None])
    table = replace(table, "site", ["x", "north", "south", "north", "south", "east"])
    table = table.append_column("extra", pa.array([1] * 6))
    summary = validate_table(table, schema()).summary()
    assert summary == (
        "6 rows, 3 failed checks. "
        "min (2 failing): column 'temp' has 2 value(s) below min -10.0. "
        "allowed_set (1 failing): column 'site' has 1 value(s) outside its categories. "
        "unexpected_column (1 failing): column 'extra' is not in the schema; add it to the "
        "schema to accept it"
    )


def test_rules_that_cannot_run_raise_validation_failed() -> None:
    table = pa.table({"n": pa.array([1, 2], pa.uint64())})
    s = DatasetSchema(columns=[ColumnSchema(name="n", type="int", min=-(2**70))])
    with pytest.raises(ValidationFailed, match=r"could not check column 'n'"):
        validate_table(table, s)


def test_a_million_rows_are_checked_at_once() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    values = rng.normal(size=n)
    values[[10, 500_000]] = 99.0
    table = pa.table(
        {
            "id": pa.array(np.arange(n)),
            "v": values,
            "site": pa.array(np.array(["north", "south"])[rng.integers(0, 2, n)]),
        }
    )
    s = DatasetSchema(
        columns=[
            ColumnSchema(name="id", type="int", nullable=False, unique=True),
            ColumnSchema(name="v", type="float", min=-10, max=10),
            ColumnSchema(name="site", type="string", categories=["north", "south"]),
        ],
        key="id",
    )
    result = only(validate_table(table, s), "max")
    assert result.failed == 2
    assert result.samples == [
        {"row": 10, "value": 99.0, "id": 10},
        {"row": 500_000, "value": 99.0, "id": 500_000},
    ]
