"""One pass of the monitoring loop, and the loop ``edgeloop server`` runs.

:func:`tick` runs every monitor (each evaluates only its closed windows not yet reported),
judges the alert rules, and runs the actions of new alerts. It is idempotent and safe in
several processes at once: a monitor's run locks its row, a rule's judgement locks the rule,
an action is claimed by one worker. :class:`MonitorLoop` runs it every few seconds inside
``edgeloop server`` while it holds a lease in the database, so with several replicas one of
them does the work; ``edgeloop monitors tick`` runs it once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from edgeloop.errors import EdgeloopError
from edgeloop.monitors._actions import run_pending_actions
from edgeloop.monitors._alert_entities import TickReport
from edgeloop.monitors._alerts import evaluate_rules
from edgeloop.monitors._monitors import list_monitors
from edgeloop.monitors._run import run_monitor
from edgeloop.monitors._webhook import Transport
from edgeloop.store import TriggerStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["LEASE", "MonitorLoop", "tick"]

LEASE = "monitors-tick"
log = logging.getLogger("edgeloop.alerts")


def tick(
    ws: Workspace,
    *,
    now: int | None = None,
    transport: Transport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TickReport:
    """Run due monitors, judge the rules, run the new alerts' actions (``transport`` sends
    webhooks; default httpx)."""
    started = time.perf_counter()
    at = now if now is not None else now_ms()
    report = TickReport(at=at)
    for monitor in list_monitors(ws):
        try:
            report.reports[monitor.name] = len(run_monitor(ws, monitor.name, now=at))
        except EdgeloopError as exc:  # e.g. deleted meanwhile: the others go on
            report.monitor_errors[monitor.name] = exc.message
    report.evaluation = evaluate_rules(ws, now=at)
    report.actions = run_pending_actions(ws, now=at, transport=transport, sleep=sleep)
    report.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return report


class MonitorLoop:
    """Runs :func:`tick` every ``interval`` seconds while it holds the lease."""

    def __init__(
        self,
        ws: Workspace,
        *,
        holder: str | None = None,
        lease_ms: int = 120_000,
        transport: Transport | None = None,
    ) -> None:
        self.ws = ws
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = lease_ms
        self.transport = transport

    def holds_lease(self) -> bool:
        with self.ws.db.write() as s:
            return TriggerStore(s).acquire_lease(LEASE, self.holder, now_ms(), self.lease_ms)

    def tick(self, now: int | None = None) -> TickReport | None:
        """One pass if this process holds the lease (None otherwise)."""
        if not self.holds_lease():
            return None
        return tick(self.ws, now=now, transport=self.transport)

    def run_forever(self, stop: threading.Event, interval: float = 60.0) -> None:
        while not stop.is_set():
            try:
                report = self.tick()
                if report is not None:
                    for alert_id in report.evaluation.opened:
                        log.info("alert %s opened", alert_id)
                    for action in report.actions:
                        log.info("alert %s: %s %s", action.alert, action.kind, action.status)
            except Exception:  # a failed pass is retried at the next one
                log.exception("monitoring pass failed")
            stop.wait(interval)

    def release(self) -> None:
        with self.ws.db.write() as s:
            TriggerStore(s).release_lease(LEASE, self.holder)
