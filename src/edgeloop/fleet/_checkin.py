"""A device's check-in: heartbeat, inventory, update report and assignment poll in one call.

The report moves the device's update forward (``assigned → downloading → downloaded →
installing → verifying → healthy``, or ``failed`` and then ``rolled-back`` when the device
switched back). Reports that arrive late or out of order never move a state backwards. A
device that was sent back (``rollback``) reaches ``rolled-back`` when it reports its previous
release healthy.

The assignment is the newest unfinished update of the device: a rollback, or a forward
update of a rollout that is running, waiting for approval of its next wave, or completed.
It is sent at every check-in until the update is finished; the agent recognises the update
it is already working on.

Most check-ins are heartbeats: no update report and the same inventory as last time. Those
open no write transaction: one read transaction compares the inventory and finds the
assignment (one query on the ``(device_id, state)`` index), and ``last_seen`` goes to a
:class:`LastSeenWriter` when the caller has one (the server does) — a per-process
write-behind that moves ``last_seen`` forward, never back, in one transaction a second, so
several stateless server replicas may write in any order. Without one, a heartbeat writes
``last_seen`` at once.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.fleet._collection import collection_for
from edgeloop.fleet._collection_entities import CollectionRequest
from edgeloop.fleet._devices import JITTER_S, POLL_INTERVAL_S
from edgeloop.fleet._entities import (
    UPDATE_STATES,
    Assignment,
    CheckinReport,
    CheckinResult,
    UpdateReport,
)
from edgeloop.fleet._machine import FINAL
from edgeloop.fleet._releases import MAX_BUNDLE_BYTES
from edgeloop.store import Database, Device, DeviceStore, DeviceUpdate, RolloutStore
from edgeloop.workspace import Workspace, now_ms

try:
    import fcntl
except ImportError:  # not POSIX: writers in other processes meet on SQLite's busy timeout
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "API_PREFIX",
    "LAST_SEEN_FLUSH_S",
    "LastSeenWriter",
    "assignment_for",
    "checkin",
    "heartbeat",
    "writers_lock_path",
]

API_PREFIX = "/api/v1"
LAST_SEEN_FLUSH_S = 1.0
"""How often a server process writes the ``last_seen`` of the devices that checked in."""
_RANK: dict[str, int] = {state: i for i, state in enumerate(UPDATE_STATES)}
_DELIVER_FORWARD = ("running", "awaiting-approval", "completed")
_log = logging.getLogger("edgeloop.fleet")
_WRITERS: weakref.WeakKeyDictionary[Database, _Writers] = weakref.WeakKeyDictionary()


def writers_lock_path(url: str) -> Path | None:
    """The file beside a SQLite database on which the check-in writers of all server
    processes queue (None for an in-memory database)."""
    path = url.split("///", 1)[-1].split("?", 1)[0] if url.startswith("sqlite") else ""
    return Path(f"{path}-writers.lock") if path and path != ":memory:" else None


class _Writers:
    """The check-in writers of one process on one SQLite database: a thread lock, then an
    exclusive ``flock`` on :func:`writers_lock_path`, which the other processes share."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self.path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.lock:
            fd = self._file()
            if fd is None or fcntl is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def _write(ws: Workspace) -> Iterator[Session]:
    """``ws.db.write()``; on SQLite the check-in writers first queue on a lock.

    SQLite has one writer at a time, and a writer that finds the lock taken polls for it,
    sleeping up to 100 ms between tries, so under a stream of check-ins some wait for
    seconds and the server's CPUs idle meanwhile. Queued on a lock, each starts as soon as
    the previous one commits: a thread lock within the process, then a file lock
    (``flock``) that the server's other worker processes share. (Other writers, such as the
    reconciler, still meet the check-ins on SQLite's busy timeout.)"""
    if ws.db.dialect != "sqlite":
        with ws.db.write() as s:
            yield s
        return
    writers = _WRITERS.get(ws.db)
    if writers is None:
        writers = _WRITERS.setdefault(ws.db, _Writers(writers_lock_path(ws.db.url)))
    with writers.held(), ws.db.write() as s:
        yield s


def _assignment(rollout: str, release: str, rollback: bool) -> Assignment:
    base = f"{API_PREFIX}/device/releases/{release}"
    return Assignment(
        rollout=rollout,
        release=release,
        rollback=rollback,
        manifest_url=f"{base}/manifest.json",
        signature_url=f"{base}/manifest.sig",
        files_url=f"{base}/files/",
        max_bundle_bytes=MAX_BUNDLE_BYTES,
    )


def _next_state(du: DeviceUpdate, report: UpdateReport) -> tuple[str, str] | None:
    """The state and reason the report moves ``du`` to, or None to leave it as it is."""
    state, reason = report.state, report.reason
    if du.rollback:
        if report.release != du.previous_release:
            return None  # about the release it is being taken off: stale
        if state == "healthy":
            state, reason = "rolled-back", f"back on {du.previous_release}"
        elif state in ("failed", "rolled-back"):
            state, reason = "failed", f"rollback to {du.previous_release} failed: {reason}"
    elif report.release != du.release_id:
        return None
    if du.state in FINAL:
        if du.state == "failed" and state == "rolled-back" and not du.rollback:
            return state, reason or du.reason
        return None
    if state not in FINAL and _RANK[state] < _RANK[du.state]:
        return None  # an older progress report arriving late
    return state, reason


def _apply(store: RolloutStore, device: Device, report: UpdateReport, now: int) -> None:
    du = store.update_for(report.rollout, device.id, for_update=True)
    if du is None:
        return
    moved = _next_state(du, report)
    if moved is None:
        return
    same_failure = du.state == "failed" and moved[0] == "rolled-back"
    du.state, du.reason = moved
    du.bytes_downloaded = max(du.bytes_downloaded, report.bytes_downloaded)
    du.bytes_saved = max(du.bytes_saved, report.bytes_saved)
    if not same_failure:  # switching back after a failure is not a new failure
        du.updated_at = now


def assignment_for(store: RolloutStore, device_id: str) -> Assignment | None:
    """The device's assignment: its newest unfinished update that is a rollback, or a
    forward update of a rollout that delivers (running, awaiting approval, completed)."""
    for du in store.open_updates(device_id):
        if du.rollback and du.previous_release:
            return _assignment(du.rollout_id, du.previous_release, True)
        if not du.rollback and du.rollout_state in _DELIVER_FORWARD:
            return _assignment(du.rollout_id, du.release_id, False)
    return None


Inventory = tuple[dict[str, Any], str | None, str | None]
"""Slots, active slot and the release in the active slot, as a check-in reports them."""


def _reported(report: CheckinReport) -> Inventory:
    slots: dict[str, Any] = {
        name: None if slot is None else slot.model_dump() for name, slot in report.slots.items()
    }
    active = slots.get(report.active) if report.active else None
    current = active.get("release") if isinstance(active, dict) else None
    return slots, report.active, current


def _inventory(device: Device, reported: Inventory, firmware: str | None) -> None:
    device.slots, device.active_slot, device.current_release = reported
    if firmware is not None:
        device.firmware = firmware


def _result(
    assignment: Assignment | None, collection: CollectionRequest | None = None
) -> CheckinResult:
    return CheckinResult(
        poll_interval_s=POLL_INTERVAL_S,
        jitter_s=JITTER_S,
        assignment=assignment,
        collection=collection,
    )


def heartbeat(
    ws: Workspace,
    device_id: str,
    report: CheckinReport,
    *,
    now: int | None = None,
    seen: LastSeenWriter | None = None,
) -> CheckinResult | None:
    """The answer to a check-in that has nothing to record but ``last_seen`` (no ``update``,
    the inventory as stored), from one read transaction; None for any other check-in (then
    call :func:`checkin`). ``last_seen`` goes to ``seen`` when given, else is written at
    once."""
    if report.update is not None:
        return None
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        stored = DeviceStore(s).checkin_state(device_id)
        if (stored.slots, stored.active_slot, stored.current_release) != _reported(report) or (
            report.firmware is not None and report.firmware != stored.firmware
        ):
            return None
        assignment = assignment_for(RolloutStore(s), device_id)
        # only devices that opted in are ever asked for samples
        collection = collection_for(s, device_id, at) if stored.data_collection else None
    if seen is not None:
        seen.mark(device_id, at)
    else:
        with _write(ws) as s:
            DeviceStore(s).touch({device_id: at})
    return _result(assignment, collection)


def checkin(
    ws: Workspace,
    device_id: str,
    report: CheckinReport,
    *,
    now: int | None = None,
    seen: LastSeenWriter | None = None,
) -> CheckinResult:
    """Record a device's check-in and answer with its assignment (if any).

    A heartbeat (no ``update``, the inventory unchanged) is answered from one read
    transaction (:func:`heartbeat`); its ``last_seen`` goes to ``seen`` when given, else is
    written at once. Anything else is one write transaction."""
    at = now if now is not None else now_ms()
    answer = heartbeat(ws, device_id, report, now=at, seen=seen)
    if answer is not None:
        return answer
    reported = _reported(report)
    with _write(ws) as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        device.last_seen = max(device.last_seen or 0, at)
        _inventory(device, reported, report.firmware)
        store = RolloutStore(s)
        if report.update is not None:
            health = dict(device.health or {})
            health["update"] = {
                "rollout": report.update.rollout,
                "release": report.update.release,
                "state": report.update.state,
                "reason": report.update.reason,
                "at": at,
            }
            device.health = health
            _apply(store, device, report.update, at)
        s.flush()  # the assignment query reads through the connection
        assignment = assignment_for(store, device_id)
        collection = collection_for(s, device_id, at) if device.data_collection else None
    return _result(assignment, collection)


class LastSeenWriter:
    """Write-behind of devices' ``last_seen`` for one server process.

    :meth:`mark` keeps the newest time per device in memory; :meth:`flush` writes them all
    in one transaction, moving ``last_seen`` forward only, so replicas that flush in any
    order agree (state lives in the database: nothing else is kept here). :meth:`start`
    flushes every ``every_s`` seconds on a daemon thread and :meth:`close` flushes what is
    left; a failed flush keeps its times for the next one. ``last_seen`` is thus at most
    about ``every_s`` late, well inside any offline timeout."""

    def __init__(self, ws: Workspace, every_s: float = LAST_SEEN_FLUSH_S) -> None:
        self.ws, self.every_s = ws, every_s
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def mark(self, device_id: str, at: int) -> None:
        """The device was seen at ``at`` (epoch ms)."""
        with self._lock:
            if at > self._pending.get(device_id, 0):
                self._pending[device_id] = at

    def flush(self) -> int:
        """Write the pending times now; the number of devices written."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with _write(self.ws) as s:
                DeviceStore(s).touch(batch)
        except BaseException:
            for device_id, at in batch.items():  # keep them for the next flush
                self.mark(device_id, at)
            raise
        return len(batch)

    def start(self) -> LastSeenWriter:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="edgeloop-last-seen", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.flush()
            except Exception:  # the database may be briefly unavailable: try again later
                _log.warning("could not write devices' last_seen; retrying", exc_info=True)

    def close(self) -> None:
        """Stop the thread and write what is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
