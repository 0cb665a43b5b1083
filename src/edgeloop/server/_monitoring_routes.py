"""Monitoring windows: any source sends the sketches of a window (``POST``), anyone may read
them merged per window bucket (``GET``). Devices send theirs with their telemetry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._rollouts import parse_duration
from edgeloop.monitoring import SketchWindowIn, ingest_window, merged_windows
from edgeloop.server._deps import as_role
from edgeloop.workspace import Workspace, now_ms

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))
_DAY_MS = 24 * 3600 * 1000


class WindowIn(BaseModel):
    """One closed window of one source (``sketch`` is ``WindowSketch.to_dict()`` or the
    compact ``{"packed": base64 of WindowSketch.to_bytes()}``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str = Field(min_length=1, max_length=256)
    model_version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=256)
    window_start: int = Field(ge=0)
    window_end: int = Field(ge=0)
    sketch: dict[str, Any]
    tags: dict[str, str] = Field(default_factory=dict, max_length=64)


@router.post("/monitoring/windows", status_code=202)
def post_window(body: WindowIn, ws: Workspace = editor) -> dict[str, bool]:
    """Store a window (idempotent: ``stored`` is false when the source sent it before)."""
    window = SketchWindowIn(
        model=body.model,
        model_version=body.model_version,
        source=body.source,
        window_start=body.window_start,
        window_end=body.window_end,
        sketch=body.sketch,
        tags=body.tags,
    )
    return {"stored": ingest_window(ws, window)}


def _tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationFailed(
                f"tag {item!r} must be key=value (site=plant-3, group=canary, tags.line=a)",
                details={"field": "tag"},
            )
        tags[key] = value
    return tags


@router.get("/monitoring/windows")
def get_windows(
    model: str,
    version: int,
    start: int | None = Query(None, description="Epoch ms (default: end - 1 day)."),
    end: int | None = Query(None, description="Epoch ms (default: now)."),
    window: str = Query("1h", description="Bucket length: 1h, 30m, 1d, or digits for ms."),
    tag: list[str] = Query(default_factory=list, description="key=value, all must hold."),
    source: list[str] = Query(
        default_factory=list, description="Exact sources, or prefixes ending in * (device:*)."
    ),
    ws: Workspace = viewer,
) -> dict[str, Any]:
    """The windows of ``model``/``version`` whose start falls in ``[start, end)``, merged per
    bucket of ``window`` aligned on the epoch, with their sketches
    (``WindowSketch.to_dict()``), sample counts and the number of sources."""
    text = window.strip()
    window_ms = parse_duration(int(text) if text.isdigit() else text, "window")
    end_ms = end if end is not None else now_ms()
    start_ms = start if start is not None else max(0, end_ms - _DAY_MS)
    merged = merged_windows(
        ws,
        model,
        version,
        start_ms=start_ms,
        end_ms=end_ms,
        window_ms=window_ms,
        sources=source or None,
        tags=_tags(tag),
    )
    return {
        "model": model,
        "version": version,
        "start": start_ms,
        "end": end_ms,
        "window_ms": window_ms,
        "windows": [
            {
                "start": m.start,
                "end": m.end,
                "sources": m.sources,
                "count": m.sketch.count,
                "sketch": m.sketch.to_dict(),
            }
            for m in merged
        ],
    }
