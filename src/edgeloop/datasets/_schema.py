"""A dataset's schema: its columns and the expectations every new version is checked against.

:func:`infer_schema` writes down what the first version looked like; users then edit the YAML
(:func:`schema_to_yaml` / :func:`schema_from_yaml`) to tighten or loosen the expectations.

Inference rules:

- types: Arrow integers -> ``int``; floats and decimals -> ``float``; ``bool``; strings (and
  all-null columns) -> ``string``; timestamps and dates -> ``datetime``; lists -> ``sequence``.
  Any other Arrow type (binary, struct, map, duration) is refused.
- ``nullable`` is true iff the column holds a null; ``min``/``max`` bound ``int``/``float``
  columns: the range seen, widened by half its span on each side (``RANGE_MARGIN``) so that
  the next honest batch passes, never below 0 for a column that had no negative value (NaN
  ignored; both inclusive when validating). Tighten them in the YAML where you know better.
- ``categories`` are inferred for ``string`` columns with at most 50 distinct values when some
  value repeats (a column of all-distinct ids is not a category); not for the label or key.
- ``label_set`` is the sorted distinct labels (as strings) unless the label column is ``float``
  (a regression target) or holds more than 1,000 distinct values.
- the ``key`` column is ``unique`` and not ``nullable``; ``row_count_min``/``max`` stay unset.
- ``regex`` must match a whole value (RE2 syntax, as pyarrow evaluates it).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from edgeloop.datasets._readers import SensorInfo
from edgeloop.errors import ValidationFailed

__all__ = [
    "MAX_CATEGORIES",
    "ColumnSchema",
    "ColumnType",
    "DatasetSchema",
    "SensorSchema",
    "arrow_column_type",
    "infer_schema",
    "schema_from_yaml",
    "schema_to_yaml",
]

ColumnType = Literal["int", "float", "bool", "string", "datetime", "sequence"]
Number = StrictInt | StrictFloat

MAX_CATEGORIES = 50
"""String columns with at most this many distinct values get inferred ``categories``."""
_MAX_LABELS = 1000

_HEADER = (
    "# edgeloop dataset schema: every new version is validated against it.\n"
    "# Edit to tighten or loosen: nullable, min/max (inclusive), categories (allowed values),\n"
    "# unique, regex (whole value, RE2), label_set, row_count_min/max, sensor, policy.\n"
)


class ColumnSchema(BaseModel):
    """One column: its type and the expectations on its values."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: ColumnType
    nullable: bool = True
    min: Number | None = None
    max: Number | None = None
    categories: list[str] | None = None
    unique: bool = False
    regex: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ColumnSchema:
        for bound in (self.min, self.max):
            if isinstance(bound, float) and math.isnan(bound):
                raise ValueError("min and max cannot be NaN")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max apply to int and float columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.categories is not None:
            if self.type not in ("string", "int", "bool"):
                raise ValueError(
                    f"categories apply to string, int and bool columns, not {self.type}"
                )
            if not self.categories:
                raise ValueError("categories must list at least one value, or be null")
        if self.regex is not None:
            if self.type != "string":
                raise ValueError(f"regex applies to string columns, not {self.type}")
            try:
                pc.match_substring_regex(pa.array([""]), f"^(?:{self.regex})$")
            except pa.ArrowException as exc:
                raise ValueError(f"regex {self.regex!r} is not valid RE2: {exc}") from None
        if self.unique and self.type == "sequence":
            raise ValueError("unique does not apply to sequence columns")
        return self


class SensorSchema(BaseModel):
    """What recordings must look like: their sample rate (Hz), axes and the shortest length
    (in samples) a recording may have."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    axes: list[str]
    window_length: int | None = Field(default=None, ge=1)


class DatasetSchema(BaseModel):
    """A dataset's columns and expectations, and what to do with data that breaks them."""

    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnSchema]
    label: str | None = None
    key: str | None = None
    label_set: list[str] | None = None
    row_count_min: int | None = Field(default=None, ge=0)
    row_count_max: int | None = Field(default=None, ge=0)
    sensor: SensorSchema | None = None
    policy: Literal["reject", "quarantine"] = "reject"

    @model_validator(mode="after")
    def _check(self) -> DatasetSchema:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"columns {duplicated} are listed more than once")
        for role, name in (("label", self.label), ("key", self.key)):
            if name is not None and name not in names:
                raise ValueError(f"{role} {name!r} is not one of the columns {names}")
        if self.label_set is not None and self.label is None:
            raise ValueError("label_set needs a label column")
        low, high = self.row_count_min, self.row_count_max
        if low is not None and high is not None and low > high:
            raise ValueError(f"row_count_min {low} is above row_count_max {high}")
        missing = [a for a in (self.sensor.axes if self.sensor else []) if a not in names]
        if missing:
            raise ValueError(f"sensor axes {missing} are not among the columns")
        return self

    def column(self, name: str) -> ColumnSchema | None:
        """The column called ``name``, or ``None``."""
        return next((c for c in self.columns if c.name == name), None)


def arrow_column_type(typ: pa.DataType) -> ColumnType | None:
    """The schema type an Arrow type is, or ``None`` if datasets cannot hold it."""
    t = pa.types
    if t.is_dictionary(typ):
        typ = typ.value_type
    if t.is_integer(typ):
        return "int"
    if t.is_floating(typ) or t.is_decimal(typ):
        return "float"
    if t.is_boolean(typ):
        return "bool"
    if t.is_string(typ) or t.is_large_string(typ) or t.is_null(typ):
        return "string"
    if t.is_timestamp(typ) or t.is_date(typ):
        return "datetime"
    if t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ):
        return "sequence"
    return None


def _as_strings(values: pa.Array | pa.ChunkedArray) -> list[str]:
    return sorted(str(v) for v in pc.cast(pc.drop_null(values), pa.string()).to_pylist())


RANGE_MARGIN = 0.5


def _widen(
    low: Number | None, high: Number | None, *, integer: bool
) -> tuple[Number | None, Number | None]:
    """The seen range widened by ``RANGE_MARGIN`` of its span (at least 1 for a constant)."""
    if low is None or high is None or not math.isfinite(high - low):
        return low, high
    margin = RANGE_MARGIN * (high - low) or max(1.0, abs(high) * RANGE_MARGIN)
    new_low, new_high = low - margin, high + margin
    if low >= 0:
        new_low = max(new_low, 0)
    if integer:
        return math.floor(new_low), math.ceil(new_high)
    return float(new_low), float(new_high)


def _infer_column(name: str, column: pa.ChunkedArray, *, key: bool, label: bool) -> ColumnSchema:
    typ = arrow_column_type(column.type)
    if typ is None:
        raise ValidationFailed(
            f"column {name!r} has type {column.type}, which datasets cannot hold; convert it to "
            "numbers, text, booleans, timestamps or lists",
            details={"column": name},
        )
    present = len(column) - column.null_count
    low = high = None
    if typ in ("int", "float") and present:
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if typ == "float":
            low, high = (None if v is None or math.isnan(v) else float(v) for v in (low, high))
        low, high = _widen(low, high, integer=typ == "int")
    categories = None
    if typ == "string" and present and not key and not label:
        distinct = pc.count_distinct(column).as_py()
        if distinct <= MAX_CATEGORIES and distinct < present:
            categories = _as_strings(pc.unique(column))
    return ColumnSchema(
        name=name,
        type=typ,
        nullable=column.null_count > 0 and not key,
        min=low,
        max=high,
        categories=categories,
        unique=key,
    )


def infer_schema(
    table: pa.Table, *, label: str | None, key: str | None, sensor: SensorInfo | None
) -> DatasetSchema:
    """The schema of ``table`` as seen: types, nullability, ranges, categories, label set."""
    for role, name in (("label", label), ("key", key)):
        if name is not None and name not in table.column_names:
            raise ValidationFailed(
                f"{role} column {name!r} is not in the data; columns: "
                f"{', '.join(table.column_names)}",
                details={"column": name},
            )
    columns = [
        _infer_column(name, table.column(name), key=name == key, label=name == label)
        for name in table.column_names
    ]
    label_set = None
    if label is not None:
        values = table.column(label)
        if arrow_column_type(values.type) in ("string", "int", "bool"):
            distinct = pc.unique(values)
            if len(distinct) <= _MAX_LABELS:
                label_set = _as_strings(distinct)
    sensor_schema = None
    if sensor is not None:
        sensor_schema = SensorSchema(
            sample_rate=sensor.sample_rate,
            axes=list(sensor.axes),
            window_length=sensor.length_min or None,
        )
    return DatasetSchema(
        columns=columns, label=label, key=key, label_set=label_set, sensor=sensor_schema
    )


def schema_to_yaml(schema: DatasetSchema) -> str:
    """The schema as commented, human-editable YAML (stable: same schema, same text).

    Text is written as UTF-8 unless PyYAML would not read it back identically (it takes some
    characters, such as U+0085, for line breaks); then non-ASCII characters are escaped.
    """
    data = schema.model_dump()
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if yaml.safe_load(body) != data:
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=False, width=100)
    return _HEADER + body


def schema_from_yaml(text: str) -> DatasetSchema:
    """Parse and check a schema; every problem is one :class:`ValidationFailed` naming the
    fields to fix."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(f"the schema is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the schema must be a YAML mapping with at least 'columns' (a list of "
            f"{{name, type}}); found {type(data).__name__}"
        )
    try:
        return DatasetSchema.model_validate(data)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_describe(error, data) for error in exc.errors()))
        raise ValidationFailed(
            f"the schema is not valid: {'; '.join(f'{f}: {m}' for f, m in problems)}",
            details={"errors": [{"field": f, "message": m} for f, m in problems]},
        ) from None


_FIELDS: dict[str, tuple[str, ...]] = {
    "": tuple(DatasetSchema.model_fields),
    "columns": tuple(ColumnSchema.model_fields),
    "sensor": tuple(SensorSchema.model_fields),
}


def _describe(error: Any, data: dict[str, Any]) -> tuple[str, str]:
    """(field path, message) for one pydantic error: ``columns[2] ('temp').type``."""
    loc = tuple(error["loc"])
    union_member = loc[-1:] in (("int",), ("float",)) and loc[-2:-1] in (("min",), ("max",))
    if union_member:  # min/max: one error per union member; report one
        loc = loc[:-1]
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
            columns = data.get("columns") if loc[:index] == ("columns",) else None
            item = columns[part] if isinstance(columns, list) and part < len(columns) else None
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                parts[-1] += f" ({item['name']!r})"
        else:
            parts.append(str(part))
    field = ".".join(parts) or "schema"
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    message = re.sub(r" or instance of \w+", "", message)
    if union_member:
        message = "Input should be a number"
    if kind == "extra_forbidden":
        owner = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
        message = f"unknown field; allowed: {', '.join(_FIELDS.get(owner, ()))}"
    elif kind == "missing":
        message = "required"
    elif kind not in ("value_error", "assertion_error"):
        got = repr(error.get("input"))
        message += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
    return field, message
