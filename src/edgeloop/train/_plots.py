"""Evaluation charts as hand-written SVG 1.1 strings, with no plotting dependency.

Every chart is a standalone document with a fixed ``viewBox`` (and the same width and height,
in px), a white background, a ``<title>``, and its text escaped, so it can be stored as an
artifact, embedded in a page or opened in a browser. Long labels are shortened with an
ellipsis; the full text stays in a ``<title>`` tooltip. Colours are the Okabe-Ito palette,
which stays distinguishable for colour-blind readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

from edgeloop.errors import ValidationFailed
from edgeloop.train._evaluate import ArrayLike, check_proba, encode_labels

__all__ = [
    "bar_chart_svg",
    "confusion_matrix_svg",
    "feature_importance_svg",
    "pr_curves_svg",
    "roc_curves_svg",
]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000")
INK, MUTED, GRID = "#222", "#666", "#e4e4e4"
Curve = tuple[str, list[tuple[float, float]] | None]


def _n(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _fmt(value: float) -> str:
    """A value for people: integers as such, others with 3 significant digits."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e9 else f"{value:.3g}"


def _text(x: float, y: float, text: str, size: float = 12, **attrs: str | float) -> str:
    """A ``<text>`` centred vertically on ``y``; ``attrs`` are SVG attributes, ``_`` for ``-``."""
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    position = f'x="{_n(x)}" y="{_n(y)}" dy="0.35em" font-size="{_n(size)}"'
    return f"<text {position}{extra}>{escape(text)}</text>"


def _tip(tip: str, element: str) -> str:
    """``element`` with a tooltip."""
    return f"<g><title>{escape(tip)}</title>{element}</g>"


def _label(x: float, y: float, text: str, limit: int, size: float, **attrs: str | float) -> str:
    """Text shortened to ``limit`` characters with an ellipsis, the full text as a tooltip."""
    if len(text) <= limit:
        return _text(x, y, text, size, **attrs)
    return _tip(text, _text(x, y, text[: max(limit - 1, 1)] + "…", size, **attrs))


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    box = f'x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}"'
    return f'<rect {box} fill="{fill}"{extra}/>'


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    ends = f'x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"'
    return f'<line {ends} stroke="{stroke}"{extra}/>'


def _rotated(x: float, y: float, text: str, angle: float, size: float = 13) -> str:
    spin = f"rotate({_n(angle)} {_n(x)} {_n(y)})"
    return _text(x, y, text, size, text_anchor="middle", transform=spin)


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica, Arial, sans-serif" fill="{INK}">'
    )
    heading = _label(width / 2, 22, title, 70, 16, text_anchor="middle", font_weight="bold")
    parts = [head, f"<title>{escape(title)}</title>", _rect(0, 0, width, height, "#fff"), heading]
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join([*parts, *body, "</svg>"]) + "\n"


def _axis(
    numbers: Sequence[float], start: float, length: float
) -> tuple[list[float], Callable[[float], float]]:
    """Round ticks covering the numbers and 0, and value → coordinate along the axis."""
    low, high = min(0.0, *numbers), max(0.0, *numbers)
    high = high if high > low else low + 1
    raw = (high - low) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    ticks = [first + i * step for i in range(math.ceil((high - first) / step - 1e-9) + 1)]
    return ticks, lambda v: start + (v - ticks[0]) / (ticks[-1] - ticks[0]) * length


def _shade(share: float) -> str:
    """White to dark blue."""
    low, high = (247, 251, 255), (8, 48, 107)
    share = min(max(share, 0.0), 1.0)
    return "#" + "".join(
        f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high, strict=True)
    )


def confusion_matrix_svg(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], title: str = "Confusion matrix"
) -> str:
    """Rows are true labels, columns predicted; cells show counts, shaded by share of the row."""
    matrix = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    if k == 0 or matrix.shape != (k, k):
        raise ValidationFailed(f"confusion must be {k} x {k} for {k} labels, got {matrix.shape}")
    size, left, top = 440.0, 160.0, 70.0
    cell = size / k
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    font, small = min(14.0, max(7.0, cell * 0.3)), min(12.0, max(7.0, cell * 0.45))
    note = "cell shade: share of the true label's samples"
    body = [_text(left + size / 2, 44, note, 11, fill=MUTED, text_anchor="middle")]
    for i in range(k):
        for j in range(k):
            x, y = left + j * cell, top + i * cell
            body.append(_rect(x, y, cell, cell, _shade(share[i, j]), ' stroke="#fff"'))
            ink = "#fff" if share[i, j] > 0.5 else INK
            count = str(matrix[i, j])
            body.append(
                _text(x + cell / 2, y + cell / 2, count, font, fill=ink, text_anchor="middle")
            )
    bottom = top + size + 8
    for i, name in enumerate(labels):
        y, x = top + (i + 0.5) * cell, left + (i + 0.5) * cell
        body.append(_label(left - 8, y, str(name), 22, small, text_anchor="end"))
        spin = f"rotate(-40 {_n(x)} {_n(bottom)})"
        body.append(_label(x, bottom, str(name), 18, small, text_anchor="end", transform=spin))
    body.append(_text(left + size / 2, 626, "Predicted", 13, text_anchor="middle"))
    body.append(_rotated(18, top + size / 2, "True", -90))
    return _svg(640, 640, title, body)


def bar_chart_svg(values: Mapping[str, float], title: str, ylabel: str) -> str:
    """Vertical bars, one per name in the given order (e.g. a metric for several models)."""
    names, numbers = list(values), [float(v) for v in values.values()]
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise ValidationFailed("values must hold at least one bar, all finite numbers")
    slot = 540.0 / len(names)
    tilt = len(names) > 6 or max(len(n) for n in names) * 6.5 > slot
    left, top, width, height = 80.0, 50.0, 540.0, 260.0 if tilt else 310.0
    ticks, up = _axis(numbers, 0.0, height)

    def y_of(value: float) -> float:
        return top + height - up(value)

    body = []
    for tick in ticks:
        body.append(_line(left, y_of(tick), left + width, y_of(tick), GRID))
        body.append(_text(left - 6, y_of(tick), _fmt(tick), 11, fill=MUTED, text_anchor="end"))
    bar = min(slot * 0.7, 80.0)
    for i, (name, number) in enumerate(zip(names, numbers, strict=True)):
        x = left + i * slot + (slot - bar) / 2
        y0, y1 = sorted((y_of(0.0), y_of(number)))
        body.append(_tip(f"{name}: {number:g}", _rect(x, y0, bar, max(y1 - y0, 0.5), PALETTE[0])))
        above = y0 - 9 if number >= 0 else y1 + 9
        body.append(_text(x + bar / 2, above, _fmt(number), 11, text_anchor="middle"))
        cx, cy = x + bar / 2, top + height + 12
        if tilt:
            spin = f"rotate(-35 {_n(cx)} {_n(cy)})"
            body.append(_label(cx, cy, name, 18, 12, text_anchor="end", transform=spin))
        else:
            body.append(_label(cx, cy, name, max(4, int(slot / 7)), 12, text_anchor="middle"))
    body.append(_line(left, y_of(0.0), left + width, y_of(0.0), INK))
    body.append(_rotated(22, top + height / 2, ylabel, -90))
    return _svg(640, 420, title, body)


def feature_importance_svg(
    importances: Mapping[str, float], title: str = "Feature importance", top: int = 20
) -> str:
    """Horizontal bars of the ``top`` largest importances, largest first."""
    finite = all(math.isfinite(float(v)) for v in importances.values())
    if not importances or not finite or top < 1:
        raise ValidationFailed("importances must hold at least one feature, all finite; top >= 1")
    ranked = sorted(importances.items(), key=lambda item: -float(item[1]))[:top]
    left, upper, width, height = 230.0, 60.0, 400.0, 440.0
    ticks, x_of = _axis([float(v) for _, v in ranked], left, width)
    body = []
    for tick in ticks:
        body.append(_line(x_of(tick), upper, x_of(tick), upper + height, GRID))
        label = _fmt(tick)
        body.append(
            _text(x_of(tick), upper + height + 14, label, 11, fill=MUTED, text_anchor="middle")
        )
    slot = height / max(len(ranked), 5)
    bar = slot * 0.72
    size = min(12.0, bar * 0.8)
    for i, (name, value) in enumerate(ranked):
        number, y = float(value), upper + i * slot + (slot - bar) / 2
        x0, x1 = sorted((x_of(0.0), x_of(number)))
        body.append(_tip(f"{name}: {number:g}", _rect(x0, y, max(x1 - x0, 0.5), bar, PALETTE[0])))
        body.append(_label(left - 8, y + bar / 2, name, 32, size, text_anchor="end"))
        x, anchor = (x1 + 5, "start") if number >= 0 else (x0 - 5, "end")
        body.append(_text(x, y + bar / 2, _fmt(number), size, fill=MUTED, text_anchor=anchor))
    body.append(_line(x_of(0.0), upper, x_of(0.0), upper + height, INK))
    shown = f"top {len(ranked)} of {len(importances)} features"
    body.append(_text(left + width / 2, upper - 18, shown, 11, fill=MUTED, text_anchor="middle"))
    return _svg(720, 540, title, body)


def _polyline(points: Sequence[tuple[float, float]], colour: str) -> str:
    """Points on the unit square, drawn in the plot area; repeated pixels are dropped."""
    path: list[str] = []
    for px, py in points:
        point = f"{_n(70 + px * 380)},{_n(430 - py * 380)}"
        if not path or point != path[-1]:
            path.append(point)
    drawn = f'points="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"'
    return f'<polyline {drawn} stroke-linejoin="round"/>'


def _curves_svg(title: str, x_label: str, y_label: str, curves: list[Curve], chance: bool) -> str:
    """Curves on the unit square (plot area 380 px at (70, 50)) with a legend on the right."""
    left, top, size = 70.0, 50.0, 380.0
    body = []
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, y, label = left + tick * size, top + size - tick * size, f"{tick:g}"
        body += [_line(x, top, x, top + size, GRID), _line(left, y, left + size, y, GRID)]
        body.append(_text(x, top + size + 14, label, 11, fill=MUTED, text_anchor="middle"))
        body.append(_text(left - 6, y, label, 11, fill=MUTED, text_anchor="end"))
    body.append(_rect(left, top, size, size, "none", f' stroke="{INK}"'))
    if chance:
        body.append(_line(left, top + size, left + size, top, MUTED, ' stroke-dasharray="4 4"'))
    body.append(_text(left + size / 2, top + size + 36, x_label, 13, text_anchor="middle"))
    body.append(_rotated(20, top + size / 2, y_label, -90))
    row = min(20.0, size / max(len(curves), 1))
    for i, (legend, points) in enumerate(curves):
        colour, y = PALETTE[i % len(PALETTE)], top + 8 + i * row
        if points is not None:
            body.append(_polyline(points, colour))
        body.append(_line(472, y, 494, y, colour if points else GRID, ' stroke-width="3"'))
        ink = INK if points else MUTED
        body.append(_label(500, y, legend, 30, min(12.0, row * 0.75), fill=ink))
    return _svg(720, 480, title, body)


def _one_vs_rest(
    y_true: ArrayLike, proba: npt.ArrayLike, labels: Sequence[Any]
) -> list[tuple[str, npt.NDArray[np.bool_], npt.NDArray[np.float64]]]:
    shape = np.shape(proba)
    t, _, names = encode_labels(y_true, None, labels, shape[1] if len(shape) == 2 else None)
    p = check_proba(proba, len(t))
    return [(str(name), t == i, p[:, i]) for i, name in enumerate(names)]


def roc_curves_svg(y_true: ArrayLike, proba: npt.ArrayLike, labels: Sequence[Any]) -> str:
    """One ROC curve per label (one-vs-rest), its AUC in the legend.

    ``proba`` columns are in the order of ``labels``; a label without positive or without
    negative samples is listed in the legend without a curve.
    """
    curves: list[Curve] = []
    for name, positive, score in _one_vs_rest(y_true, proba, labels):
        if positive.all() or not positive.any():
            curves.append((f"{name} (no {'negatives' if positive.any() else 'samples'})", None))
            continue
        fpr, tpr, _ = skm.roc_curve(positive, score)
        auc = float(skm.roc_auc_score(positive, score))
        curves.append(
            (f"{name} (AUC {auc:.3f})", list(zip(fpr.tolist(), tpr.tolist(), strict=True)))
        )
    axes = ("False positive rate", "True positive rate")
    return _curves_svg("ROC curves (one-vs-rest)", *axes, curves, chance=True)


def pr_curves_svg(y_true: ArrayLike, proba: npt.ArrayLike, labels: Sequence[Any]) -> str:
    """One precision-recall curve per label (one-vs-rest, drawn as steps), its area in the legend.

    The area is the average precision (``sklearn.metrics.average_precision_score``, the
    step-wise area under this curve), shown as ``AP``.
    """
    curves: list[Curve] = []
    for name, positive, score in _one_vs_rest(y_true, proba, labels):
        if not positive.any():
            curves.append((f"{name} (no samples)", None))
            continue
        precision, recall, _ = skm.precision_recall_curve(positive, score)
        ap = float(skm.average_precision_score(positive, score))
        steps: list[tuple[float, float]] = []  # the height of a step is its right end's
        for r0, r1, p0 in zip(recall[:-1], recall[1:], precision[:-1], strict=True):
            steps += [(float(r0), float(p0)), (float(r1), float(p0))]
        curves.append((f"{name} (AP {ap:.3f})", steps))
    return _curves_svg(
        "Precision-recall curves (one-vs-rest)", "Recall", "Precision", curves, False
    )
