"""Running a monitor: every closed window not yet evaluated, per model version seen in it,
against that version's reference profile; the reports are appended, never rewritten.

A window ``[start, start + window)`` is closed once ``now >= start + window + delay``. Per
window and model version the merged sketches of the monitor's scope
(:func:`edgeloop.monitoring.merged_windows`) give drift, class balance and confidence when
they hold at least ``min_samples`` samples; the labeled predictions made in the window give
accuracy and macro F1, overall and per slice. A window with neither is reported as skipped,
with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeloop.errors import NotFound
from edgeloop.fleet._groups import group_devices
from edgeloop.monitors._entities import METRIC_KEYS, MonitorInfo, ReportInfo
from edgeloop.monitors._evaluate import drift_figures
from edgeloop.monitors._monitors import monitor_info
from edgeloop.monitors._performance import performance
from edgeloop.store import DeviceStore, ModelStore, MonitorReport, MonitorStore, PredictionStore
from edgeloop.workspace import Workspace, now_ms

if TYPE_CHECKING:
    from edgeloop.monitoring.reference import Reference
    from edgeloop.monitoring.window import WindowSketch

__all__ = ["MAX_WINDOWS_PER_RUN", "MIN_LABELS", "list_reports", "report_info", "run_monitor"]

MAX_WINDOWS_PER_RUN = 1000
"""A run evaluates at most this many windows; the next run goes on from there."""
MIN_LABELS = 1
"""Labeled predictions a window needs for accuracy and F1."""


def report_info(row: MonitorReport, monitor: str) -> ReportInfo:
    return ReportInfo(
        id=row.id,
        monitor=monitor,
        model=row.model,
        model_version=row.model_version,
        window_start=row.window_start,
        window_end=row.window_end,
        status="ok" if row.status == "ok" else "skipped",
        reason=row.reason,
        samples=row.samples,
        sources=row.sources,
        metrics=dict(row.metrics or {}),
        features=dict(row.features or {}),
        details=dict(row.details or {}),
        created_at=row.created_at,
    )


@dataclass
class _Cell:
    """What one window holds for one model version."""

    sketch: WindowSketch | None = None
    sources: int = 0
    labeled: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)


class _References:
    """Each version's reference profile, loaded once per run (None: the reason it has none)."""

    def __init__(self, ws: Workspace, model: str) -> None:
        self.ws, self.model = ws, model
        self._cache: dict[int, Reference | str] = {}

    def get(self, version: int) -> Reference | str:
        if version not in self._cache:
            from edgeloop.edge import load_reference

            try:
                self._cache[version] = load_reference(self.ws, self.model, version)
            except NotFound as exc:
                self._cache[version] = exc.message
        return self._cache[version]


def _in_scope(
    source: str, tags: Mapping[str, str], info: MonitorInfo, sources: set[str] | None
) -> bool:
    if sources is not None:
        return source in sources
    return all(tags.get(k) == v for k, v in info.scope.tags.items())


def _scope_sources(ws: Workspace, info: MonitorInfo) -> list[str] | None:
    if info.scope.kind == "sources":
        return list(info.scope.sources)
    if info.scope.kind != "group" or info.scope.group is None:
        return None
    with ws.db.read() as s:
        group = DeviceStore(s).group(info.scope.group)
        return [f"device:{d.id}" for d in group_devices(s, group)]


def _collect(
    ws: Workspace, info: MonitorInfo, start: int, end: int
) -> dict[tuple[int, int], _Cell]:
    """Merged sketches and labeled predictions by (window start, model version)."""
    from edgeloop.monitoring import merged_windows

    sources = _scope_sources(ws, info)
    with ws.db.read() as s:
        models = ModelStore(s)
        versions = [v.version for v in models.versions(models.get(info.model).id)]
        labeled = PredictionStore(s).in_range(info.model, start, end, labeled_only=True)
    cells: dict[tuple[int, int], _Cell] = defaultdict(_Cell)
    tags = info.scope.tags or None
    for version in versions:
        if sources is not None and not sources:
            break
        for merged in merged_windows(
            ws,
            info.model,
            version,
            start_ms=start,
            end_ms=end,
            window_ms=info.window_ms,
            sources=sources,
            tags=tags,
        ):
            cell = cells[(merged.start, version)]
            cell.sketch, cell.sources = merged.sketch, merged.sources
    wanted = None if sources is None else set(sources)
    for p in labeled:
        if p.label is not None and _in_scope(p.source, p.tags or {}, info, wanted):
            window = p.at // info.window_ms * info.window_ms
            cells[(window, p.model_version)].labeled.append((p.label, p.predicted, p.tags or {}))
    return cells


def _evaluate(
    info: MonitorInfo, version: int, cell: _Cell, references: _References
) -> tuple[str, str, int, dict[str, float | None], dict[str, Any], dict[str, Any]]:
    """(status, reason, samples, metrics, features, details) of one window and version."""
    metrics: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    features: dict[str, Any] = {}
    details: dict[str, Any] = {}
    reasons: list[str] = []
    samples = cell.sketch.count if cell.sketch is not None else 0
    metrics["samples"] = float(samples)
    drift_done = False
    if samples < info.min_samples:
        reasons.append(
            f"drift: {samples} samples, fewer than min_samples {info.min_samples}"
            if samples
            else "drift: no sketches in the window"
        )
    else:
        assert cell.sketch is not None
        reference = references.get(version)
        if isinstance(reference, str):
            reasons.append(f"drift: {reference}")
        else:
            figures, features, details["prediction"] = drift_figures(
                reference, cell.sketch, info.tests, info.drift_share
            )
            metrics.update(figures)
            drift_done = True
    perf = performance(cell.labeled, info.slice_by)
    metrics["labeled"] = float(perf["overall"]["labeled"])
    if len(cell.labeled) >= MIN_LABELS:
        metrics["accuracy"] = perf["overall"]["accuracy"]
        metrics["f1_macro"] = perf["overall"]["f1_macro"]
        details["performance"] = perf
    else:
        reasons.append("performance: no labeled predictions in the window")
    status = "ok" if drift_done or cell.labeled else "skipped"
    return status, "; ".join(reasons), samples, metrics, features, details


def run_monitor(ws: Workspace, name: str, *, now: int | None = None) -> list[ReportInfo]:
    """Evaluate the closed windows not yet reported (at most :data:`MAX_WINDOWS_PER_RUN`)
    and append their reports; returns the new reports, oldest first."""
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        info = monitor_info(MonitorStore(s).get(name))
    w = info.window_ms
    start = info.evaluated_until
    end = min((at - info.delay_ms) // w * w, start + MAX_WINDOWS_PER_RUN * w)
    if end <= start:
        return []
    cells = _collect(ws, info, start, end)
    references = _References(ws, info.model)
    rows: list[MonitorReport] = []
    for window in range(start, end, w):
        versions = sorted(v for (start_, v) in cells if start_ == window)
        if not versions:
            rows.append(
                MonitorReport(
                    model=info.model,
                    model_version=None,
                    window_start=window,
                    window_end=window + w,
                    status="skipped",
                    reason="no data in the window: no sketches and no labeled predictions",
                    samples=0,
                    sources=0,
                    metrics=dict.fromkeys(METRIC_KEYS),
                    features={},
                    details={},
                    created_at=at,
                )
            )
            continue
        for version in versions:
            cell = cells[(window, version)]
            status, reason, samples, metrics, features, details = _evaluate(
                info, version, cell, references
            )
            rows.append(
                MonitorReport(
                    model=info.model,
                    model_version=version,
                    window_start=window,
                    window_end=window + w,
                    status=status,
                    reason=reason,
                    samples=samples,
                    sources=cell.sources,
                    metrics=metrics,
                    features=features,
                    details=details,
                    created_at=at,
                )
            )
    with ws.db.write() as s:
        store = MonitorStore(s)
        monitor = store.get(name, for_update=True)
        fresh = [r for r in rows if r.window_start >= monitor.evaluated_until]  # not run since
        for row in fresh:
            row.monitor_id = monitor.id
        store.add_reports(fresh)
        monitor.evaluated_until = max(monitor.evaluated_until, end)
        return [report_info(r, name) for r in fresh]


def list_reports(
    ws: Workspace, monitor: str, *, since: int | None = None, limit: int | None = None
) -> list[ReportInfo]:
    """A monitor's reports, oldest window first; ``since`` (epoch ms): only windows ending
    after it; ``limit``: only the newest ``limit``."""
    with ws.db.read() as s:
        store = MonitorStore(s)
        row = store.get(monitor)
        return [report_info(r, monitor) for r in store.reports(row.id, since=since, limit=limit)]
