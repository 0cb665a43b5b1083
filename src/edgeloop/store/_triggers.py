"""Store for the pipeline queue, leases and trigger state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from edgeloop.store._models import Lease, QueuedRun, TriggerState

__all__ = ["TriggerStore"]


class TriggerStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def enqueue(self, pipeline: str, kind: str, reason: dict[str, Any], at: int) -> QueuedRun:
        """Queue a run of ``pipeline``, or add ``reason`` to the one already queued."""
        row = self.s.scalar(
            select(QueuedRun).where(QueuedRun.pipeline == pipeline).with_for_update()
        )
        if row is None:
            try:
                with self.s.begin_nested():
                    row = QueuedRun(pipeline=pipeline, reasons={}, queued_at=at, updated_at=at)
                    self.s.add(row)
                    self.s.flush()
            except sa_exc.IntegrityError:  # queued concurrently: merge into that one
                row = self.s.scalar(
                    select(QueuedRun).where(QueuedRun.pipeline == pipeline).with_for_update()
                )
                assert row is not None
        reasons = {k: list(v) for k, v in (row.reasons or {}).items()}
        reasons.setdefault(kind, []).append(reason)
        row.reasons = reasons
        row.updated_at = at
        self.s.flush()
        return row

    def queued(self) -> list[QueuedRun]:
        return list(self.s.scalars(select(QueuedRun).order_by(QueuedRun.queued_at)))

    def pop(self, pipeline: str) -> QueuedRun | None:
        """Take the queued run of ``pipeline`` off the queue (None if another worker did)."""
        row = self.s.scalar(
            select(QueuedRun).where(QueuedRun.pipeline == pipeline).with_for_update()
        )
        if row is not None:
            self.s.execute(delete(QueuedRun).where(QueuedRun.pipeline == pipeline))
        return row

    def acquire_lease(self, name: str, holder: str, now: int, ttl_ms: int) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False if someone else holds it."""
        row = self.s.scalar(select(Lease).where(Lease.name == name).with_for_update())
        if row is None:
            try:
                with self.s.begin_nested():
                    self.s.add(Lease(name=name, holder=holder, expires_at=now + ttl_ms))
                    self.s.flush()
                return True
            except sa_exc.IntegrityError:
                return False
        if row.holder != holder and row.expires_at > now:
            return False
        row.holder, row.expires_at = holder, now + ttl_ms
        self.s.flush()
        return True

    def release_lease(self, name: str, holder: str) -> None:
        self.s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

    def state(self, pipeline: str, key: str) -> str | None:
        row = self.s.get(TriggerState, (pipeline, key))
        return None if row is None else row.value

    def set_state(self, pipeline: str, key: str, value: str) -> None:
        row = self.s.get(TriggerState, (pipeline, key))
        if row is None:
            self.s.add(TriggerState(pipeline=pipeline, key=key, value=value))
        else:
            row.value = value
        self.s.flush()
