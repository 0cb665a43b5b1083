"""Compile the run-search AST (see ``_filter``) into SQLAlchemy expressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, true
from sqlalchemy.orm import aliased

from edgeloop.errors import ValidationFailed
from edgeloop.store._filter import And, Comparison, Node, Not, Or, OrderBy
from edgeloop.store._models import LatestMetric, Param, Run, Tag

__all__ = ["apply_filter", "compile_filter", "compile_order_by"]

_ATTRIBUTES: dict[str, Any] = {
    "run_id": Run.id,
    "name": Run.name,
    "status": Run.status,
    "experiment_id": Run.experiment_id,
    "start_time": Run.start_time,
    "end_time": Run.end_time,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(list(value)) if value else false()
    if op == "not in":
        return column.not_in(list(value)) if value else true()
    if op == "like":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "not like":
        return column.not_like(value)  # type: ignore[no-any-return]
    if op == "ilike":
        return column.ilike(value)  # type: ignore[no-any-return]
    if op == "not ilike":
        return column.not_ilike(value)  # type: ignore[no-any-return]
    ops: dict[str, Any] = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return ops[op](value)  # type: ignore[no-any-return]


def _experiment_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_experiment_value(v) for v in value)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            f"attributes.experiment_id compares with an experiment id (an integer), got {value!r}"
        ) from exc


def _comparison(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "attributes":
        column = _ATTRIBUTES[c.key]
        value = _experiment_value(c.value) if c.key == "experiment_id" else c.value
        return _compare(column, c.op, value)
    table: Any = {"metrics": LatestMetric, "params": Param, "tags": Tag}[c.entity]
    return exists(
        select(1).where(
            table.run_id == Run.id, table.key == c.key, _compare(table.value, c.op, c.value)
        )
    )


def compile_filter(node: Node) -> ColumnElement[bool]:
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, And):
        return and_(*(compile_filter(n) for n in node.items))
    if isinstance(node, Or):
        return or_(*(compile_filter(n) for n in node.items))
    if isinstance(node, Not):
        return not_(compile_filter(node.item))
    raise TypeError(f"unknown filter node {node!r}")


def apply_filter(stmt: Select[Any], node: Node) -> Select[Any]:
    """Add ``node`` to a query over runs. Top-level metric, param and tag comparisons become
    inner joins on their (run_id, key) primary key, which lets the database start from the
    ``(key, value)`` index; everything else is a WHERE clause."""
    items = node.items if isinstance(node, And) else (node,)
    rest: list[Node] = []
    for i, item in enumerate(items):
        if isinstance(item, Comparison) and item.entity != "attributes":
            table: Any = {"metrics": LatestMetric, "params": Param, "tags": Tag}[item.entity]
            alias = aliased(table, name=f"flt{i}")
            stmt = stmt.join(
                alias,
                and_(
                    alias.run_id == Run.id,
                    alias.key == item.key,
                    _compare(alias.value, item.op, item.value),
                ),
            )
        else:
            rest.append(item)
    if rest:
        stmt = stmt.where(and_(*(compile_filter(n) for n in rest)))
    return stmt


def compile_order_by(stmt: Select[Any], order_by: Sequence[OrderBy]) -> Select[Any]:
    """Add ORDER BY clauses; missing values sort last; ties break on newest start."""
    clauses: list[Any] = []
    for i, item in enumerate(order_by):
        if item.entity == "attributes":
            column: Any = _ATTRIBUTES.get(item.key)
            if column is None:
                raise ValidationFailed(
                    f"cannot order by attributes.{item.key}; allowed: {', '.join(_ATTRIBUTES)}"
                )
        else:
            table: Any = {"metrics": LatestMetric, "params": Param, "tags": Tag}[item.entity]
            alias = aliased(table, name=f"ord{i}")
            stmt = stmt.outerjoin(alias, and_(alias.run_id == Run.id, alias.key == item.key))
            column = alias.value
        clauses.append((column.desc() if item.descending else column.asc()).nulls_last())
    return stmt.order_by(*clauses, Run.start_time.desc(), Run.id)
