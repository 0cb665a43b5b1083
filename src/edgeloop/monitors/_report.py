"""A monitor's recent windows, for people: the summary the CLI prints and the SVG plots it
writes (drift per feature over time, figures over time, reference versus current
distributions of the newest evaluated window)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.monitors._entities import MonitorInfo, ReportInfo
from edgeloop.monitors._monitors import get_monitor
from edgeloop.monitors._plots import distribution_svg, drift_heatmap_svg, figures_over_time_svg
from edgeloop.monitors._run import list_reports
from edgeloop.workspace import Workspace

__all__ = ["MonitorSummary", "monitor_report", "report_plots"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class MonitorSummary(BaseModel):
    """A monitor and its newest reports (oldest first)."""

    monitor: MonitorInfo
    reports: list[ReportInfo] = Field(default_factory=list)


def monitor_report(ws: Workspace, name: str, *, windows: int = 24) -> MonitorSummary:
    """The monitor and the reports of its newest ``windows`` windows."""
    if windows < 1:
        raise ValidationFailed(f"windows must be >= 1, got {windows}", details={"field": "windows"})
    info = get_monitor(ws, name)
    reports = list_reports(ws, name, limit=windows * 8)
    starts = sorted({r.window_start for r in reports})[-windows:]
    return MonitorSummary(monitor=info, reports=[r for r in reports if r.window_start in starts])


def report_plots(ws: Workspace, name: str, *, windows: int = 24) -> dict[str, str]:
    """SVG documents by file name: ``drift-over-time.svg``, ``figures-over-time.svg`` and
    ``distribution-<feature>.svg`` for each feature of the newest evaluated window (its
    current histogram against its model version's reference). Empty without evaluated
    windows."""
    summary = monitor_report(ws, name, windows=windows)
    evaluated = [r for r in summary.reports if r.status == "ok"]
    plots: dict[str, str] = {}
    if not evaluated:
        return plots
    title = f"{name}: {summary.monitor.model}"
    if any(r.features for r in evaluated):
        plots["drift-over-time.svg"] = drift_heatmap_svg(evaluated, f"{title}, drift per feature")
    plots["figures-over-time.svg"] = figures_over_time_svg(evaluated, f"{title}, figures")
    newest = next((r for r in reversed(evaluated) if r.features), None)
    if newest is None or newest.model_version is None:
        return plots
    from edgeloop.edge import load_reference

    try:
        reference = load_reference(ws, summary.monitor.model, newest.model_version)
    except NotFound:
        return plots
    for feature, entry in newest.features.items():
        sketch = reference.features.get(feature)
        counts = entry.get("counts")
        if sketch is None or not counts:
            continue
        histogram = sketch.histogram
        plots[f"distribution-{_UNSAFE.sub('_', feature)}.svg"] = distribution_svg(
            feature,
            histogram.edges.tolist(),
            histogram.counts.tolist(),
            [int(c) for c in counts],
            title=f"{feature}: reference (v{newest.model_version}) vs window {newest.window_start}",
        )
    return plots
