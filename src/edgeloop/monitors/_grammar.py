"""The condition of an alert rule: ``METRIC OP NUMBER [for N windows]``.

>>> parse_condition("drift_share >= 0.5 for 2 windows")
Condition(metric='drift_share', op='>=', threshold=0.5, windows=2)
>>> str(parse_condition("error_rate>2%"))
'error_rate > 0.02'

Metrics come from a monitor's reports (:data:`MONITOR_METRICS`, or one feature's figure as
``features.NAME.KEY``) or from the fleet's telemetry over a scope (:data:`FLEET_METRICS`).
``for N windows`` fires only when the N latest windows all breach. A condition that does not
parse raises :class:`~edgeloop.errors.FilterSyntaxError` with the position of the problem.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from edgeloop.errors import FilterSyntaxError
from edgeloop.monitors._entities import METRIC_KEYS

__all__ = [
    "FLEET_METRICS",
    "MAX_WINDOWS",
    "MONITOR_METRICS",
    "OPERATORS",
    "Condition",
    "parse_condition",
]

MONITOR_METRICS: tuple[str, ...] = METRIC_KEYS
"""Figures of a monitor's report (``features.NAME.KEY`` reads one feature's figure)."""
FLEET_METRICS: tuple[str, ...] = ("error_rate", "latency_p95_ms")
"""Health of the devices in a scope (a model's devices, a group), from their telemetry."""
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
MAX_WINDOWS = 1000

_SPACE = re.compile(r"\s*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*")
_OPERATOR = re.compile(r"<=|>=|==|!=|<|>")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(%?)")
_INTEGER = re.compile(r"\d+")
_WORD = re.compile(r"[A-Za-z]+")
_FEATURE = re.compile(r"^features\.([A-Za-z0-9_\-]+)\.([A-Za-z_][A-Za-z0-9_]*)$")
_ALLOWED = ", ".join(MONITOR_METRICS + FLEET_METRICS) + ", features.NAME.KEY"


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition; ``str()`` gives its canonical text, which parses back to it."""

    metric: str
    op: str
    threshold: float
    windows: int = 1

    @property
    def source(self) -> str:
        """``"monitor"`` for report figures, ``"fleet"`` for telemetry health."""
        return "fleet" if self.metric in FLEET_METRICS else "monitor"

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaches the threshold."""
        return OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        text = f"{self.metric} {self.op} {_number(self.threshold)}"
        return text + (f" for {self.windows} windows" if self.windows > 1 else "")


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip()
        match = pattern.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
        return match

    def fail(self, message: str, position: int | None = None) -> FilterSyntaxError:
        error = FilterSyntaxError.at(
            message, text=self.text, position=self.pos if position is None else position
        )
        error.details["field"] = "when"
        return error

    def found(self) -> str:
        self.skip()
        rest = self.text[self.pos :]
        return repr(rest.split()[0]) if rest.strip() else "the end"


def _check_metric(cursor: _Cursor, name: str, position: int) -> None:
    if name in MONITOR_METRICS or name in FLEET_METRICS or _FEATURE.match(name):
        return
    if name.startswith("features."):
        raise cursor.fail(
            f"feature metric {name!r} is not features.NAME.KEY (e.g. features.temp.statistic)",
            position,
        )
    raise cursor.fail(f"metric {name!r} is not known; use one of {_ALLOWED}", position)


def parse_condition(text: str) -> Condition:
    """Parse ``METRIC OP NUMBER [for N windows]`` (``OP``: < <= > >= == !=; a number may end
    in ``%``, read as a share: ``2%`` is 0.02)."""
    if not isinstance(text, str) or not text.strip():
        raise _Cursor(str(text or "")).fail(
            "a condition is METRIC OP NUMBER [for N windows], e.g. drift_share >= 0.5 for 2 "
            "windows; it is empty"
        )
    cursor = _Cursor(text)
    cursor.skip()
    start = cursor.pos
    name = cursor.take(_NAME)
    if name is None:
        raise cursor.fail(f"expected a metric name ({_ALLOWED}), found {cursor.found()}")
    _check_metric(cursor, name[0], start)
    op = cursor.take(_OPERATOR)
    if op is None:
        raise cursor.fail(
            f"expected a comparison (< <= > >= == !=) after {name[0]!r}, found {cursor.found()}"
        )
    cursor.skip()
    at = cursor.pos
    number = cursor.take(_NUMBER)
    if number is None:
        raise cursor.fail(f"expected a number after {op[0]!r}, found {cursor.found()}")
    threshold = float(number[0].rstrip("%")) / (100 if number[1] else 1)
    if not math.isfinite(threshold):
        raise cursor.fail(f"the threshold {number[0]!r} is not a finite number", at)
    windows = 1
    cursor.skip()
    if cursor.pos < len(text):
        at = cursor.pos
        word = cursor.take(_WORD)
        if word is None or word[0].lower() != "for":
            raise cursor.fail(f"expected 'for N windows' or the end, found {cursor.found()}", at)
        cursor.skip()
        at = cursor.pos
        count = cursor.take(_INTEGER)
        if count is None:
            raise cursor.fail(f"expected a whole number of windows, found {cursor.found()}")
        windows = int(count[0])
        if not 1 <= windows <= MAX_WINDOWS:
            raise cursor.fail(f"the number of windows must be 1 to {MAX_WINDOWS}", at)
        cursor.skip()
        at = cursor.pos
        unit = cursor.take(_WORD)
        if unit is None or unit[0].lower() not in ("window", "windows"):
            raise cursor.fail(f"expected 'windows' after {windows}, found {cursor.found()}", at)
        cursor.skip()
        if cursor.pos < len(text):
            raise cursor.fail(f"unexpected {cursor.found()} after the condition")
    return Condition(metric=name[0], op=op[0], threshold=threshold, windows=windows)
