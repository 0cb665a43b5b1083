"""Schemas: inference from a table, YAML round-trips, and readable errors for bad YAML."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.datasets._readers import SensorInfo
from edgeloop.datasets._schema import (
    MAX_CATEGORIES,
    ColumnSchema,
    DatasetSchema,
    SensorSchema,
    infer_schema,
    schema_from_yaml,
    schema_to_yaml,
)
from edgeloop.errors import ValidationFailed


def table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([3, 1, 2, 4], pa.int32()),
            "temp": [21.5, None, -3.25, 40.0],
            "ok": [True, False, True, True],
            "site": ["a", "b", "a", None],
            "note": ["x", "y", "z", "w"],
            "at": pa.array([dt.datetime(2024, 1, d) for d in range(1, 5)], pa.timestamp("ms")),
            "series": pa.array([[1.0], [2.0, 3.0], [], None], pa.list_(pa.float32())),
            "species": ["cat", "dog", "cat", "eel"],
            "empty": pa.nulls(4),
        }
    )


def test_infer_schema_records_what_it_saw() -> None:
    schema = infer_schema(table(), label="species", key="id", sensor=None)
    by_name = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns] == table().column_names
    # ranges are widened by half their span; a non-negative column stays non-negative
    assert by_name["id"] == ColumnSchema(
        name="id", type="int", nullable=False, min=0, max=6, unique=True
    )
    assert by_name["temp"] == ColumnSchema(
        name="temp", type="float", nullable=True, min=-3.25 - 21.625, max=40.0 + 21.625
    )
    assert by_name["ok"].type == "bool" and not by_name["ok"].nullable
    assert by_name["site"].categories == ["a", "b"] and by_name["site"].nullable
    assert by_name["note"].categories is None  # every value distinct: not a category
    assert by_name["species"].categories is None  # the label has label_set instead
    assert by_name["at"].type == "datetime" and by_name["at"].min is None
    assert by_name["series"].type == "sequence" and by_name["series"].nullable
    assert by_name["empty"].type == "string" and by_name["empty"].nullable
    assert schema.label == "species" and schema.key == "id"
    assert schema.label_set == ["cat", "dog", "eel"]
    assert schema.row_count_min is None and schema.row_count_max is None
    assert schema.sensor is None and schema.policy == "reject"


def test_infer_categories_only_for_low_cardinality() -> None:
    many = [f"v{i % (MAX_CATEGORIES + 1)}" for i in range(200)]
    few = [f"v{i % MAX_CATEGORIES}" for i in range(200)]
    schema = infer_schema(pa.table({"many": many, "few": few}), label=None, key=None, sensor=None)
    assert schema.columns[0].categories is None
    assert schema.columns[1].categories == sorted({*few})


def test_label_set_rules() -> None:
    ints = infer_schema(pa.table({"y": [10, 2, 2]}), label="y", key=None, sensor=None)
    assert ints.label_set == ["10", "2"]
    bools = infer_schema(pa.table({"y": [True, None]}), label="y", key=None, sensor=None)
    assert bools.label_set == ["true"]
    floats = infer_schema(pa.table({"y": [0.5, 1.5]}), label="y", key=None, sensor=None)
    assert floats.label_set is None
    wide = infer_schema(
        pa.table({"y": [str(i) for i in range(1001)]}), label="y", key=None, sensor=None
    )
    assert wide.label_set is None


def test_float_bounds_ignore_nan_and_keep_infinity() -> None:
    schema = infer_schema(
        pa.table({"a": [math.nan, 1.0, math.inf], "b": [math.nan, math.nan, None]}),
        label=None,
        key=None,
        sensor=None,
    )
    assert (schema.columns[0].min, schema.columns[0].max) == (1.0, math.inf)
    assert (schema.columns[1].min, schema.columns[1].max) == (None, None)
    assert schema_from_yaml(schema_to_yaml(schema)) == schema


def test_sensor_schema_from_sensor_info() -> None:
    t = pa.table({"sample_id": ["a", "b"], "x": [[1.0, 2.0], [3.0]]})
    schema = infer_schema(t, label=None, key=None, sensor=SensorInfo(50.0, ("x",), 1, 2))
    assert schema.sensor == SensorSchema(sample_rate=50.0, axes=["x"], window_length=1)


def test_infer_refuses_unknown_columns_and_types() -> None:
    with pytest.raises(ValidationFailed, match=r"label column 'y' is not in the data; columns: a"):
        infer_schema(pa.table({"a": [1]}), label="y", key=None, sensor=None)
    with pytest.raises(ValidationFailed, match=r"key column 'k' is not in the data"):
        infer_schema(pa.table({"a": [1]}), label=None, key="k", sensor=None)
    with pytest.raises(ValidationFailed, match=r"column 'b' has type binary"):
        infer_schema(pa.table({"b": pa.array([b"x"])}), label=None, key=None, sensor=None)


def test_yaml_is_commented_stable_and_round_trips() -> None:
    sensor = SensorInfo(62.5, ("series",), 0, 2)
    schema = infer_schema(table(), label="species", key="id", sensor=sensor)
    text = schema_to_yaml(schema)
    assert text.startswith("# edgeloop dataset schema")
    assert "- name: temp\n  type: float\n" in text
    assert schema_from_yaml(text) == schema
    assert schema_to_yaml(schema_from_yaml(text)) == text
    assert schema.sensor is not None and schema.sensor.window_length is None


def test_text_that_pyyaml_misreads_is_escaped() -> None:
    schema = DatasetSchema(columns=[ColumnSchema(name="température\x85", type="int")])
    assert schema_from_yaml(schema_to_yaml(schema)) == schema
    plain = DatasetSchema(columns=[ColumnSchema(name="température", type="int")])
    assert "name: température\n" in schema_to_yaml(plain)


def test_minimal_yaml_gets_defaults() -> None:
    schema = schema_from_yaml("columns:\n- {name: a, type: int}\n")
    assert schema.columns == [ColumnSchema(name="a", type="int")]
    assert schema.columns[0].nullable and schema.policy == "reject"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns: [\n", r"not valid YAML at line 2, column 1"),
        ("- a\n- b\n", r"must be a YAML mapping .* found list"),
        ("", r"must be a YAML mapping"),
        (
            "columns:\n- name: a\n  type: int\n  colour: red\n",
            r"columns\[0\] \('a'\)\.colour: unknown field; allowed: name, type, nullable",
        ),
        (
            "columns:\n- name: a\n  type: integer\n",
            r"columns\[0\] \('a'\)\.type: Input should be 'int', .* \(got 'integer'\)",
        ),
        ("colums: []\n", r"columns: required; colums: unknown field; allowed: columns, label"),
        (
            "columns:\n- {name: a, type: int, min: 5, max: 1}\n",
            r"columns\[0\] \('a'\): min 5 is above max 1",
        ),
        (
            "columns:\n- {name: a, type: int}\nlabel: y\n",
            r"schema: label 'y' is not one of the columns \['a'\]",
        ),
        (
            "columns:\n- {name: a, type: string, regex: '(?=x)'}\n",
            r"regex '\(\?=x\)' is not valid RE2",
        ),
        ("columns:\n- {name: a, type: string, min: 1}\n", r"min/max apply to int and float"),
        ("columns:\n- {name: a, type: float, min: '1'}\n", r"columns\[0\] \('a'\)\.min"),
        ("columns:\n- {name: a, type: float, categories: [x]}\n", r"categories apply to"),
        ("columns:\n- {name: a, type: string, categories: []}\n", r"at least one value"),
        ("columns:\n- {name: a, type: sequence, unique: true}\n", r"unique does not apply"),
        ("columns:\n- {name: a, type: int}\n- {name: a, type: int}\n", r"\['a'\] are listed more"),
        ("columns: []\nlabel_set: [x]\n", r"label_set needs a label column"),
        ("columns: []\nrow_count_min: 5\nrow_count_max: 2\n", r"row_count_min 5 is above"),
        (
            "columns: []\nrow_count_min: -1\n",
            r"row_count_min: Input should be greater than or equal to 0",
        ),
        ("columns: []\npolicy: drop\n", r"policy: Input should be 'reject' or 'quarantine'"),
        (
            "columns: []\nsensor: {axes: [x], sample_rate: -1}\n",
            r"sensor\.sample_rate: Input should be greater than 0 \(got -1\)",
        ),
        (
            "columns: []\nsensor: {axes: [x]}\n",
            r"sensor axes \['x'\] are not among the columns",
        ),
        (
            "columns: []\nsensor: {axes: [], rate: 5}\n",
            r"sensor\.rate: unknown field; allowed: sample_rate, axes",
        ),
        ("columns:\n- type: int\n", r"columns\[0\]\.name: required"),
        ("columns: []\n1: x\n", r"not valid: 1: Keys should be strings \(got 1\)"),
        (
            "columns:\n- {name: a, type: float, min: '1', max: [2]}\n",
            r"^the schema is not valid: columns\[0\] \('a'\)\.min: Input should be a number "
            r"\(got '1'\); columns\[0\] \('a'\)\.max: Input should be a number \(got \[2\]\)$",
        ),
        ("columns: [5]\n", r"columns\[0\]: Input should be a valid dictionary \(got 5\)$"),
        ("columns: {}\n", r"columns: Input should be a valid list \(got \{\}\)"),
    ],
)
def test_bad_yaml_is_one_readable_error(text: str, match: str) -> None:
    with pytest.raises(ValidationFailed, match=match) as info:
        schema_from_yaml(text)
    assert "\n" not in info.value.message


def test_errors_are_listed_in_details() -> None:
    with pytest.raises(ValidationFailed) as info:
        schema_from_yaml("columns:\n- {name: a, type: x, extra: 1}\n")
    assert info.value.details["errors"] == [
        {"field": "columns[0] ('a').type", "message": info.value.details["errors"][0]["message"]},
        {"field": "columns[0] ('a').extra", "message": info.value.details["errors"][1]["message"]},
    ]


# hypothesis: any valid schema survives YAML -------------------------------------------

text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False))


@st.composite
def column_schemas(draw: st.DrawFn, name: str) -> ColumnSchema:
    typ = draw(st.sampled_from(["int", "float", "bool", "string", "datetime", "sequence"]))
    low = high = None
    if typ in ("int", "float") and draw(st.booleans()):
        a, b = sorted([draw(numbers), draw(numbers)])
        low, high = draw(st.sampled_from([(a, b), (a, None), (None, b)]))
    categories = None
    if typ in ("string", "int", "bool"):
        categories = draw(st.none() | st.lists(text, min_size=1, max_size=4))
    regex = (
        draw(st.sampled_from([None, "[a-z]+", r"\d{3}-\d+", "x|y"])) if typ == "string" else None
    )
    return ColumnSchema(
        name=name,
        type=typ,
        nullable=draw(st.booleans()),
        min=low,
        max=high,
        categories=categories,
        unique=typ != "sequence" and draw(st.booleans()),
        regex=regex,
    )


@st.composite
def dataset_schemas(draw: st.DrawFn) -> DatasetSchema:
    names = draw(st.lists(text, min_size=1, max_size=5, unique=True))
    columns = [draw(column_schemas(n)) for n in names]
    label = draw(st.none() | st.sampled_from(names))
    counts = sorted(draw(st.lists(st.integers(0, 10**12), min_size=2, max_size=2)))
    sensor = None
    if draw(st.booleans()):
        sensor = SensorSchema(
            sample_rate=draw(st.none() | st.floats(1e-3, 1e6)),
            axes=draw(st.lists(st.sampled_from(names), unique=True)),
            window_length=draw(st.none() | st.integers(1, 10**6)),
        )
    return DatasetSchema(
        columns=columns,
        label=label,
        key=draw(st.none() | st.sampled_from(names)),
        label_set=draw(st.none() | st.lists(text, max_size=4)) if label else None,
        row_count_min=draw(st.sampled_from([None, counts[0]])),
        row_count_max=draw(st.sampled_from([None, counts[1]])),
        sensor=sensor,
        policy=draw(st.sampled_from(["reject", "quarantine"])),
    )


@settings(max_examples=150, deadline=None)
@given(dataset_schemas())
def test_any_schema_round_trips_through_yaml(schema: DatasetSchema) -> None:
    text = schema_to_yaml(schema)
    again = schema_from_yaml(text)
    assert again == schema
    assert schema_to_yaml(again) == text
