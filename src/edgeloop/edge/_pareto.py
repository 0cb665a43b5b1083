"""Tuning results: a trial's point (accuracy, footprint, feasibility), the Pareto front over
int8 accuracy, latency and RAM, the chosen point, and the front as an SVG plot."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgeloop.train._plots import (
    GRID,
    INK,
    MUTED,
    PALETTE,
    _axis,
    _fmt,
    _line,
    _rect,
    _rotated,
    _svg,
    _text,
    _tip,
)

if TYPE_CHECKING:
    pass

__all__ = ["TunePoint", "pareto_front", "pareto_svg"]

_UNITS = {"ram_kb": ("RAM", "kB"), "flash_kb": ("flash", "kB"), "latency_ms": ("latency", "ms")}


def _key(params: Mapping[str, Any]) -> str:
    """Identifies a configuration: trials with equal params are the same point."""
    return json.dumps(params, sort_keys=True)


@dataclass(frozen=True)
class TunePoint:
    """One completed trial: its configuration (``params``), accuracies on the held-out
    machines, footprint on the target, whether it meets every limit (``violations`` names
    those it breaks), its child run, how long it took, and the earlier trial it repeats
    (``repeat_of``: the same configuration, measured once)."""

    trial: int
    params: dict[str, Any]
    int8_accuracy: float
    float_accuracy: float
    flash_kb: float
    ram_kb: float
    latency_ms: float
    run_id: str
    violations: tuple[str, ...] = ()
    seconds: float = 0.0
    repeat_of: int | None = None

    @property
    def feasible(self) -> bool:
        return not self.violations

    def objectives(self) -> tuple[float, float, float]:
        """What the study minimises: ``(-int8 accuracy, latency, RAM)``."""
        return (-self.int8_accuracy, self.latency_ms, self.ram_kb)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "violations": list(self.violations), "feasible": self.feasible}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TunePoint:
        fields = {k: v for k, v in data.items() if k != "feasible"}
        return cls(**{**fields, "violations": tuple(fields.get("violations", ()))})


def _dominates(a: TunePoint, b: TunePoint) -> bool:
    pairs = list(zip(a.objectives(), b.objectives(), strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def pareto_front(points: Sequence[TunePoint]) -> list[TunePoint]:
    """The feasible points no other feasible point dominates (at least as accurate, fast and
    small, and better in one), each configuration once (its first trial), by latency then
    trial number."""
    feasible = [p for p in points if p.feasible]
    front = [p for p in feasible if not any(_dominates(q, p) for q in feasible)]
    first: dict[str, TunePoint] = {}
    for p in sorted(front, key=lambda p: p.trial):
        first.setdefault(_key(p.params), p)
    front = list(first.values())
    return sorted(front, key=lambda p: (p.latency_ms, p.trial))


def _choose(front: Sequence[TunePoint]) -> TunePoint:
    return min(front, key=lambda p: (-p.int8_accuracy, p.latency_ms, p.ram_kb, p.trial))


def _circle(x: float, y: float, r: float, fill: str, stroke: str, extra: str = "") -> str:
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:g}" fill="{fill}" stroke="{stroke}"'
        f' stroke-width="1.5"{extra}/>'
    )


def pareto_svg(
    points: Sequence[TunePoint],
    front: Sequence[TunePoint],
    chosen: TunePoint | None,
    limits: Mapping[str, float],
    title: str,
) -> str:
    """Latency against int8 accuracy: infeasible trials hollow, feasible ones blue, the front
    orange, the chosen point ringed; a dashed line at the latency limit unless it lies far
    right of every point (the subtitle states every limit)."""
    left, top, width, height = 70.0, 56.0, 440.0, 360.0
    latencies = [p.latency_ms for p in points]
    limit = limits.get("latency_ms")
    shown = limit is not None and limit <= 1.5 * max(latencies)
    x_ticks, x_of = _axis(latencies + ([limit] if shown and limit else []), left, width)
    lowest = min(p.int8_accuracy for p in points)
    span = max(1.0 - lowest, 0.01)  # accuracy from just under the lowest point to 100%
    step = 10 ** math.floor(math.log10(span))
    low = max(0.0, math.floor((lowest - 0.1 * span) / step) * step)
    y_ticks, up = _axis([p.int8_accuracy - low for p in points] + [1.0 - low], 0.0, height)
    digits = max(0, -math.floor(math.log10(100 * (y_ticks[1] - y_ticks[0])) + 1e-9))

    def y_of(accuracy: float) -> float:
        return top + height - up(accuracy - low)

    body = []
    for tick in x_ticks:
        x = x_of(tick)
        body.append(_line(x, top, x, top + height, GRID))
        body.append(_text(x, top + height + 14, _fmt(tick), 11, fill=MUTED, text_anchor="middle"))
    for tick in y_ticks:
        label = f"{100 * (tick + low):.{digits}f}%"
        body.append(_line(left, y_of(tick + low), left + width, y_of(tick + low), GRID))
        body.append(_text(left - 6, y_of(tick + low), label, 11, fill=MUTED, text_anchor="end"))
    body.append(_rect(left, top, width, height, "none", f' stroke="{INK}"'))
    if shown and limit is not None:
        x = x_of(limit)
        body.append(_line(x, top, x, top + height, PALETTE[3], ' stroke-dasharray="5 4"'))
        label = f"max {limit:g} ms"
        body.append(_text(x - 4, top + 10, label, 11, fill=PALETTE[3], text_anchor="end"))
    on_front = {p.trial for p in front}
    for p in sorted(points, key=lambda p: (p.trial in on_front, p.feasible)):
        x, y = x_of(p.latency_ms), y_of(p.int8_accuracy)
        if not p.feasible:
            mark = _circle(x, y, 4.5, "none", MUTED)
        elif p.trial in on_front:
            mark = _circle(x, y, 5.5, PALETTE[1], INK)
        else:
            mark = _circle(x, y, 4.5, PALETTE[0], PALETTE[0], ' fill-opacity="0.45"')
        state = "front" if p.trial in on_front else "feasible" if p.feasible else "infeasible"
        tip = (
            f"trial {p.trial} ({state}): int8 {100 * p.int8_accuracy:.1f}%, float "
            f"{100 * p.float_accuracy:.1f}%, {p.latency_ms:.3g} ms, RAM {p.ram_kb:.1f} kB, "
            f"flash {p.flash_kb:.1f} kB; {json.dumps(p.params)}"
        )
        body.append(_tip(tip, mark))
    if chosen is not None:
        x, y = x_of(chosen.latency_ms), y_of(chosen.int8_accuracy)
        body.append(_circle(x, y, 10, "none", PALETTE[3]))
        below = y < top + 24  # near the top edge: label under the ring
        label = f"chosen: trial {chosen.trial}"
        halo: dict[str, str | float] = {
            "paint_order": "stroke",
            "stroke": "#fff",
            "stroke_width": 3,
        }
        body.append(_text(x + 12, y + (14 if below else -14), label, 11, fill=PALETTE[3], **halo))
    body.append(
        _text(left + width / 2, top + height + 36, "Latency (ms)", 13, text_anchor="middle")
    )
    body.append(_rotated(20, top + height / 2, "int8 accuracy (unseen machines)", -90))
    legend = [
        (_circle(0, 0, 5.5, PALETTE[1], INK), f"Pareto front ({len(front)})"),
        (_circle(0, 0, 4.5, PALETTE[0], PALETTE[0], ' fill-opacity="0.45"'), "feasible"),
        (_circle(0, 0, 4.5, "none", MUTED), "infeasible"),
        (_circle(0, 0, 8, "none", PALETTE[3]), "chosen"),
    ]
    for i, (mark, name) in enumerate(legend):
        y = top + 10 + 22 * i
        body.append(f'<g transform="translate({left + width + 24:g} {y:g})">{mark}</g>')
        body.append(_text(left + width + 36, y, name, 12))
    limit_text = ", ".join(f"{_UNITS[k][0]} <= {v:.4g} {_UNITS[k][1]}" for k, v in limits.items())
    note = f"{len(points)} trials; front over accuracy, latency and RAM; limits: {limit_text}"
    body.append(_text(left + width / 2 + 60, 40, note, 11, fill=MUTED, text_anchor="middle"))
    return _svg(720, 480, title, body)
