"""Buffered metric logging: ``log_metric`` appends to memory; a background thread flushes.

Points are flushed in batches when the buffer reaches ``batch_size``, every
``interval`` seconds, at run end and at interpreter exit. A failed flush keeps its points
(in order) and retries with backoff; nothing is dropped. :meth:`flush` raises if points
could still not be stored, so the caller learns about it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from edgeloop.errors import EdgeloopError
from edgeloop.tracking import MetricPoint

__all__ = ["MetricBuffer"]

Sink = Callable[[str, Sequence[MetricPoint]], object]
Point = tuple[str, float, int, int]  # key, value, step, timestamp


class MetricBuffer:
    def __init__(
        self, sink: Sink, *, batch_size: int = 5000, interval: float = 1.0, max_retries: int = 5
    ) -> None:
        self._sink = sink
        self.batch_size = batch_size
        self.interval = interval
        self.max_retries = max_retries
        self._pending: list[tuple[str, Point]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self._rejected: list[str] = []

    def add(self, run_id: str, point: Point) -> None:
        """Buffer one validated point: ``(key, value, step, timestamp)``."""
        with self._lock:
            self._pending.append((run_id, point))
            crossed = len(self._pending) == self.batch_size
        if self._thread is None:
            self._start()
        if crossed:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="edgeloop-metrics", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.interval if failures == 0 else min(30.0, 0.5 * 2**failures))
            self._wake.clear()
            try:
                self._flush_once()
                failures = 0
            except Exception as exc:  # kept for flush(); the points stay buffered
                self.last_error = exc
                failures += 1

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            by_run: dict[str, list[MetricPoint]] = defaultdict(list)
            for run_id, (key, value, step, ts) in batch:
                by_run[run_id].append(
                    MetricPoint.model_construct(key=key, value=value, step=step, timestamp=ts)
                )
            done: set[str] = set()
            try:
                for run_id, points in by_run.items():
                    try:
                        self._sink(run_id, points)
                    except EdgeloopError as exc:
                        if exc.http_status >= 500:
                            raise
                        # Refused for good (e.g. the run was deleted): report, don't retry.
                        self._rejected.append(f"{len(points)} point(s) of run {run_id}: {exc}")
                    done.add(run_id)
            except BaseException:
                unsent = [(r, p) for r, p in batch if r not in done]
                with self._lock:
                    self._pending[:0] = unsent
                raise

    def flush(self) -> None:
        """Store every buffered point now; raises if they still cannot be stored."""
        for attempt in range(self.max_retries + 1):
            try:
                self._flush_once()
                break
            except EdgeloopError as exc:
                self.last_error = exc
                if attempt == self.max_retries:
                    raise EdgeloopError(
                        f"{self.pending()} metric point(s) could not be stored yet "
                        f"(they stay buffered): {exc.message}"
                    ) from exc
                time.sleep(min(5.0, 0.2 * 2**attempt))
        if self._rejected:
            rejected, self._rejected = self._rejected, []
            raise EdgeloopError("the server refused metric points: " + "; ".join(rejected))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
