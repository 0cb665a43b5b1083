"""The reconciler: idempotent passes, several reconcilers at once (SQLite and PostgreSQL),
the lease of the in-server loop, and property tests of the rollout state machine."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from edgeloop.errors import Conflict
from edgeloop.fleet import _groups, _releases, _rollouts
from edgeloop.fleet._entities import ReconcileReport, ReleaseInfo
from edgeloop.fleet._machine import wave_size
from edgeloop.fleet._reconciler import Reconciler, reconcile_once
from edgeloop.store import DeviceUpdate, Rollout, RolloutEvent
from edgeloop.workspace import Workspace
from tests.fleet._fleet import T0, FakeDevice, enrolled, register_version
from tests.fleet.test_rollouts import MIN, Fleet, make_fleet


def _snapshot(ws: Workspace) -> list[Any]:
    with ws.db.read() as s:
        rollouts = [
            (r.id, r.state, r.current_wave, r.wave_started_at, r.updated_at)
            for r in s.scalars(select(Rollout))
        ]
        updates = [
            (u.device_id, u.state, u.wave, u.offline, u.rollback, u.updated_at)
            for u in s.scalars(select(DeviceUpdate).order_by(DeviceUpdate.id))
        ]
        events = list(s.scalars(select(RolloutEvent.id)))
    return [rollouts, updates, events]


def test_a_pass_with_nothing_new_changes_nothing(workspace: Workspace) -> None:
    fleet = make_fleet(workspace, n=6)
    _rollouts.create_rollout(workspace, fleet.new.id, "plant", waves="50,100", bake="1m", now=T0)
    fleet.drive(T0 + 1)
    reconcile_once(workspace, now=T0 + 2)
    before = _snapshot(workspace)
    for _ in range(3):
        assert reconcile_once(workspace, now=T0 + 2).transitions == []
    assert _snapshot(workspace) == before
    assert [e.to_state for e in reconcile_once(workspace, now=T0 + MIN + 2).transitions] == [
        "running"
    ]


def test_reconcilers_running_at_once_never_advance_a_wave_twice(
    make_workspace: Callable[..., Workspace], db_url: str
) -> None:
    ws = make_workspace(db_url=db_url)
    fleet = make_fleet(ws, n=10)
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="10,50,100", bake="1m", now=T0)
    workers = [Workspace.open(ws.settings) for _ in range(4)]  # an engine each, like replicas
    try:
        for round_ in range(1, 4):
            fleet.drive(T0 + round_ * MIN)
            at = T0 + (round_ + 1) * MIN + 1
            barrier = threading.Barrier(len(workers))
            reports: list[ReconcileReport] = []
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_reconcile_thrice, args=(w, at, barrier, reports, errors))
                for w in workers
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            moved = [e for r in reports for e in r.transitions]
            assert len(moved) == 1, moved
        events = _rollouts.list_rollout_events(ws, ro.id)
        assert [(e.to_state, e.wave) for e in events] == [
            ("draft", None),
            ("running", 0),
            ("running", 1),
            ("running", 2),
            ("completed", 2),
        ]
        updates = _rollouts.list_rollout_devices(ws, ro.id)
        assert len(updates) == len({u.device for u in updates}) == 10
    finally:
        for worker in workers:
            worker.close()


def _reconcile_thrice(
    ws: Workspace,
    at: int,
    barrier: threading.Barrier,
    reports: list[ReconcileReport],
    errors: list[BaseException],
) -> None:
    try:
        barrier.wait()
        for _ in range(3):
            reports.append(reconcile_once(ws, now=at))
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def _drive(
    fleet: Fleet, ws: Workspace, at: int, barrier: threading.Barrier, errors: list[BaseException]
) -> None:
    try:
        barrier.wait()
        fleet.drive(at, ws=ws)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_reconcilers_and_devices_at_once_deadlock_nothing_and_skip_nothing(
    make_workspace: Callable[..., Workspace], db_url: str
) -> None:
    ws = make_workspace(db_url=db_url)
    fleet = make_fleet(ws, n=12)
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="10,50,100", bake="1m", now=T0)
    workers = [Workspace.open(ws.settings) for _ in range(4)]
    try:
        for round_ in range(1, 9):
            at = T0 + round_ * 61_000
            barrier = threading.Barrier(len(workers))
            reports: list[ReconcileReport] = []
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_reconcile_thrice, args=(w, at, barrier, reports, errors))
                for w in workers[:3]
            ]
            threads.append(
                threading.Thread(target=_drive, args=(fleet, workers[3], at, barrier, errors))
            )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert len([e for r in reports for e in r.transitions]) <= 1
        events = _rollouts.list_rollout_events(ws, ro.id)
        assert [(e.to_state, e.wave) for e in events] == [
            ("draft", None),
            ("running", 0),
            ("running", 1),
            ("running", 2),
            ("completed", 2),
        ]
        assert _rollouts.get_rollout(ws, ro.id).counts == {"healthy": 12}
    finally:
        for worker in workers:
            worker.close()


def test_only_the_lease_holder_runs_the_loop(workspace: Workspace) -> None:
    one, two = Reconciler(workspace, holder="one"), Reconciler(workspace, holder="two")
    assert one.tick() is not None
    assert two.tick() is None
    one.release()
    assert two.tick() is not None
    stop = threading.Event()
    stop.set()
    two.run_forever(stop, interval=0.01)  # returns at once when stopped


# ---- property tests of the state machine --------------------------------------------------------

ACTIONS = ("approve", "resume", "pause", "rollback", "abort")
OUTCOMES = ("healthy", "failed", "progress", "checkin")
_tick = st.tuples(st.just("tick"), st.sampled_from((0, 20_000, 61_000, 61_000, 6 * MIN)))
_reconcile = st.tuples(st.just("reconcile"), st.just(0))
# every device that is not silent checks in: mostly healthy, now and then one fails
_fleet = st.tuples(st.just("fleet"), st.sampled_from((-1, -1, -1, -1, -1, 0, 1)))
operation = st.one_of(
    _tick,
    _reconcile,
    _fleet,
    # the fleet checks in, a bake time passes, the reconciler runs: what moves a wave
    st.tuples(st.just("bake"), st.just(-1)),
    st.tuples(st.just("bake"), st.just(-1)),
    st.tuples(st.sampled_from(OUTCOMES), st.integers(0, 7)),
    st.tuples(st.just("silent"), st.integers(0, 7)),
    # steering by hand; the ends (rollback, abort) rarer than the rest
    st.tuples(st.sampled_from((*ACTIONS[:3], *ACTIONS[:3], *ACTIONS)), st.just(0)),
)


class _World:
    """One shared workspace with two releases; each example gets fresh devices."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.old: ReleaseInfo = _releases.create_release(
            ws, "pump", register_version(ws, seed=1), "rpi4"
        )
        self.new: ReleaseInfo = _releases.create_release(
            ws, "pump", register_version(ws, seed=2), "rpi4"
        )
        self.examples = 0


def _check_invariants(
    world: _World, rollout_id: str, devices: list[FakeDevice], *, sized: bool
) -> None:
    ws = world.ws
    events = _rollouts.list_rollout_events(ws, rollout_id)
    waves = [e.wave for e in events if e.wave is not None]
    # no wave skipped: waves only grow, one at a time, from the first
    assert waves == sorted(waves)
    assert all(b - a <= 1 for a, b in itertools.pairwise(waves))
    assert not waves or waves[0] == 0
    # each wave is entered once
    entered = [b for a, b in zip([None, *waves], waves, strict=False) if a != b]
    assert entered == sorted(set(entered))
    info = _rollouts.get_rollout(ws, rollout_id, now=T0)
    updates = _rollouts.list_rollout_devices(ws, rollout_id)
    ids = [u.device for u in updates]
    assert len(ids) == len(set(ids))  # never assigned twice
    assert all(u.wave <= info.current_wave for u in updates)
    if sized:  # (later, devices offline past the timeout are replaced in their wave)
        assert len(updates) <= wave_size(info.waves[info.current_wave], len(devices))
    # the previous release is never lost
    assert all(u.previous_release == world.old.id for u in updates)
    if info.state == "rolled-back":
        for u in updates:
            assert u.rollback
            device = next(d for d in devices if d.id == u.device)
            if u.state == "rolled-back":
                assert device.release == world.old.id
            elif u.state == "failed":  # the device could not reinstall it: recorded as such
                assert u.reason.startswith(f"rollback to {world.old.id} failed")
            else:
                answer = device.checkin(ws, now=T0).assignment
                assert answer is not None and answer.release == world.old.id and answer.rollback
    terminal = [e.to_state for e in events if e.to_state in ("completed", "cancelled")]
    if terminal:
        after = events[[e.to_state for e in events].index(terminal[0]) + 1 :]
        assert all(e.to_state == "rolled-back" for e in after)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(operation, max_size=40),
    approve=st.booleans(),
    on_failure=st.sampled_from(("rollback", "pause")),
    size=st.integers(2, 8),
)
def test_no_order_of_events_skips_a_wave_assigns_twice_or_loses_the_previous_release(
    make_workspace: Callable[..., Workspace],
    ops: list[tuple[str, int]],
    approve: bool,
    on_failure: str,
    size: int,
) -> None:
    world = _world(make_workspace)
    ws = world.ws
    world.examples += 1
    prefix = f"x{world.examples}"
    devices = [enrolled(ws, FakeDevice(f"{prefix}-{i}", tags={"run": prefix})) for i in range(size)]
    for device in devices:
        device.release = world.old.id
        device.checkin(ws, now=T0)
    _groups.create_group(ws, prefix, query=f"tags.run={prefix}")
    rollout = _rollouts.create_rollout(
        ws,
        world.new.id,
        prefix,
        waves="25,50,100",
        bake="1m",
        max_failure="30%",
        min_success="60%",
        on_failure=on_failure,
        approve_each_wave=approve,
        offline_timeout="5m",
        now=T0,
    )
    now, silent = T0, set()
    for kind, arg in ops:
        if kind == "tick":
            now += arg
        elif kind == "reconcile":
            reconcile_once(ws, now=now)
        elif kind == "silent":
            silent.add(arg % size)
        elif kind in ACTIONS:
            action = getattr(_rollouts, f"{kind}_rollout")
            with contextlib.suppress(Conflict):
                action(ws, rollout.id, now=now)
        elif kind in ("fleet", "bake"):
            for i in range(size):
                if i not in silent:
                    _act(ws, devices[i], "failed" if i == arg else "healthy", now)
            if kind == "bake":
                now += 61_000
                reconcile_once(ws, now=now)
        elif arg % size not in silent:
            _act(ws, devices[arg % size], kind, now)
        _check_invariants(world, rollout.id, devices, sized=now - T0 < 5 * MIN)


def _act(ws: Workspace, device: FakeDevice, kind: str, now: int) -> None:
    answer = device.checkin(ws, now=now).assignment
    if answer is not None and kind != "checkin":
        state = "downloading" if kind == "progress" else kind
        device.report(ws, answer.rollout, answer.release, state, now=now)


_WORLDS: dict[int, _World] = {}


def _world(make_workspace: Callable[..., Workspace]) -> _World:
    """One world per test invocation (hypothesis calls the test body many times)."""
    key = id(make_workspace)
    if key not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[key] = _World(make_workspace())
    return _WORLDS[key]


@pytest.fixture(autouse=True)
def _forget_worlds() -> Any:
    yield
    _WORLDS.clear()
