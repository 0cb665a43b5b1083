"""Monitor charts as standalone SVG (the helpers and palette of :mod:`edgeloop.train._plots`):
per-feature drift over time, figures over time, and reference-versus-current distributions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from edgeloop.errors import ValidationFailed
from edgeloop.monitors._entities import ReportInfo
from edgeloop.train._plots import (
    GRID,
    INK,
    MUTED,
    PALETTE,
    _axis,
    _curves_svg,
    _fmt,
    _label,
    _line,
    _rect,
    _rotated,
    _shade,
    _svg,
    _text,
    _tip,
)

__all__ = ["distribution_svg", "drift_heatmap_svg", "figures_over_time_svg", "window_label"]

DRIFTED = PALETTE[3]
_UNTESTED = "#d9d9d9"
_TIME_FIGURES = ("drift_share", "mean_confidence", "accuracy", "f1_macro")


def window_label(report: ReportInfo) -> str:
    """``MM-DD HH:MM`` of the window start (UTC), with the model version."""
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(report.window_start / 1000, tz=UTC).strftime("%m-%d %H:%M")
    return f"{start} v{report.model_version}" if report.model_version is not None else start


def _closeness(entry: dict[str, Any]) -> float:
    """How near the feature is to its threshold: 1 at the threshold, 0 far from it."""
    score, threshold = entry.get("score"), entry.get("threshold")
    if score is None or not threshold:
        return 0.0
    if entry.get("p_value") is not None:  # p-value tests drift below the threshold
        return min(1.0, float(threshold) / max(float(score), 1e-12))
    return min(1.0, float(score) / float(threshold))


def drift_heatmap_svg(reports: Sequence[ReportInfo], title: str = "Drift per feature") -> str:
    """Features (rows) by windows (columns): drifted cells in vermillion, the others shaded
    by how near they came to their threshold, untested ones grey."""
    shown = [r for r in reports if r.features]
    if not shown:
        raise ValidationFailed("no evaluated window with feature results to plot")
    features = list(dict.fromkeys(name for r in shown for name in r.features))
    left, top, width = 170.0, 60.0, 600.0
    cell_w = width / len(shown)
    cell_h = min(24.0, 480.0 / len(features))
    body = [
        _text(
            left + width / 2,
            42,
            "vermillion: drifted; blue: nearness to the threshold",
            11,
            fill=MUTED,
            text_anchor="middle",
        ),
    ]
    for j, report in enumerate(shown):
        for i, name in enumerate(features):
            entry = report.features.get(name)
            x, y = left + j * cell_w, top + i * cell_h
            if entry is None or "error" in entry:
                fill = _UNTESTED
                tip = f"{name}, {window_label(report)}: {entry.get('error') if entry else 'absent'}"
            else:
                fill = DRIFTED if entry.get("drifted") else _shade(0.1 + 0.5 * _closeness(entry))
                score = entry.get("score")
                tip = (
                    f"{name}, {window_label(report)}: {entry.get('test')} "
                    f"{'n/a' if score is None else f'{score:.4g}'} (threshold "
                    f"{entry.get('threshold')}){' drifted' if entry.get('drifted') else ''}"
                )
            body.append(_tip(tip, _rect(x, y, cell_w, cell_h, fill, ' stroke="#fff"')))
    for i, name in enumerate(features):
        y = top + (i + 0.5) * cell_h
        body.append(_label(left - 8, y, name, 24, min(12.0, cell_h * 0.8), text_anchor="end"))
    bottom = top + len(features) * cell_h + 8
    step = max(1, math.ceil(len(shown) / 12))
    for j in range(0, len(shown), step):
        x = left + (j + 0.5) * cell_w
        spin = f"rotate(-40 {x:.1f} {bottom:.1f})"
        body.append(
            _label(x, bottom, window_label(shown[j]), 18, 10, text_anchor="end", transform=spin)
        )
    height = int(bottom + 110)
    return _svg(800, max(height, 300), title, body)


def figures_over_time_svg(
    reports: Sequence[ReportInfo], title: str = "Drift share, confidence and performance"
) -> str:
    """Drift share, mean confidence, accuracy and macro F1 per window (oldest on the left),
    on [0, 1]; a figure no window has is listed without a line."""
    shown = [r for r in reports if r.status == "ok"]
    if not shown:
        raise ValidationFailed("no evaluated window to plot")
    last = max(len(shown) - 1, 1)
    curves: list[tuple[str, list[tuple[float, float]] | None]] = []
    for key in _TIME_FIGURES:
        points = [
            (i / last, float(value))
            for i, r in enumerate(shown)
            if (value := r.metrics.get(key)) is not None and math.isfinite(value)
        ]
        curves.append((key.replace("_", " "), points or None))
    first, final = window_label(shown[0]), window_label(shown[-1])
    return _curves_svg(title, f"window ({first} … {final})", "value", curves, chance=False)


def distribution_svg(
    feature: str,
    edges: Sequence[float],
    reference: Sequence[int],
    current: Sequence[int],
    title: str | None = None,
) -> str:
    """Reference and current shares per histogram bin (the reference profile's edges, with
    the under- and overflow bins), side by side."""
    if len(reference) != len(edges) + 1 or len(current) != len(edges) + 1:
        raise ValidationFailed(
            f"{feature}: counts need len(edges) + 1 = {len(edges) + 1} cells, got "
            f"{len(reference)} and {len(current)}"
        )
    r_total, c_total = max(sum(reference), 1), max(sum(current), 1)
    ref = [c / r_total for c in reference]
    cur = [c / c_total for c in current]
    names = [f"< {_fmt(edges[0])}"]
    names += [f"{_fmt(a)} to {_fmt(b)}" for a, b in itertools.pairwise(edges)]
    names.append(f"≥ {_fmt(edges[-1])}")
    left, top, width, height = 80.0, 60.0, 620.0, 280.0
    ticks, up = _axis([*ref, *cur], 0.0, height)
    slot = width / len(names)
    bar = slot * 0.4
    body = []
    for tick in ticks:
        y = top + height - up(tick)
        body.append(_line(left, y, left + width, y, GRID))
        body.append(_text(left - 6, y, _fmt(tick), 11, fill=MUTED, text_anchor="end"))
    for i, name in enumerate(names):
        x = left + i * slot + slot * 0.1
        for k, (values, legend) in enumerate(((ref, "reference"), (cur, "current"))):
            h = max(up(values[i]) - up(0.0), 0.0)
            tip = f"{name}: {legend} {values[i]:.3%}"
            body.append(
                _tip(tip, _rect(x + k * bar, top + height - h, bar, max(h, 0.5), PALETTE[k]))
            )
        cx, cy = x + bar, top + height + 12
        spin = f"rotate(-40 {cx:.1f} {cy:.1f})"
        body.append(_label(cx, cy, name, 20, 10, text_anchor="end", transform=spin))
    body.append(_line(left, top + height, left + width, top + height, INK))
    body.append(_rotated(22, top + height / 2, "share of samples", -90))
    for k, legend in enumerate(("reference", "current window")):
        body.append(_rect(left + 10 + k * 150, 40, 14, 10, PALETTE[k]))
        body.append(_text(left + 30 + k * 150, 45, legend, 11))
    return _svg(760, 480, title or f"{feature}: reference vs current", body)
