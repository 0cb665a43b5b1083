"""What keeps a check-in cheap, on SQLite and PostgreSQL: heartbeats open no write
transaction, ``last_seen`` is written behind (forward only, flushed on close, kept when a
flush fails), verified device tokens are cached for a bounded time, and the assignment is one
query on the ``(device_id, state)`` index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from edgeloop.errors import BackendUnavailable, PermissionDenied, Unauthenticated
from edgeloop.fleet import _checkin, _devices
from edgeloop.fleet._entities import CheckinReport
from edgeloop.governance._device_tokens import DEVICE_TOKEN_CACHE_S, DeviceTokenCache
from edgeloop.store import DeviceStore, RolloutStore
from edgeloop.workspace import Workspace
from tests.fleet._fleet import T0, FakeDevice, enrolled


def _report(device: FakeDevice, **extra: Any) -> CheckinReport:
    body = {"firmware": "1.0", "slots": device.slots(), "active": "a", **extra}
    return CheckinReport.model_validate(body)


def _last_seen(ws: Workspace, device_id: str) -> int | None:
    with ws.db.read() as s:
        return DeviceStore(s).get(device_id).last_seen


@contextmanager
def _counting_writes(ws: Workspace) -> Iterator[list[int]]:
    """Counts the write transactions opened on ``ws``'s database."""
    calls: list[int] = []
    original = ws.db.write

    @contextmanager
    def write() -> Iterator[Session]:
        calls.append(1)
        with original() as s:
            yield s

    ws.db.write = write  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        del ws.db.write


def test_a_heartbeat_writes_nothing_until_the_flush(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    dev.checkin(workspace, now=T0 + 1_000)  # the first report stores the inventory
    writer = _checkin.LastSeenWriter(workspace)
    with _counting_writes(workspace) as writes:
        for i in range(1, 4):
            answer = _checkin.checkin(
                workspace, dev.id, _report(dev), now=T0 + i * 30_000, seen=writer
            )
            assert answer.assignment is None
        assert writes == []
    assert _last_seen(workspace, dev.id) == T0 + 1_000
    assert len(writer) == 1
    assert writer.flush() == 1
    assert _last_seen(workspace, dev.id) == T0 + 90_000
    assert (len(writer), writer.flush()) == (0, 0)


def test_a_changed_inventory_or_an_update_report_is_written_at_once(
    workspace: Workspace,
) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    writer = _checkin.LastSeenWriter(workspace)
    dev.release = "rel_x"
    assert _checkin.heartbeat(workspace, dev.id, _report(dev), now=T0, seen=writer) is None
    with _counting_writes(workspace) as writes:
        _checkin.checkin(workspace, dev.id, _report(dev), now=T0 + 5, seen=writer)
        _checkin.checkin(workspace, dev.id, _report(dev, firmware="1.1"), now=T0 + 6, seen=writer)
        assert len(writes) == 2
    info = _devices.get_device(workspace, dev.id)
    assert (info.current_release, info.firmware, info.last_seen) == ("rel_x", "1.1", T0 + 6)
    update = {"rollout": "ro_none", "release": "rel_x", "state": "downloading"}
    assert _checkin.heartbeat(workspace, dev.id, _report(dev, update=update), seen=writer) is None


def test_last_seen_moves_forward_only_whatever_replica_flushes_last(
    workspace: Workspace, make_workspace: Callable[..., Workspace]
) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    dev.checkin(workspace, now=T0)
    other = make_workspace(db_url=workspace.settings.db_url)  # a second server process
    newer, older = _checkin.LastSeenWriter(workspace), _checkin.LastSeenWriter(other)
    _checkin.checkin(workspace, dev.id, _report(dev), now=T0 + 60_000, seen=newer)
    _checkin.checkin(other, dev.id, _report(dev), now=T0 + 30_000, seen=older)
    newer.flush()
    older.flush()
    assert _last_seen(workspace, dev.id) == T0 + 60_000
    older.mark(dev.id, T0 + 90_000)
    older.mark(dev.id, T0 + 70_000)  # an older time never replaces a newer one
    older.flush()
    assert _last_seen(workspace, dev.id) == T0 + 90_000


def test_a_failed_flush_keeps_its_times_and_close_flushes(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    writer = _checkin.LastSeenWriter(workspace, every_s=3600.0).start()
    writer.mark(dev.id, T0 + 10_000)

    @contextmanager
    def down() -> Iterator[Session]:
        raise BackendUnavailable("database is down")
        yield  # pragma: no cover

    workspace.db.write = down  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable):
        writer.flush()
    del workspace.db.write
    writer.mark(dev.id, T0 + 5_000)
    assert len(writer) == 1
    writer.close()  # stops the thread and writes what is left
    assert _last_seen(workspace, dev.id) == T0 + 10_000
    assert len(writer) == 0


def test_without_a_writer_a_heartbeat_writes_last_seen_at_once(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    dev.checkin(workspace, now=T0 + 1)
    dev.checkin(workspace, now=T0 + 2)
    assert _last_seen(workspace, dev.id) == T0 + 2


def test_a_verified_token_is_trusted_for_a_bounded_time_on_other_replicas(
    workspace: Workspace, make_workspace: Callable[..., Workspace]
) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    replica = make_workspace(db_url=workspace.settings.db_url)
    clock = [1000.0]
    _devices.token_cache(replica).clock = lambda: clock[0]
    assert _devices.authenticate_device(replica, dev.token) == dev.id  # cached
    _devices.reject_device(workspace, dev.id, "stolen")
    with pytest.raises(Unauthenticated):  # at once where it was rejected
        _devices.authenticate_device(workspace, dev.token)
    clock[0] += DEVICE_TOKEN_CACHE_S - 0.1
    assert _devices.authenticate_device(replica, dev.token) == dev.id  # within the bound
    clock[0] += 0.2
    with pytest.raises(Unauthenticated):  # past it
        _devices.authenticate_device(replica, dev.token)


def test_a_replaced_or_removed_token_stops_at_once_in_the_same_process(
    workspace: Workspace,
) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    old = dev.token
    assert _devices.authenticate_device(workspace, old) == dev.id
    now = T0 + 1_000
    grant = _devices.collect_device_token(workspace, dev.id, now, dev.sign(now), now=now)
    with pytest.raises(Unauthenticated):
        _devices.authenticate_device(workspace, old)
    assert _devices.authenticate_device(workspace, grant.device_token) == dev.id
    _devices.remove_device(workspace, dev.id)
    with pytest.raises(Unauthenticated):
        _devices.authenticate_device(workspace, grant.device_token)


def test_a_rejected_device_is_refused_when_its_token_is_not_cached(
    workspace: Workspace,
) -> None:
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    with workspace.db.write() as s:
        DeviceStore(s).get(dev.id).status = "rejected"  # keeps its token hash
    with pytest.raises(PermissionDenied, match="rejected"):
        _devices.authenticate_device(workspace, dev.token)
    assert len(_devices.token_cache(workspace)) == 0


def test_the_token_cache_expires_forgets_and_stays_bounded() -> None:
    clock = [0.0]
    cache = DeviceTokenCache(ttl_s=5.0, max_entries=2, clock=lambda: clock[0])
    cache.put("t1", "h1", "d1")
    cache.put("t2", "h2", "d2")
    assert (cache.get("t1", "h1"), cache.get("t1", "other")) == ("d1", None)
    cache.put("t1", "h1b", "d1")  # a new token of d1 replaces the old one
    assert (cache.get("t1", "h1"), cache.get("t1", "h1b")) == (None, "d1")
    cache.put("t3", "h3", "d3")  # over the bound: the oldest goes
    assert (len(cache), cache.get("t2", "h2")) == (2, None)
    cache.forget("d3")
    assert cache.get("t3", "h3") is None
    clock[0] = 5.0
    assert (cache.get("t1", "h1b"), len(cache)) == (None, 0)


def test_the_assignment_query_uses_the_device_state_index(workspace: Workspace) -> None:
    if workspace.db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(workspace.db.engine, "before_cursor_execute", capture)
    try:
        with workspace.db.read() as s:
            assert RolloutStore(s).open_updates("pump-0001") == []
    finally:
        event.remove(workspace.db.engine, "before_cursor_execute", capture)
    statement, params = next((q, p) for q, p in seen if "device_updates" in q)
    with workspace.db.read() as s:
        plan = s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_device_updates_device_state" in details, details


def test_sqlite_checkin_writers_queue_on_a_file_lock_the_processes_share(
    workspace: Workspace,
) -> None:
    import fcntl
    import os
    import threading

    if workspace.db.dialect != "sqlite":
        pytest.skip("the file lock is for SQLite's single writer")
    path = _checkin.writers_lock_path(workspace.db.url)
    assert path is not None and path.parent.is_dir()
    assert _checkin.writers_lock_path("sqlite:///:memory:") is None
    assert _checkin.writers_lock_path("postgresql+psycopg://u@h/db") is None
    dev = enrolled(workspace, FakeDevice("pump-0001"), now=T0)
    dev.checkin(workspace, now=T0 + 1_000)  # creates the lock file
    done = threading.Event()

    def write() -> None:  # an update report: a write transaction
        dev.checkin(workspace, {"rollout": "ro_x", "release": "r", "state": "healthy"}, now=T0)
        done.set()

    other = os.open(path, os.O_RDWR)  # another process's writer: its own open file
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.2)  # queued behind the other writer
        fcntl.flock(other, fcntl.LOCK_UN)
        thread.join(10)
        assert done.is_set()
    finally:
        os.close(other)
