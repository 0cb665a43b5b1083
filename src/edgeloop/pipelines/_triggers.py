"""Triggers: what starts a pipeline run, and the scheduler that starts it.

All five kinds put their reason on the pipeline's queue: ``manual``, ``schedule`` (cron),
``data_change`` (a new version of a dataset the pipeline reads), ``code_change`` (its step
code differs from the last successful run's) and ``alert`` (a monitoring alert). A pipeline has
at most one queued run; triggers that arrive while it waits coalesce into it and every reason
is kept, then recorded on the run. The scheduler holds a lease in the database, so two
schedulers (or two server replicas) never fire the same tick twice.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from edgeloop.datasets import get_version
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.pipelines._entities import PipelineRunInfo
from edgeloop.pipelines._executor import Executor
from edgeloop.pipelines._keys import code_digest
from edgeloop.pipelines._keys import digest as content_digest
from edgeloop.pipelines._runner import run_pipeline
from edgeloop.pipelines._spec import PipelineSpec
from edgeloop.store import PipelineStore, TriggerStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "TRIGGER_KINDS",
    "QueueEntry",
    "Scheduler",
    "check_code_change",
    "check_data_change",
    "check_schedule",
    "enqueue",
    "pipeline_code_digest",
    "queued",
]

TriggerKind = Literal["manual", "schedule", "data_change", "code_change", "alert"]
TRIGGER_KINDS: tuple[TriggerKind, ...] = (
    "manual",
    "schedule",
    "data_change",
    "code_change",
    "alert",
)
LEASE = "pipelines-scheduler"


class QueueEntry(BaseModel):
    pipeline: str
    reasons: dict[str, list[dict[str, Any]]]
    queued_at: int
    updated_at: int


def enqueue(
    ws: Workspace, pipeline: str, kind: str, detail: Mapping[str, Any] | None = None
) -> QueueEntry:
    """Queue a run of ``pipeline`` because of ``kind`` (coalescing with a queued one)."""
    if kind not in TRIGGER_KINDS:
        raise ValidationFailed(
            f"trigger {kind!r} is not known; use one of {', '.join(TRIGGER_KINDS)}"
        )
    if not pipeline or len(pipeline) > 256:
        raise ValidationFailed("name the pipeline to trigger (1-256 characters)")
    at = now_ms()
    reason = {"at": at, "by": ws.principal.name, **dict(detail or {})}
    with ws.db.write() as s:
        row = TriggerStore(s).enqueue(pipeline, kind, reason, at)
        return QueueEntry(
            pipeline=row.pipeline,
            reasons=row.reasons,
            queued_at=row.queued_at,
            updated_at=row.updated_at,
        )


def queued(ws: Workspace) -> list[QueueEntry]:
    with ws.db.read() as s:
        return [
            QueueEntry(
                pipeline=r.pipeline,
                reasons=r.reasons,
                queued_at=r.queued_at,
                updated_at=r.updated_at,
            )
            for r in TriggerStore(s).queued()
        ]


def pipeline_code_digest(spec: PipelineSpec) -> str:
    return content_digest({s.name: code_digest(s.run) for s in spec.steps})


def _last_success(ws: Workspace, pipeline: str) -> dict[str, Any] | None:
    with ws.db.read() as s:
        run = PipelineStore(s).last_succeeded(pipeline)
        return None if run is None else dict(run.lineage)


def check_code_change(ws: Workspace, spec: PipelineSpec) -> QueueEntry | None:
    """Queue a run if the step code differs from the last successful run's."""
    lineage = _last_success(ws, spec.name)
    digest = pipeline_code_digest(spec)
    if lineage is not None and lineage.get("code_digest") == digest:
        return None
    previous = None if lineage is None else lineage.get("code_digest")
    return enqueue(ws, spec.name, "code_change", {"code_digest": digest, "previous": previous})


def check_data_change(ws: Workspace, spec: PipelineSpec) -> QueueEntry | None:
    """Queue a run if a dataset the pipeline reads has a version its last success did not."""
    lineage = _last_success(ws, spec.name)
    if lineage is None:
        return None  # never succeeded: the first run is someone's decision
    seen = lineage.get("datasets", {})
    changed = []
    for ref in spec.datasets():
        try:
            version = get_version(ws, ref)
        except NotFound:
            continue
        if version.status == "ready" and seen.get(version.uri) != version.digest:
            changed.append(version.uri)
    if not changed:
        return None
    return enqueue(ws, spec.name, "data_change", {"datasets": changed})


def check_schedule(
    ws: Workspace, spec: PipelineSpec, now: datetime | None = None
) -> QueueEntry | None:
    """Queue a run if a cron tick passed since the last one that fired (missed ticks: once)."""
    if spec.triggers.schedule is None:
        return None
    from croniter import croniter

    moment = now or datetime.now(UTC)
    tick = croniter(spec.triggers.schedule, moment).get_prev(datetime)
    tick_ms = int(tick.timestamp() * 1000)
    with ws.db.write() as s:
        store = TriggerStore(s)
        last = store.state(spec.name, "schedule")
        if last is None:
            store.set_state(spec.name, "schedule", str(tick_ms))  # start from now
            return None
        if int(last) >= tick_ms:
            return None
        store.set_state(spec.name, "schedule", str(tick_ms))
    return enqueue(ws, spec.name, "schedule", {"cron": spec.triggers.schedule, "tick": tick_ms})


class Scheduler:
    """Fires triggers and runs queued pipelines. Safe to run in several processes: only the
    lease holder acts."""

    def __init__(
        self,
        ws: Workspace,
        specs: Mapping[str, PipelineSpec],
        *,
        holder: str | None = None,
        lease_ms: int = 60_000,
        executor: Executor | None = None,
        on_run: Callable[[PipelineRunInfo], None] | None = None,
    ) -> None:
        self.ws, self.specs = ws, dict(specs)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms, self.executor, self.on_run = lease_ms, executor, on_run

    def holds_lease(self) -> bool:
        with self.ws.db.write() as s:
            return TriggerStore(s).acquire_lease(LEASE, self.holder, now_ms(), self.lease_ms)

    def tick(self, now: datetime | None = None) -> list[PipelineRunInfo]:
        """One pass: fire due triggers, then run what is queued. Returns the runs it made."""
        if not self.holds_lease():
            return []
        for spec in self.specs.values():
            check_schedule(self.ws, spec, now)
            if spec.triggers.data_change:
                check_data_change(self.ws, spec)
            if spec.triggers.code_change:
                check_code_change(self.ws, spec)
        runs = []
        for entry in queued(self.ws):
            if entry.pipeline not in self.specs:
                continue  # queued for a pipeline this scheduler does not know: leave it
            with self.ws.db.write() as s:
                taken = TriggerStore(s).pop(entry.pipeline)
            if taken is None:
                continue
            info = run_pipeline(
                self.ws, self.specs[entry.pipeline], reasons=taken.reasons, executor=self.executor
            )
            runs.append(info)
            if self.on_run is not None:
                self.on_run(info)
        return runs

    def run_forever(self, stop: threading.Event, interval: float = 30.0) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(interval)

    def release(self) -> None:
        with self.ws.db.write() as s:
            TriggerStore(s).release_lease(LEASE, self.holder)
