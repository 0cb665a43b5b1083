"""The reconciler: moves running rollouts along, one locked transaction per rollout.

:func:`reconcile_once` is idempotent and safe to run in several processes at once (each
rollout's step locks its row; see :mod:`edgeloop.fleet._machine`). :class:`Reconciler` runs
it every few seconds inside ``edgeloop server``; it also holds a lease in the database so
that, with several server replicas, one of them does the work and the others stand by.
Nothing lives in memory between passes: a server restarted in the middle of a rollout
continues at the same wave.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from edgeloop.fleet._collection_close import close_due_collections
from edgeloop.fleet._entities import ReconcileReport
from edgeloop.fleet._machine import step
from edgeloop.fleet._rollouts import event_info
from edgeloop.store import RolloutStore, TriggerStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["LEASE", "Reconciler", "reconcile_once"]

LEASE = "fleet-reconciler"
log = logging.getLogger("edgeloop.fleet")


def reconcile_once(
    ws: Workspace, *, now: int | None = None, actor: str = "reconciler"
) -> ReconcileReport:
    """One pass over the rollouts that can move: refresh offline devices, top up waves,
    roll back or pause on a breached gate, advance waves whose gates passed. Every
    transition is recorded with ``actor`` and the gate evidence."""
    started = time.perf_counter()
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        ids = RolloutStore(s).ids_in_states(("running", "paused"))
    report = ReconcileReport(rollouts=len(ids))
    for rollout_id in ids:
        with ws.db.write() as s:
            events, assigned = step(s, rollout_id, actor=actor, now=at)
            report.transitions.extend(event_info(e) for e in events)
            report.assigned += assigned
    report.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return report


class Reconciler:
    """Runs :func:`reconcile_once` every ``interval`` seconds while it holds the lease."""

    def __init__(self, ws: Workspace, *, holder: str | None = None, lease_ms: int = 30_000) -> None:
        self.ws = ws
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = lease_ms

    def holds_lease(self) -> bool:
        with self.ws.db.write() as s:
            return TriggerStore(s).acquire_lease(LEASE, self.holder, now_ms(), self.lease_ms)

    def tick(self) -> ReconcileReport | None:
        """One pass if this process holds the lease (None otherwise); it also closes the
        data collections that are due (:func:`close_due_collections`)."""
        if not self.holds_lease():
            return None
        report = reconcile_once(self.ws, actor=f"reconciler:{self.holder}")
        for info in close_due_collections(self.ws, actor=f"reconciler:{self.holder}"):
            log.info("collection %s: %s (%s)", info.id, info.state, info.state_reason)
        return report

    def run_forever(self, stop: threading.Event, interval: float = 5.0) -> None:
        while not stop.is_set():
            try:
                report = self.tick()
                if report is not None:
                    for event in report.transitions:
                        log.info(
                            "rollout %s: %s -> %s (%s)",
                            event.rollout,
                            event.from_state,
                            event.to_state,
                            event.reason,
                        )
            except Exception:  # a failed pass is retried at the next one
                log.exception("reconciler pass failed")
            stop.wait(interval)

    def release(self) -> None:
        with self.ws.db.write() as s:
            TriggerStore(s).release_lease(LEASE, self.holder)
