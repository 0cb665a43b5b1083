"""Helpers for the alert tests: monitor reports with chosen figures, and a webhook receiver
that checks signatures (a transport: no sockets)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeloop.monitors import verify_signature
from edgeloop.monitors._entities import METRIC_KEYS
from edgeloop.store import MonitorReport, MonitorStore
from edgeloop.workspace import Workspace
from tests.monitors._monitors import HOUR, T0

SECRET = "hook-secret"


def add_report(
    ws: Workspace,
    monitor: str,
    window: int,
    *,
    version: int | None = 1,
    status: str = "ok",
    features: dict[str, dict[str, Any]] | None = None,
    **metrics: float | None,
) -> int:
    """A report of ``monitor`` for window number ``window`` (from T0) with these figures."""
    start = T0 + window * HOUR
    with ws.db.write() as s:
        store = MonitorStore(s)
        row = MonitorReport(
            monitor_id=store.get(monitor).id,
            model="pump",
            model_version=version,
            window_start=start,
            window_end=start + HOUR,
            status=status,
            reason="",
            samples=500,
            sources=3,
            metrics={**dict.fromkeys(METRIC_KEYS), **metrics},
            features=features or {},
            details={},
            created_at=start + HOUR,
        )
        store.add_reports([row])
        return row.id


def at(window: int, minutes: int = 1) -> int:
    """A moment just after window number ``window`` closed."""
    return T0 + (window + 1) * HOUR + minutes * 60_000


@dataclass
class Receiver:
    """A webhook endpoint: answers ``statuses`` in turn (then 200), or raises ``OSError``
    for a status of 0; records every request and whether its signature verified."""

    statuses: list[int] = field(default_factory=list)
    secret: str = SECRET
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        ok = verify_signature(
            self.secret,
            body,
            headers["X-Edgeloop-Timestamp"],
            headers["X-Edgeloop-Signature"],
            now=int(headers["X-Edgeloop-Timestamp"]),
        )
        self.requests.append(
            {"url": url, "body": json.loads(body), "headers": dict(headers), "verified": ok}
        )
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 0:
            raise OSError("connection refused")
        return status
