"""Device telemetry: closed windows of counts and a latency histogram, and the health
figures the rollout gates read from them (``error_rate``, ``latency_p95_ms``).

A window may carry ``sketches`` (the device's monitoring window, binned on its release's
reference: ``WindowSketch.to_dict()`` or the compact ``{"packed": base64 of to_bytes()}``
devices send, validated alike by :func:`~edgeloop.monitoring._ingest.check_window`): they are
stored as a monitoring window of source
``device:<id>`` for the release's model version, tagged with the device's ``target``,
``site``, ``firmware``, ``tags.<name>`` and ``group.<name>`` for each group it belongs to, in
the same transaction as the telemetry. Malformed sketches are refused (422) before anything
is written. Its ``predictions`` and ``labels`` (see :mod:`edgeloop.fleet._device_predictions`)
are checked first too and stored in that transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._device_predictions import (
    DevicePredictions,
    check_device_predictions,
    store_device_predictions,
)
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.fleet._groups import matches, parse_query
from edgeloop.monitoring._ingest import (
    CheckedWindow,
    SketchWindowIn,
    check_window,
    store_window,
)
from edgeloop.store import DeviceBrief, DeviceStore, DeviceTelemetry, ReleaseStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["device_tags", "health_figures", "percentile", "record_telemetry"]

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


def device_tags(s: Any, device_id: str) -> dict[str, str]:
    """What a device's monitoring windows are tagged with: ``target``, ``site``,
    ``firmware``, ``tags.<name>`` and ``group.<name>`` = ``"1"`` per group it belongs to."""
    store = DeviceStore(s)
    device = store.get(device_id)
    attributes = dict(device.attributes or {})
    tags = {"target": device.target}
    for key in ("site", "firmware"):
        value = attributes.get(key) or (device.firmware if key == "firmware" else None)
        if value:
            tags[key] = str(value)
    for key, value in (attributes.get("tags") or {}).items():
        tags[f"tags.{key}"] = str(value)
    brief = DeviceBrief(
        device.id,
        device.target,
        device.firmware,
        attributes,
        device.last_seen,
        device.enrolled_at,
    )
    for group in store.groups():
        if group.kind == "static":
            member = device.id in set(group.members or [])
        else:
            member = device.status == "accepted" and matches(parse_query(group.query), brief)
        if member:
            tags[f"group.{group.name}"] = "1"
    return tags


def _context(
    ws: Workspace, device_id: str, report: TelemetryReport
) -> tuple[str | None, int | None, dict[str, str]]:
    """The reported release's model and version (None without a release) and the device's
    tags, for the window's sketches and predictions."""
    with ws.db.read() as s:
        release = ReleaseStore(s).find(report.release) if report.release else None
        if report.release and release is None:
            raise ValidationFailed(
                f"telemetry names release {report.release!r}, which does not exist",
                details={"field": "release"},
            )
        tags = device_tags(s, device_id)
    if release is None:
        return None, None, tags
    return release.model, release.model_version, tags


def _device_window(
    device_id: str,
    report: TelemetryReport,
    model: str | None,
    version: int | None,
    tags: dict[str, str],
) -> CheckedWindow:
    """The telemetry's sketches as a checked monitoring window (422 if they are malformed)."""
    if model is None or version is None:
        raise ValidationFailed(
            "telemetry sketches need the release that produced them: send 'release'",
            details={"field": "release"},
        )
    window = SketchWindowIn(
        model=model,
        model_version=version,
        source=f"device:{device_id}",
        window_start=report.window_start,
        window_end=report.window_end,
        sketch=report.sketches or {},
        tags=tags,
    )
    try:
        return check_window(window)
    except ValidationFailed as exc:
        field = exc.details.get("field", "sketch")
        raise ValidationFailed(
            f"sketches: {exc.message}", details={"field": f"sketches.{field}"}
        ) from exc


def record_telemetry(
    ws: Workspace, device_id: str, report: TelemetryReport, *, now: int | None = None
) -> bool:
    """Store one telemetry window of ``device_id``; False if it was stored before (devices
    resend windows whose answer they did not get). Its ``sketches``, if any, become a
    monitoring window of the release's model version (see the module docstring)."""
    _check(report)
    checked: CheckedWindow | None = None
    predicted: DevicePredictions | None = None
    if report.sketches is not None or report.predictions or report.labels:
        model, version, tags = _context(ws, device_id, report)
        if report.sketches is not None:
            checked = _device_window(device_id, report, model, version, tags)
        predicted = check_device_predictions(
            device_id, report, model=model, version=version, tags=tags
        )
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
        sketches=(
            None
            if checked is None
            else {
                "model": checked.window.model,
                "model_version": checked.window.model_version,
                "samples": checked.sketch.count,
            }
        ),
        received_at=at,
    )
    with ws.db.write() as s:
        store = DeviceStore(s)
        device = store.get(device_id, for_update=True)
        stored = store.add_telemetry(row)
        if stored and checked is not None:
            store_window(s, ws, checked, now=at)
        outcome = store_device_predictions(s, predicted, now=at) if stored and predicted else None
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
            if outcome is not None:
                health["predictions"] = outcome
            else:
                health.pop("predictions", None)
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
