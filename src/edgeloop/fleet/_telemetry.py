"""Device telemetry: closed windows of counts and a latency histogram, and the health
figures the rollout gates read from them (``error_rate``, ``latency_p95_ms``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.store import DeviceStore, DeviceTelemetry
from edgeloop.workspace import Workspace, now_ms

__all__ = ["health_figures", "percentile", "record_telemetry"]

_MAX_WINDOW_MS = 31 * 24 * 3600 * 1000


def percentile(edges: Sequence[float], counts: Sequence[int], q: float, top: float) -> float:
    """The ``q`` quantile of a histogram (``len(counts) == len(edges) + 1``: the last bin is
    the overflow, closed by ``top``), linear within its bin."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = edges[i - 1] if i > 0 else 0.0
            high = edges[i] if i < len(edges) else max(top, low)
            return round(low + (high - low) * (rank - seen) / count, 4)
        seen += count
    return round(top, 4)


def _check(report: TelemetryReport) -> None:
    if report.window_end < report.window_start:
        raise ValidationFailed("window_end is before window_start", details={"field": "window_end"})
    if report.window_end - report.window_start > _MAX_WINDOW_MS:
        raise ValidationFailed(
            "a telemetry window spans at most 31 days", details={"field": "window_end"}
        )
    if report.error_count > report.inference_count:
        raise ValidationFailed(
            f"error_count {report.error_count} is more than inference_count "
            f"{report.inference_count}",
            details={"field": "error_count"},
        )
    hist = report.latency_ms
    if hist is not None and (hist.edges or hist.counts):
        if len(hist.counts) != len(hist.edges) + 1:
            raise ValidationFailed(
                "latency_ms.counts needs one bin more than latency_ms.edges (the last one "
                "counts latencies above the last edge)",
                details={"field": "latency_ms"},
            )
        if any(b <= a for a, b in itertools.pairwise(hist.edges)):
            raise ValidationFailed(
                "latency_ms.edges must increase", details={"field": "latency_ms.edges"}
            )
        if any(c < 0 for c in hist.counts):
            raise ValidationFailed(
                "latency_ms.counts must be >= 0", details={"field": "latency_ms.counts"}
            )


def record_telemetry(
    ws: Workspace, device_id: str, report: TelemetryReport, *, now: int | None = None
) -> bool:
    """Store one telemetry window of ``device_id``; False if it was stored before (devices
    resend windows whose answer they did not get)."""
    _check(report)
    at = now if now is not None else now_ms()
    hist = report.latency_ms
    row = DeviceTelemetry(
        device_id=device_id,
        window_start=report.window_start,
        window_end=report.window_end,
        release_id=report.release,
        model_version=report.model_version,
        inference_count=report.inference_count,
        error_count=report.error_count,
        dropped_windows=report.dropped_windows,
        latency={"edges": list(hist.edges), "counts": list(hist.counts)} if hist else {},
        latency_p95_ms=report.latency_p95_ms,
        sketches=report.sketches,
        received_at=at,
    )
    with ws.db.write() as s:
        store = DeviceStore(s)
        device = store.get(device_id, for_update=True)
        stored = store.add_telemetry(row)
        device.last_seen = max(device.last_seen or 0, at)
        if stored and report.window_end >= int((device.health or {}).get("window_end", 0)):
            health = dict(device.health or {})
            health.update(
                window_end=report.window_end,
                release=report.release,
                inference_count=report.inference_count,
                error_rate=(
                    report.error_count / report.inference_count if report.inference_count else None
                ),
                latency_p95_ms=report.latency_p95_ms,
            )
            device.health = health
    return stored


def health_figures(rows: Sequence[DeviceTelemetry]) -> dict[str, Any]:
    """``error_rate`` over all windows and ``latency_p95_ms`` of the merged histogram (the
    largest reported p95 when the windows' bins differ), with the number of windows and
    inferences they rest on; a figure is None without inferences."""
    inferences = sum(r.inference_count for r in rows)
    errors = sum(r.error_count for r in rows)
    figures: dict[str, Any] = {
        "windows": len(rows),
        "inferences": inferences,
        "errors": errors,
        "error_rate": errors / inferences if inferences else None,
        "latency_p95_ms": None,
    }
    with_data = [r for r in rows if r.inference_count]
    if not with_data:
        return figures
    reported = [r.latency_p95_ms for r in with_data if r.latency_p95_ms is not None]
    top = max(reported) if reported else 0.0
    edges = [tuple((r.latency or {}).get("edges") or ()) for r in with_data]
    if edges and edges[0] and all(e == edges[0] for e in edges):
        merged = [0] * (len(edges[0]) + 1)
        for r in with_data:
            for i, count in enumerate(r.latency["counts"]):
                merged[i] += int(count)
        if sum(merged):
            figures["latency_p95_ms"] = percentile(edges[0], merged, 0.95, top)
            return figures
    figures["latency_p95_ms"] = top if reported else None
    return figures
