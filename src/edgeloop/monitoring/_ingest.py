"""Monitoring windows on the server: one API for every source (devices through their
telemetry, REST endpoints, batch jobs), and merging per aligned window bucket.

A window is stored once per (source, model, version, window start) — sending it again
changes nothing — as its counts only (:mod:`edgeloop.monitoring._window_pack`); the bins,
feature names and classes (the *layout*) are stored once per model version, taken from the
version's ``monitoring/reference.json`` (or, for a version without one, from its first
window), and every later window must match them, so any set of windows merges.
:func:`merged_windows` merges on read: it selects the windows whose start falls in the range
(by index), filters them by source and tags, and merges each bucket's windows in one
vectorised pass (2,000 device windows of 20 features in well under a second).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.monitoring._window_pack import Layout, layout_of, merge_packed, pack_window
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference
from edgeloop.monitoring.window import WindowSketch
from edgeloop.store import MonitoringLayout, MonitoringStore, MonitoringWindow
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "MAX_SKETCH_BYTES",
    "MAX_WINDOW_BYTES",
    "CheckedWindow",
    "MergedWindow",
    "SketchWindowIn",
    "check_window",
    "ingest_window",
    "merged_windows",
    "store_window",
    "tags_match",
]

MAX_WINDOW_BYTES = 2 << 20
"""The largest window accepted, packed (counts only, compressed)."""
MAX_SKETCH_BYTES = 16 << 20
"""The most a window sent in the compact form (``{"packed": ...}``) may inflate to; a zip
bomb is refused after inflating at most this much."""
_MAX_SPAN_MS = 31 * 24 * 3600 * 1000
_MAX_BUCKETS = 10_000
_MAX_TAGS = 64
_SOURCE = re.compile(r"^(device|endpoint|batch):[A-Za-z0-9_.:/@+=\-]{1,200}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True)
class SketchWindowIn:
    """One closed window from one source: ``sketch`` is ``WindowSketch.to_dict()`` or the
    compact ``WindowSketch.to_packed()`` (``{"packed": "<base64>"}``), times
    are epoch ms, ``source`` is ``device:<id>``, ``endpoint:<name>`` or ``batch:<name>`` and
    ``tags`` name what the window can be filtered by (a device's ``site``, ``target``,
    ``tags.<name>`` and ``group.<name>``)."""

    model: str
    model_version: int
    source: str
    window_start: int
    window_end: int
    sketch: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MergedWindow:
    """The merge of every window whose start falls in ``[start, end)``; ``sources`` counts
    the distinct sources that sent one."""

    start: int
    end: int
    sketch: WindowSketch
    sources: int


@dataclass(frozen=True)
class CheckedWindow:
    """A window that passed :func:`check_window`, ready to be stored."""

    window: SketchWindowIn
    sketch: WindowSketch
    layout: Layout
    data: bytes
    tags: dict[str, str]


def _invalid(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": field_name})


def _int(field_name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _invalid(field_name, f"{field_name} must be an integer >= {low}, got {value!r}")
    return value


def check_window(window: SketchWindowIn) -> CheckedWindow:
    """Validate ``window`` (no database access): :class:`ValidationFailed` naming the field."""
    if not isinstance(window.model, str) or not 1 <= len(window.model) <= 256:
        raise _invalid("model", "model must be a registered model's name (1-256 characters)")
    _int("model_version", window.model_version, 1)
    if not isinstance(window.source, str) or not _SOURCE.match(window.source):
        raise _invalid(
            "source",
            f"source {window.source!r} must be device:<id>, endpoint:<name> or batch:<name> "
            "(letters, digits and . _ - : / @ + =, at most 200 after the prefix)",
        )
    start = _int("window_start", window.window_start, 0)
    end = _int("window_end", window.window_end, 0)
    if end < start:
        raise _invalid("window_end", "window_end is before window_start")
    if end - start > _MAX_SPAN_MS:
        raise _invalid("window_end", "a monitoring window spans at most 31 days")
    tags = window.tags if window.tags is not None else {}
    if not isinstance(tags, Mapping) or len(tags) > _MAX_TAGS:
        raise _invalid("tags", f"tags must be an object of at most {_MAX_TAGS} name -> value")
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key):
            raise _invalid("tags", f"tag name {key!r} must be 1-128 letters, digits or . _ - :")
        if not isinstance(value, str) or len(value) > 256:
            raise _invalid("tags", f"tag {key!r} must be a string of at most 256 characters")
    if not isinstance(window.sketch, Mapping):
        raise _invalid(
            "sketch",
            "sketch must be a window_sketch object (WindowSketch.to_dict()) or "
            '{"packed": base64 of WindowSketch.to_bytes()}',
        )
    try:
        sketch = WindowSketch.from_wire(window.sketch, max_bytes=MAX_SKETCH_BYTES)
        layout = layout_of(sketch)
    except ValidationFailed as exc:
        raise _invalid("sketch", f"sketch: {exc.message}") from exc
    data = pack_window(sketch)
    if len(data) > MAX_WINDOW_BYTES:
        raise _invalid(
            "sketch", f"the sketch packs to {len(data)} bytes, over the {MAX_WINDOW_BYTES} allowed"
        )
    return CheckedWindow(window, sketch, layout, data, {str(k): str(v) for k, v in tags.items()})


def _version_layout(s: Session, ws: Workspace, model: str, version: int, first: Layout) -> Layout:
    """The layout of ``model``/``version``'s windows, fixing it on the first window."""
    store = MonitoringStore(s)
    row = store.layout(model, version)
    if row is None:
        exists, digest = store.version_file(model, version, REFERENCE_PATH)
        if not exists:
            raise NotFound(
                f"models:/{model}/{version} does not exist: register the model version first",
                details={"model": model, "version": version},
            )
        layout = first
        if digest is not None:
            reference = Reference.from_json(ws.artifacts.get_bytes(digest))
            layout = layout_of(reference.new_window())
        row = store.add_layout(
            MonitoringLayout(
                model=model,
                model_version=version,
                digest=layout.digest,
                layout=layout.to_dict(),
                created_at=now_ms(),
            )
        )
    return Layout.from_dict(row.layout)


def store_window(s: Session, ws: Workspace, checked: CheckedWindow, *, now: int) -> bool:
    """Store a checked window inside the caller's write transaction; False if that source
    sent that window before. :class:`ValidationFailed` if its bins are not the version's."""
    w = checked.window
    layout = _version_layout(s, ws, w.model, w.model_version, checked.layout)
    if layout.digest != checked.layout.digest:
        raise _invalid(
            "sketch",
            f"the sketch is not binned like the other windows of models:/{w.model}/"
            f"{w.model_version} ({layout.describe_difference(checked.layout)}): make windows "
            f"with Reference.new_window() from the version's {REFERENCE_PATH}",
        )
    row = MonitoringWindow(
        model=w.model,
        model_version=w.model_version,
        source=w.source,
        window_start=w.window_start,
        window_end=w.window_end,
        samples=checked.sketch.count,
        tags=checked.tags,
        data=checked.data,
        received_at=now,
    )
    return MonitoringStore(s).add_window(row)


def ingest_window(ws: Workspace, window: SketchWindowIn, *, now: int | None = None) -> bool:
    """Store one window of sketches; False if it was stored before (idempotent on source,
    model, version and window start). :class:`ValidationFailed` (422) for a malformed window
    or one binned unlike the version's reference, :class:`NotFound` for an unknown version.
    """
    checked = check_window(window)
    with ws.db.write() as s:
        return store_window(s, ws, checked, now=now if now is not None else now_ms())


def tags_match(tags: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    """Whether a window's ``tags`` hold every ``wanted`` tag; ``group=<name>`` matches the
    members of that device group (their windows carry ``group.<name>``)."""
    for key, value in wanted.items():
        if key == "group":
            if f"group.{value}" not in tags:
                return False
        elif tags.get(key) != value:
            return False
    return True


def merged_windows(
    ws: Workspace,
    model: str,
    version: int,
    *,
    start_ms: int,
    end_ms: int,
    window_ms: int,
    sources: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[MergedWindow]:
    """The windows of ``model``/``version`` that start in ``[start_ms, end_ms)``, merged per
    bucket of ``window_ms`` aligned on the epoch (a window belongs to the bucket holding its
    start), oldest first; only buckets with windows. ``sources`` keeps exact sources or
    prefixes ending in ``*`` (``["device:*"]``); ``tags`` keeps windows holding every tag
    (``{"site": "plant-3"}``, ``{"group": "canary"}``)."""
    _int("model_version", version, 1)
    _int("window_ms", window_ms, 1)
    _int("start_ms", start_ms, 0)
    _int("end_ms", end_ms, 0)
    if end_ms <= start_ms:
        raise _invalid("end_ms", "end_ms must be after start_ms")
    if (end_ms - start_ms) // window_ms > _MAX_BUCKETS:
        raise _invalid(
            "window_ms", f"the range holds more than {_MAX_BUCKETS} windows: use a longer window"
        )
    if sources is not None and not all(isinstance(x, str) and x for x in sources):
        raise _invalid("sources", "sources must be non-empty strings")
    with ws.db.read() as s:
        store = MonitoringStore(s)
        layout_row = store.layout(model, version)
        if layout_row is None:
            return []
        layout = Layout.from_dict(layout_row.layout)
        rows = store.windows(model, version, start_ms, end_ms, sources)
    wanted = dict(tags or {})
    buckets: dict[int, list[Any]] = {}
    for row in rows:
        if wanted and not tags_match(row.tags or {}, wanted):
            continue
        buckets.setdefault(row.window_start // window_ms * window_ms, []).append(row)
    out = []
    for start in sorted(buckets):
        chosen = buckets[start]
        sketch = merge_packed([r.data for r in chosen], layout)
        out.append(MergedWindow(start, start + window_ms, sketch, len({r.source for r in chosen})))
    return out
