"""Check a table against its dataset schema, with pyarrow.compute (no per-row Python).

Every rule that fails gives one :class:`RuleResult`; a clean table gives an ``ok`` report with
no results. Rules, in the order they are checked:

==================== ====================================================================
``missing_column``    a schema column the data lacks
``type``              a column whose Arrow type does not fit (``int`` fits ``float``; an
                      all-null column fits anything); its value rules are then skipped
``not_null``          nulls in a column that is not ``nullable`` (or is the ``key``)
``min`` / ``max``     values below / above the bound (bounds are inclusive)
``allowed_set``       values outside ``categories`` (compared as strings)
``regex``             strings that do not match the pattern as a whole
``unique``            values that repeat (for ``unique`` columns and the ``key``)
``unexpected_column`` a data column the schema does not list: drift must be made explicit
``row_count``         fewer rows than ``row_count_min`` or more than ``row_count_max``
``label_set``         labels outside ``label_set``
``sensor_axes``       recordings whose axes differ from the schema's (or no recordings)
``sensor_sample_rate`` a sample rate more than 2 % off the schema's
``sensor_length``     recordings shorter than ``window_length`` samples
==================== ====================================================================
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from edgeloop.datasets._readers import SensorInfo
from edgeloop.datasets._schema import ColumnSchema, DatasetSchema, arrow_column_type
from edgeloop.errors import ValidationFailed

__all__ = ["RuleResult", "ValidationReport", "validate_table"]

_SAMPLES = 5
_RATE_TOLERANCE = 0.02
_NOT_PARSING = {
    "int": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(inf|infinity|nan)\s*$",
    "bool": r"^\s*(true|false|0|1)\s*$",
    "datetime": r"^\s*\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?\s*$",
}


class RuleResult(BaseModel):
    """One failed rule. ``failed`` counts the offending rows (for ``type``: the column's
    non-null values; for rules about a whole column or the table: 1). ``samples`` holds up to
    five offending rows as ``{"row": index, "value": ...}`` (plus the key or ``sample_id``);
    for ``unique``, the repeated values with their ``count`` and first ``rows``."""

    rule: str
    column: str | None = None
    failed: int
    message: str
    samples: list[dict[str, Any]] = Field(default_factory=list)


class ValidationReport(BaseModel):
    """The outcome of :func:`validate_table`: ``ok`` iff no rule failed."""

    ok: bool
    rows: int
    results: list[RuleResult] = Field(default_factory=list)

    def summary(self) -> str:
        """One human paragraph: per rule, how much failed and the messages."""
        if self.ok:
            return f"all {self.rows:,} rows passed every rule"
        by_rule: dict[str, list[RuleResult]] = {}
        for result in self.results:
            by_rule.setdefault(result.rule, []).append(result)
        parts = []
        for rule, results in by_rule.items():
            total = sum(r.failed for r in results)
            shown = "; ".join(r.message for r in results[:3])
            more = f"; and {len(results) - 3} more" if len(results) > 3 else ""
            parts.append(f"{rule} ({total:,} failing): {shown}{more}")
        count = len(self.results)
        return f"{self.rows:,} rows, {count} failed check{'s' * (count != 1)}. " + ". ".join(parts)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        items = [_jsonable(v) for v in value[:10]]
        return [*items, "…"] if len(value) > 10 else items
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Decimal | bytes):
        return str(value)
    return repr(value)


class _Checker:
    def __init__(self, table: pa.Table, schema: DatasetSchema) -> None:
        self.table = table
        self.schema = schema
        self.results: list[RuleResult] = []
        ids = [c for c in (schema.key, "sample_id") if c and c in table.column_names]
        self.id_column = ids[0] if ids else None

    def fail(
        self, rule: str, column: str | None, failed: int, message: str, samples: Any = ()
    ) -> None:
        self.results.append(
            RuleResult(
                rule=rule, column=column, failed=failed, message=message, samples=list(samples)
            )
        )

    def rows(
        self,
        rule: str,
        column: str,
        mask: pa.ChunkedArray | pa.Array,
        message: Callable[[str], str],
    ) -> None:
        """Fail ``rule`` if ``mask`` marks rows; ``message`` gets their count, formatted."""
        mask = pc.fill_null(mask, False)
        failed = int(pc.sum(mask).as_py() or 0)
        if failed:
            self.fail(rule, column, failed, message(f"{failed:,}"), self.samples(column, mask))

    def samples(self, column: str, mask: pa.ChunkedArray | pa.Array) -> list[dict[str, Any]]:
        index = pc.indices_nonzero(mask)[:_SAMPLES]
        values = self.table.column(column).take(index).to_pylist()
        found = [
            {"row": int(i), "value": _jsonable(v)}
            for i, v in zip(index.to_pylist(), values, strict=True)
        ]
        if self.id_column and self.id_column != column:
            ids = self.table.column(self.id_column).take(index).to_pylist()
            for sample, ident in zip(found, ids, strict=True):
                sample[self.id_column] = _jsonable(ident)
        return found


def _fits(expected: str, typ: pa.DataType) -> bool:
    actual = arrow_column_type(typ)
    return pa.types.is_null(typ) or actual == expected or (expected, actual) == ("float", "int")


def _check_type(check: _Checker, col: ColumnSchema, data: pa.ChunkedArray) -> bool:
    if _fits(col.type, data.type):
        return True
    present = len(data) - data.null_count
    message = f"column {col.name!r} holds {data.type} but the schema expects {col.type}"
    pattern = _NOT_PARSING.get(col.type)
    if arrow_column_type(data.type) == "string" and pattern:
        strings = data.cast(pa.string())
        bad = pc.and_(
            pc.is_valid(strings),
            pc.invert(pc.match_substring_regex(strings, pattern, ignore_case=True)),
        )
        wrong = int(pc.sum(pc.fill_null(bad, False)).as_py() or 0)
        if wrong:
            message += f"; {wrong:,} value(s) are not {col.type} values"
        else:
            bad = pc.is_valid(data)
            message += f"; every value reads as {col.type}: convert the column"
        check.fail("type", col.name, present, message, check.samples(col.name, bad))
    else:
        check.fail("type", col.name, present, message, check.samples(col.name, pc.is_valid(data)))
    return False


def _check_values(check: _Checker, col: ColumnSchema, data: pa.ChunkedArray) -> None:
    name = col.name
    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    if pa.types.is_decimal(data.type):
        data = data.cast(pa.float64())
    if col.min is not None:
        check.rows(
            "min",
            name,
            pc.less(data, col.min),
            lambda n: f"column {name!r} has {n} value(s) below min {col.min}",
        )
    if col.max is not None:
        check.rows(
            "max",
            name,
            pc.greater(data, col.max),
            lambda n: f"column {name!r} has {n} value(s) above max {col.max}",
        )
    if col.categories is not None:
        outside = pc.invert(pc.is_in(data.cast(pa.string()), value_set=pa.array(col.categories)))
        check.rows(
            "allowed_set",
            name,
            pc.and_(pc.is_valid(data), outside),
            lambda n: f"column {name!r} has {n} value(s) outside its categories",
        )
    if col.regex is not None:
        matched = pc.match_substring_regex(data, f"^(?:{col.regex})$")
        check.rows(
            "regex",
            name,
            pc.invert(matched),
            lambda n: f"column {name!r} has {n} value(s) that do not match {col.regex!r}",
        )


def _check_unique(check: _Checker, name: str, data: pa.ChunkedArray) -> None:
    counts = pc.value_counts(pc.drop_null(data))
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if not len(repeated):
        return
    values = repeated.field("values")
    failed = int(pc.sum(repeated.field("counts")).as_py()) - len(repeated)
    samples = []
    for value, count in zip(
        values[:_SAMPLES].to_pylist(),
        repeated.field("counts")[:_SAMPLES].to_pylist(),
        strict=True,
    ):
        rows = pc.indices_nonzero(pc.fill_null(pc.equal(data, pa.scalar(value, data.type)), False))
        samples.append(
            {"value": _jsonable(value), "count": count, "rows": rows[:_SAMPLES].to_pylist()}
        )
    check.fail(
        "unique",
        name,
        failed,
        f"column {name!r} has {failed:,} duplicate value(s) ({len(repeated):,} value(s) repeat)",
        samples,
    )


def _check_column(check: _Checker, col: ColumnSchema, data: pa.ChunkedArray) -> None:
    is_key = col.name == check.schema.key
    fits = _check_type(check, col, data)
    if (not col.nullable or is_key) and data.null_count:
        check.rows(
            "not_null",
            col.name,
            pc.is_null(data),
            lambda n: f"column {col.name!r} has {n} null value(s) but is not nullable",
        )
    if fits and not pa.types.is_null(data.type):
        _check_values(check, col, data)
        if col.unique or is_key:
            _check_unique(check, col.name, data)


def _check_table(check: _Checker, sensor: SensorInfo | None) -> None:
    schema, table = check.schema, check.table
    rows = table.num_rows
    if schema.row_count_min is not None and rows < schema.row_count_min:
        check.fail(
            "row_count",
            None,
            1,
            f"the data has {rows:,} rows, fewer than row_count_min {schema.row_count_min:,}",
        )
    if schema.row_count_max is not None and rows > schema.row_count_max:
        check.fail(
            "row_count",
            None,
            1,
            f"the data has {rows:,} rows, more than row_count_max {schema.row_count_max:,}",
        )
    label = schema.label
    if label and schema.label_set is not None and label in table.column_names:
        labels = table.column(label).cast(pa.string())
        outside = pc.and_(
            pc.is_valid(labels),
            pc.invert(pc.is_in(labels, value_set=pa.array(schema.label_set, pa.string()))),
        )
        unknown = sorted(pc.unique(labels.filter(pc.fill_null(outside, False))).to_pylist())
        check.rows(
            "label_set",
            label,
            outside,
            lambda n: (
                f"{n} row(s) have labels outside label_set: {', '.join(map(repr, unknown[:10]))}"
            ),
        )
    expected = schema.sensor
    if expected is None:
        return
    if sensor is None:
        check.fail(
            "sensor_axes",
            None,
            1,
            f"the data is not sensor recordings, but the schema expects axes {expected.axes}",
        )
    else:
        if sorted(sensor.axes) != sorted(expected.axes):
            check.fail(
                "sensor_axes",
                None,
                1,
                f"the recordings have axes {list(sensor.axes)}, the schema expects {expected.axes}",
            )
        want, got = expected.sample_rate, sensor.sample_rate
        if want is not None and (got is None or abs(got - want) > _RATE_TOLERANCE * want):
            check.fail(
                "sensor_sample_rate",
                None,
                1,
                f"the recordings' sample rate is {'unknown' if got is None else f'{got:g} Hz'}, "
                f"the schema expects {want:g} Hz",
            )
    axis = next((a for a in expected.axes if a in table.column_names), None)
    if expected.window_length and axis and pa.types.is_list(table.schema.field(axis).type):
        short = pc.less(pc.list_value_length(table.column(axis)), expected.window_length)
        check.rows(
            "sensor_length",
            axis,
            short,
            lambda n: (
                f"{n} recording(s) are shorter than window_length {expected.window_length} samples"
            ),
        )


def validate_table(
    table: pa.Table, schema: DatasetSchema, *, sensor: SensorInfo | None = None
) -> ValidationReport:
    """Check ``table`` (and its sensor description) against ``schema``; see the module
    docstring for the rules. Raises :class:`ValidationFailed` only if a rule cannot be
    evaluated at all (never a pyarrow error)."""
    names = set(table.column_names)
    if len(names) != table.num_columns:
        repeated = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
        raise ValidationFailed(f"the data has repeated column names {repeated}; rename them")
    check = _Checker(table, schema)
    for col in schema.columns:
        if col.name not in names:
            check.fail(
                "missing_column",
                col.name,
                1,
                f"column {col.name!r} ({col.type}) is missing from the data",
            )
            continue
        try:
            _check_column(check, col, table.column(col.name))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise ValidationFailed(
                f"could not check column {col.name!r} against the schema: {exc}",
                details={"column": col.name},
            ) from exc
    listed = {c.name for c in schema.columns}
    for name in table.column_names:
        if name not in listed:
            check.fail(
                "unexpected_column",
                name,
                1,
                f"column {name!r} is not in the schema; add it to the schema to accept it",
            )
    try:
        _check_table(check, sensor)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ValidationFailed(f"could not check the data against the schema: {exc}") from exc
    return ValidationReport(ok=not check.results, rows=table.num_rows, results=check.results)
