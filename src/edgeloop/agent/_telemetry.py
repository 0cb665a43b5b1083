"""Health telemetry: the current window's counts, and the bounded on-disk buffer of closed
windows waiting to be sent.

A window record is the protocol's ``POST /device/telemetry`` body. One inference is one call
of ``predict``/``scores`` (a batch counts once); ``latency_ms.counts`` has one bin more than
``edges``: ``counts[i]`` holds the calls with ``edges[i-1] < latency <= edges[i]`` (the first
from 0) and the last one those above ``edges[-1]``, so the counts add up to
``inference_count``. ``latency_p95_ms`` is interpolated within its bin (the overflow bin ends
at the largest latency seen).

The buffer (``telemetry.jsonl``) keeps at most ``capacity`` windows; when a new one would
overflow it the oldest is dropped, and the window that becomes the oldest counts it in its
``dropped_windows`` (with whatever the dropped one carried), so the count reaches the server
with the first window sent after the gap, and survives restarts.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeloop.agent._fs import atomic_write

__all__ = ["LATENCY_EDGES_MS", "TelemetryBuffer", "TelemetryWindow", "percentile"]

LATENCY_EDGES_MS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def percentile(edges: Sequence[float], counts: Sequence[int], q: float, top: float) -> float:
    """The ``q`` quantile of a histogram (``len(counts) == len(edges) + 1``), linear within
    the bin; ``top`` closes the overflow bin."""
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


class TelemetryWindow:
    """Counts of the open window; safe to update from many threads."""

    def __init__(self, start_ms: int, edges: Sequence[float] = LATENCY_EDGES_MS) -> None:
        self._lock = threading.Lock()
        self.edges = tuple(float(e) for e in edges)
        self._reset(start_ms)

    def _reset(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.inference_count = 0
        self.error_count = 0
        self.counts = [0] * (len(self.edges) + 1)
        self.max_ms = 0.0

    def record(self, latency_ms: float, *, ok: bool) -> None:
        with self._lock:
            self.inference_count += 1
            if not ok:
                self.error_count += 1
            self.counts[bisect.bisect_left(self.edges, latency_ms)] += 1
            self.max_ms = max(self.max_ms, latency_ms)

    def close(
        self, end_ms: int, *, release: str | None, model_version: int | None
    ) -> dict[str, Any]:
        """The window as a telemetry record; a new window starts at ``end_ms``."""
        with self._lock:
            record: dict[str, Any] = {
                "window_start": self.start_ms,
                "window_end": end_ms,
                "release": release,
                "model_version": model_version,
                "inference_count": self.inference_count,
                "error_count": self.error_count,
                "latency_ms": {"edges": list(self.edges), "counts": list(self.counts)},
                "latency_p95_ms": percentile(self.edges, self.counts, 0.95, self.max_ms),
                "dropped_windows": 0,
                "sketches": None,
            }
            self._reset(end_ms)
        return record


class TelemetryBuffer:
    """Closed windows, oldest first, mirrored to ``path`` (rewritten atomically)."""

    def __init__(self, path: Path, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the telemetry buffer needs room for 1 window, got {capacity}")
        self.path = path
        self.capacity = capacity
        self.dropped = 0  # dropped since this process started (for introspection)
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self._records.append(record)

    def __len__(self) -> int:
        return len(self._records)

    def _save(self) -> None:
        data = b"".join(
            (json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n").encode()
            for r in self._records
        )
        atomic_write(self.path, data)

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(dict(record))
            while len(self._records) > self.capacity:
                oldest = self._records.pop(0)
                carried = int(oldest.get("dropped_windows", 0)) + 1
                self._records[0]["dropped_windows"] = (
                    int(self._records[0].get("dropped_windows", 0)) + carried
                )
                self.dropped += 1
            self._save()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records]

    def remove_first(self, count: int) -> None:
        """Forget the ``count`` oldest windows (sent)."""
        if count <= 0:
            return
        with self._lock:
            del self._records[:count]
            self._save()


def is_due(start_ms: int, now_ms: int, interval_s: float) -> bool:
    return now_ms - start_ms >= math.floor(interval_s * 1000)
