"""Rows of a collection: the layout devices build them by, and their conversion to the
target dataset's Arrow schema with validation against its expectations.

An uploaded row is a JSON object keyed by the dataset's column names. It is converted
column by column to the dataset version's exact Arrow types (a window axis must be a list of
exactly its length of numbers), then checked with the dataset's schema like a new version
is (types, nulls, ranges, categories, regex, label set), except for the rules that are about
a whole version (row counts, the sensor description) and for the label, which may be
missing: a device sends the label only when it holds local feedback for the sample. Rows that
do not fit raise :class:`DataRejected` (422) with ``details.field`` = ``rows[i].column``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from edgeloop.datasets import DatasetSchema, validate_table
from edgeloop.errors import DataRejected

__all__ = [
    "check_rows",
    "decode_schema",
    "encode_schema",
    "labelled_count",
    "layout_for",
    "rows_to_table",
]

_WHOLE_VERSION_RULES = {"row_count", "sensor_axes", "sensor_sample_rate"}
_WINDOW_CONSTANTS: dict[str, tuple[str, Any]] = {"window": ("int", 0), "start_ms": ("float", 0.0)}
"""Columns of ``edgeloop data window`` tables a device fills with constants: a captured
window is window 0 of a recording of its own, starting at 0 ms."""


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _list_length(typ: pa.DataType) -> int | None:
    return int(typ.list_size) if pa.types.is_fixed_size_list(typ) else None


def layout_for(
    schema: DatasetSchema, arrow_schema: pa.Schema, sensor: Mapping[str, Any]
) -> dict[str, Any]:
    """How a device builds a row of this dataset (sent with the collection request)."""
    types = {c.name: c.type for c in schema.columns}
    names = [f.name for f in arrow_schema if f.name in types]
    label, key = schema.label, schema.key
    id_column = None
    for candidate in (key, "sample_id"):
        if candidate and types.get(candidate) == "string":
            id_column = candidate
            break
    axes_wanted = list(schema.sensor.axes) if schema.sensor else list(sensor.get("axes") or [])
    axes = [a for a in axes_wanted if types.get(a) == "sequence"]
    taken = {label, id_column, *axes}
    values: dict[str, Any] = {}
    for name, (kind, value) in _WINDOW_CONSTANTS.items():
        if name not in taken and types.get(name) in (kind, "float" if kind == "int" else kind):
            values[name] = value
    inputs: dict[str, Any]
    if axes:
        length = _list_length(arrow_schema.field(axes[0]).type) or sensor.get("length_max")
        inputs = {"kind": "axes", "columns": axes, "length": int(length) if length else None}
    else:
        features = [
            n for n in names if types[n] in ("int", "float") and n not in taken and n not in values
        ]
        inputs = {"kind": "features", "columns": features}
    return {
        "columns": [{"name": n, "type": types[n]} for n in names],
        "label": label,
        "id_column": id_column,
        "inputs": inputs,
        "values": values,
    }


def _describe(typ: pa.DataType) -> str:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_fixed_size_list(typ):
        return f"a list of exactly {typ.list_size} numbers"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "a list of numbers"
    if pa.types.is_integer(typ):
        return "an integer"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "a number"
    if pa.types.is_boolean(typ):
        return "true or false"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "a string"
    return f"a {typ} value"


def _shown(value: object) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} value(s)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _column(rows: Sequence[Mapping[str, Any]], field: pa.Field, dataset: str) -> pa.Array:
    values = [row.get(field.name) for row in rows]
    target = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    try:
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        pass
    for i, value in enumerate(values):
        try:
            pa.array([value], type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            raise DataRejected(
                f"rows[{i}].{field.name} is {_shown(value)}; dataset {dataset!r} expects "
                f"{_describe(field.type)} there",
                details={"field": f"rows[{i}].{field.name}"},
            ) from None
    raise DataRejected(
        f"column {field.name!r} of the rows does not convert to {_describe(field.type)}",
        details={"field": f"rows.{field.name}"},
    )


def rows_to_table(
    rows: Sequence[Mapping[str, Any]], arrow_schema: pa.Schema, dataset: str
) -> pa.Table:
    """The rows as a table with the dataset's Arrow schema; a missing column is null.
    :class:`DataRejected` (422) naming ``rows[i].column`` for a value of the wrong kind or a
    column the dataset does not have."""
    known = set(arrow_schema.names)
    for i, row in enumerate(rows):
        unknown = [k for k in row if k not in known]
        if unknown:
            raise DataRejected(
                f"rows[{i}] has column {unknown[0]!r}, which dataset {dataset!r} does not have; "
                f"its columns: {', '.join(arrow_schema.names)}",
                details={"field": f"rows[{i}].{unknown[0]}"},
            )
    arrays = [_column(rows, field, dataset) for field in arrow_schema]
    table = pa.Table.from_arrays(arrays, names=arrow_schema.names)
    return table.cast(arrow_schema) if table.schema != arrow_schema else table


def check_rows(table: pa.Table, schema: DatasetSchema, dataset: str) -> None:
    """Validate uploaded rows against the dataset's expectations (see the module doc)."""
    report = validate_table(table, schema)
    failures = [
        r
        for r in report.results
        if r.rule not in _WHOLE_VERSION_RULES
        and not (r.rule == "not_null" and r.column is not None and r.column == schema.label)
    ]
    if not failures:
        return
    first = failures[0]
    sample = first.samples[0] if first.samples else {}
    row = sample.get("row") if isinstance(sample, dict) else None
    if isinstance(row, int) and first.column:
        field = f"rows[{row}].{first.column}"
    else:
        field = f"rows.{first.column}" if first.column else "rows"
    raise DataRejected(
        f"the rows do not fit dataset {dataset!r}: {first.message} (at {field})"
        + (f"; {len(failures) - 1} more rule(s) failed" if len(failures) > 1 else ""),
        details={
            "field": field,
            "results": [r.model_dump(mode="json") for r in failures[:10]],
        },
    )


def labelled_count(table: pa.Table, label: str | None) -> int:
    if not label or label not in table.column_names:
        return 0
    return int(len(table) - table.column(label).null_count)
