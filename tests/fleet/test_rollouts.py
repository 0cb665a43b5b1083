"""Rollouts on SQLite and PostgreSQL: waves, gates, approval, breaches, rollback, offline
devices, manual control, and a restart in the middle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.fleet import _devices, _groups, _releases, _rollouts
from edgeloop.fleet._entities import ReleaseInfo, TelemetryReport
from edgeloop.fleet._machine import device_order
from edgeloop.fleet._reconciler import reconcile_once
from edgeloop.fleet._telemetry import record_telemetry
from edgeloop.workspace import Workspace
from tests.fleet._fleet import T0, FakeDevice, enrolled, register_version

MIN = 60_000


@dataclass
class Fleet:
    ws: Workspace
    old: ReleaseInfo
    new: ReleaseInfo
    devices: list[FakeDevice]

    def by_id(self, device_id: str) -> FakeDevice:
        return next(d for d in self.devices if d.id == device_id)

    def drive(
        self,
        now: int,
        outcome: Callable[[FakeDevice], str] = lambda _: "healthy",
        devices: list[FakeDevice] | None = None,
        ws: Workspace | None = None,
    ) -> dict[str, Any]:
        """Every device checks in; those with an assignment carry it out (``outcome``)."""
        ws = ws or self.ws
        assignments = {}
        for device in devices if devices is not None else self.devices:
            answer = device.checkin(ws, now=now).assignment
            if answer is None:
                continue
            assignments[device.id] = answer
            device.report(ws, answer.rollout, answer.release, "downloading", now=now)
            state = outcome(device)
            reason = "self-test" if state == "failed" else ""
            device.report(ws, answer.rollout, answer.release, state, now=now, reason=reason)
        return assignments


def make_fleet(ws: Workspace, n: int = 10) -> Fleet:
    old = _releases.create_release(ws, "pump", register_version(ws, seed=1), "rpi4")
    new = _releases.create_release(ws, "pump", register_version(ws, seed=2), "rpi4")
    devices = [enrolled(ws, FakeDevice(f"dev-{i:03d}")) for i in range(n)]
    for device in devices:
        device.release = old.id
        device.checkin(ws, now=T0)
    _groups.create_group(ws, "plant", query="target=rpi4 and site=plant-3")
    return Fleet(ws, old, new, devices)


def _transitions(ws: Workspace, rollout_id: str) -> list[tuple[str | None, str, int | None]]:
    return [
        (e.from_state, e.to_state, e.wave) for e in _rollouts.list_rollout_events(ws, rollout_id)
    ]


@pytest.fixture
def fleet(workspace: Workspace) -> Fleet:
    return make_fleet(workspace)


def test_waves_advance_after_their_bake_and_the_rollout_completes(fleet: Fleet) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="10,50,100", bake="1m", now=T0)
    assert (ro.state, ro.current_wave, ro.counts) == ("running", 0, {"assigned": 1})
    first = min(fleet.devices, key=lambda d: device_order(ro.id, d.id))
    assert fleet.drive(T0 + 1000).keys() == {first.id}  # the stable hash picks the wave
    assert reconcile_once(ws, now=T0 + 30_000).transitions == []  # still baking
    shown = _rollouts.get_rollout(ws, ro.id, now=T0 + 30_000)
    assert shown.gates is not None and shown.gates["waiting"] == ["baking: 30 s of 60 s"]
    step = reconcile_once(ws, now=T0 + 61_000)
    assert [(e.to_state, e.wave) for e in step.transitions] == [("running", 1)]
    assert step.transitions[0].evidence["healthy"] == 1
    assert step.transitions[0].evidence["newly_assigned"] == 4
    assert len(fleet.drive(T0 + 62_000)) == 4
    assert reconcile_once(ws, now=T0 + 2 * MIN).transitions == []  # 59 s after wave 2 began
    assert [e.to_state for e in reconcile_once(ws, now=T0 + 3 * MIN).transitions] == ["running"]
    assert len(fleet.drive(T0 + 3 * MIN + 1)) == 5
    done = reconcile_once(ws, now=T0 + 5 * MIN)
    assert [(e.to_state, e.actor) for e in done.transitions] == [("completed", "reconciler")]
    assert reconcile_once(ws, now=T0 + 6 * MIN).transitions == []
    info = _rollouts.get_rollout(ws, ro.id)
    assert info.state == "completed" and info.counts == {"healthy": 10}
    assert [(w.target, w.assigned, w.healthy) for w in info.progress] == [
        (1, 1, 1),
        (5, 5, 5),
        (10, 10, 10),
    ]
    assert _transitions(ws, ro.id) == [
        (None, "draft", None),
        ("draft", "running", 0),
        ("running", "running", 1),
        ("running", "running", 2),
        ("running", "completed", 2),
    ]
    updates = _rollouts.list_rollout_devices(ws, ro.id)
    assert sorted(u.device for u in updates) == sorted(d.id for d in fleet.devices)
    assert {u.previous_release for u in updates} == {fleet.old.id}
    assert [u.wave for u in updates] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert all(d.checkin(ws, now=T0 + 7 * MIN).assignment is None for d in fleet.devices)


def test_a_breach_rolls_every_assigned_device_back_to_its_previous_release(
    fleet: Fleet,
) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws, fleet.new.id, "plant", waves="30,100", bake="1m", max_failure="10%", now=T0
    )
    chosen = sorted(fleet.devices, key=lambda d: device_order(ro.id, d.id))[:3]
    failing, silent = chosen[0], chosen[2]  # the third never starts its update
    fleet.drive(
        T0 + 1000,
        lambda d: "failed" if d.id == failing.id else "healthy",
        devices=chosen[:2],
    )
    step = reconcile_once(ws, now=T0 + 2000)  # a breach does not wait for the bake
    assert [e.to_state for e in step.transitions] == ["rolled-back"]
    assert "share failed 33.3% > max 10.0%" in step.transitions[0].reason
    assert step.transitions[0].evidence["failed"] == 1
    back = {d.id: d.checkin(ws, now=T0 + 3000).assignment for d in fleet.devices}
    assert back[failing.id] is None  # it failed and stayed on its previous release
    for device in (chosen[1], silent):
        assignment = back[device.id]
        assert assignment is not None
        assert (assignment.release, assignment.rollback) == (fleet.old.id, True)
    assert all(back[d.id] is None for d in fleet.devices if d not in chosen)
    for device in (chosen[1], silent):
        device.report(ws, ro.id, fleet.old.id, "downloading", now=T0 + 4000)
        device.report(ws, ro.id, fleet.old.id, "healthy", now=T0 + 5000, bytes_saved=10)
    states = {u.device: (u.state, u.rollback) for u in _rollouts.list_rollout_devices(ws, ro.id)}
    assert states == {d.id: ("rolled-back", True) for d in chosen}
    assert all(d.release == fleet.old.id for d in fleet.devices)
    assert all(d.checkin(ws, now=T0 + 6000).assignment is None for d in fleet.devices)
    assert reconcile_once(ws, now=T0 + 10 * MIN).transitions == []


def test_a_wave_never_passes_while_devices_still_updating_could_breach_max_failure(
    fleet: Fleet,
) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws, fleet.new.id, "plant", waves="100", bake=0, min_success="80%", max_failure="5%",
        now=T0,
    )  # fmt: skip
    slow, rest = fleet.devices[0], fleet.devices[1:]
    fleet.drive(T0 + 1000, devices=rest)  # nine of ten healthy: over the 80 % needed
    answer = slow.checkin(ws, now=T0 + 1000).assignment
    assert answer is not None
    slow.report(ws, ro.id, fleet.new.id, "downloading", now=T0 + 1000)
    assert reconcile_once(ws, now=T0 + 2000).transitions == []  # its outcome decides the gate
    gates = _rollouts.get_rollout(ws, ro.id, now=T0 + 2000).gates
    assert gates is not None and gates["updating"] == 1 and gates["healthy"] == 9
    assert gates["waiting"] == [
        "1 device(s) still updating could push the share failed over max 5.0% (0 of 10 failed "
        "so far)"
    ]
    slow.report(ws, ro.id, fleet.new.id, "failed", reason="self-test", now=T0 + 3000)
    step = reconcile_once(ws, now=T0 + 4000)
    assert [e.to_state for e in step.transitions] == ["rolled-back"]
    assert "share failed 10.0% > max 5.0%" in step.transitions[0].reason


def test_a_wave_passes_once_the_devices_still_updating_cannot_breach(fleet: Fleet) -> None:
    ws = fleet.ws
    _rollouts.create_rollout(
        ws, fleet.new.id, "plant", waves="100", bake=0, min_success="80%", max_failure="20%",
        now=T0,
    )  # fmt: skip
    fleet.drive(T0 + 1000, devices=fleet.devices[1:])
    fleet.devices[0].checkin(ws, now=T0 + 1000)  # assigned, not started: one of ten at most
    step = reconcile_once(ws, now=T0 + 2000)
    assert [e.to_state for e in step.transitions] == ["completed"]
    assert step.transitions[0].evidence["updating"] == 1


def test_a_breach_pauses_and_resuming_accepts_the_failures_seen(workspace: Workspace) -> None:
    fleet = make_fleet(workspace, n=4)
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws,
        fleet.new.id,
        "plant",
        waves="50,100",
        bake="1m",
        max_failure="10%",
        min_success="50%",
        on_failure="pause",
        now=T0,
    )
    order = sorted(fleet.devices, key=lambda d: device_order(ro.id, d.id))
    fleet.drive(T0 + 1, lambda d: "failed", devices=order[:1])
    step = reconcile_once(ws, now=T0 + 2)
    assert [(e.from_state, e.to_state) for e in step.transitions] == [("running", "paused")]
    assert order[1].checkin(ws, now=T0 + 3).assignment is None  # paused: withheld
    assert reconcile_once(ws, now=T0 + 5 * MIN).transitions == []
    _rollouts.resume_rollout(ws, ro.id, "sensor was loose", now=T0 + 5 * MIN)
    # the failed device reports that it switched back: the same failure, not a new one
    order[0].report(ws, ro.id, fleet.new.id, "rolled-back", now=T0 + 5 * MIN + 1)
    fleet.drive(T0 + 5 * MIN + 1, devices=order[1:2])
    assert reconcile_once(ws, now=T0 + 5 * MIN + 2).transitions == []  # no breach, baking
    step = reconcile_once(ws, now=T0 + 6 * MIN + 1)
    assert [(e.to_state, e.wave) for e in step.transitions] == [("running", 1)]
    fleet.drive(T0 + 6 * MIN + 2, lambda d: "failed", devices=order[2:3])
    step = reconcile_once(ws, now=T0 + 6 * MIN + 3)  # a new failure breaches again
    assert [e.to_state for e in step.transitions] == ["paused"]
    events = _rollouts.list_rollout_events(ws, ro.id)
    resumed = next(e for e in events if e.reason == "sensor was loose")
    assert (resumed.from_state, resumed.to_state, resumed.actor.startswith("local:")) == (
        "paused",
        "running",
        True,
    )


def _telemetry(ws: Workspace, device: FakeDevice, release: str, now: int, errors: int) -> None:
    report = TelemetryReport(
        window_start=now - MIN,
        window_end=now,
        release=release,
        inference_count=100,
        error_count=errors,
        latency_p95_ms=3.0,
    )
    record_telemetry(ws, device.id, report, now=now)


def test_health_thresholds_read_the_telemetry_of_the_wave(fleet: Fleet) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws,
        fleet.new.id,
        "plant",
        waves="20,100",
        bake="1m",
        health="error_rate<0.02,latency_p95_ms<40",
        now=T0,
    )
    assigned = [fleet.by_id(i) for i in fleet.drive(T0 + 1)]
    step = reconcile_once(ws, now=T0 + 2 * MIN)
    assert step.transitions == []  # healthy and baked, but no telemetry yet
    gates = _rollouts.get_rollout(ws, ro.id, now=T0 + 2 * MIN).gates
    assert gates is not None and "no telemetry yet for error_rate<0.02" in gates["waiting"]
    _telemetry(ws, assigned[0], fleet.old.id, T0 + MIN, errors=50)  # another release
    _telemetry(ws, assigned[0], fleet.new.id, T0 + 2 * MIN, errors=1)
    _telemetry(ws, assigned[1], fleet.new.id, T0 + 2 * MIN, errors=9)
    step = reconcile_once(ws, now=T0 + 2 * MIN + 1)
    assert [e.to_state for e in step.transitions] == ["rolled-back"]
    assert "error_rate 0.05 breaks error_rate<0.02" in step.transitions[0].reason
    health = step.transitions[0].evidence["health"]
    assert health["error_rate<0.02"] == {"value": 0.05, "ok": False}
    assert health["latency_p95_ms<40"] == {"value": 3.0, "ok": True}


def test_approve_each_wave_waits_for_a_human(fleet: Fleet) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws, fleet.new.id, "plant", waves="50,100", bake="0s", approve_each_wave=True, now=T0
    )
    assert (ro.state, ro.counts) == ("awaiting-approval", {})
    assert fleet.drive(T0 + 1) == {}
    assert reconcile_once(ws, now=T0 + 2).transitions == []
    approved = _rollouts.approve_rollout(ws, ro.id, "change CHG-1", now=T0 + 3)
    assert (approved.state, approved.counts) == ("running", {"assigned": 5})
    fleet.drive(T0 + 4)
    step = reconcile_once(ws, now=T0 + 5)
    assert [(e.to_state, e.wave) for e in step.transitions] == [("awaiting-approval", 1)]
    assert fleet.drive(T0 + 6) == {}
    with pytest.raises(Conflict, match="awaiting-approval"):
        _rollouts.resume_rollout(ws, ro.id)
    _rollouts.pause_rollout(ws, ro.id, now=T0 + 7)
    assert _rollouts.resume_rollout(ws, ro.id, now=T0 + 8).state == "awaiting-approval"
    _rollouts.approve_rollout(ws, ro.id, now=T0 + 9)
    assert len(fleet.drive(T0 + 10)) == 5
    assert [e.to_state for e in reconcile_once(ws, now=T0 + 11).transitions] == ["completed"]
    with pytest.raises(Conflict, match="completed"):
        _rollouts.approve_rollout(ws, ro.id)


def test_devices_offline_past_the_timeout_leave_the_denominator(workspace: Workspace) -> None:
    fleet = make_fleet(workspace, n=4)
    ws = fleet.ws
    ro = _rollouts.create_rollout(
        ws, fleet.new.id, "plant", waves="50,100", bake="1m", offline_timeout="5m", now=T0
    )
    quiet, working, other, never = sorted(fleet.devices, key=lambda d: device_order(ro.id, d.id))
    fleet.drive(T0 + 1, devices=[working])
    later = T0 + 6 * MIN
    for device in (working, other):
        device.checkin(ws, now=later)
    step = reconcile_once(ws, now=later)
    assert [(e.to_state, e.wave) for e in step.transitions] == [("running", 1)]
    evidence = step.transitions[0].evidence
    assert (evidence["devices"], evidence["offline_dropped"], evidence["healthy"]) == (1, 1, 1)
    updates = {u.device: u for u in _rollouts.list_rollout_devices(ws, ro.id)}
    assert updates[quiet.id].offline and not updates[working.id].offline
    assert updates[other.id].wave == 1 and never.id not in updates  # offline: not chosen
    info = _rollouts.get_rollout(ws, ro.id, now=later)
    assert [(w.target, w.assigned, w.offline) for w in info.progress] == [(1, 2, 1), (2, 3, 1)]
    quiet.checkin(ws, now=later + 1)  # back: counted again, flag cleared at the next pass
    reconcile_once(ws, now=later + 2)
    assert not {u.device: u for u in _rollouts.list_rollout_devices(ws, ro.id)}[quiet.id].offline


def test_manual_controls_are_recorded_and_refused_in_the_wrong_state(fleet: Fleet) -> None:
    ws = fleet.ws
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="100", bake="1h", now=T0)
    with pytest.raises(Conflict, match="is running: cannot resume"):
        _rollouts.resume_rollout(ws, ro.id)
    with pytest.raises(Conflict, match="is running: cannot approve"):
        _rollouts.approve_rollout(ws, ro.id)
    assert _rollouts.pause_rollout(ws, ro.id, "freeze", now=T0 + 1).state == "paused"
    with pytest.raises(Conflict, match="cannot pause"):
        _rollouts.pause_rollout(ws, ro.id)
    assert _rollouts.abort_rollout(ws, ro.id, "wrong model", now=T0 + 2).state == "cancelled"
    with pytest.raises(Conflict, match="cannot abort"):
        _rollouts.abort_rollout(ws, ro.id)
    back = _rollouts.rollback_rollout(ws, ro.id, "bad release", now=T0 + 3)
    assert back.state == "rolled-back" and back.ended_at == T0 + 3
    with pytest.raises(Conflict, match="cannot roll back"):
        _rollouts.rollback_rollout(ws, ro.id)
    reasons = [(e.to_state, e.reason) for e in _rollouts.list_rollout_events(ws, ro.id)][2:]
    assert reasons == [
        ("paused", "freeze"),
        ("cancelled", "wrong model"),
        ("rolled-back", "bad release"),
    ]
    draft = _rollouts.create_rollout(ws, fleet.new.id, "plant", start=False, now=T0 + 4)
    assert (draft.state, draft.counts) == ("draft", {})
    assert _rollouts.start_rollout(ws, draft.id, now=T0 + 5).state == "running"
    with pytest.raises(NotFound):
        _rollouts.pause_rollout(ws, "ro_nope")
    assert [r.state for r in _rollouts.list_rollouts(ws).items] == ["running", "rolled-back"]
    assert [r.id for r in _rollouts.list_rollouts(ws, state="running").items] == [draft.id]


def test_a_device_is_in_one_rollout_at_a_time(fleet: Fleet) -> None:
    ws = fleet.ws
    third = _releases.create_release(ws, "pump", register_version(ws, seed=3), "rpi4")
    _groups.create_group(ws, "some", members=[d.id for d in fleet.devices[:5]])
    first = _rollouts.create_rollout(ws, fleet.new.id, "some", waves="100", bake="0s", now=T0)
    second = _rollouts.create_rollout(ws, third.id, "plant", waves="100", bake="0s", now=T0)
    assert first.counts == {"assigned": 5} and second.counts == {"assigned": 5}
    fleet.drive(T0 + 1)
    reconcile_once(ws, now=T0 + 2)  # first completes; the second takes the other five
    info = _rollouts.get_rollout(ws, second.id)
    assert info.counts == {"assigned": 5, "healthy": 5}
    fleet.drive(T0 + 3)
    reconcile_once(ws, now=T0 + 4)
    assert _rollouts.get_rollout(ws, second.id).state == "completed"
    moved = {u.device: u.previous_release for u in _rollouts.list_rollout_devices(ws, second.id)}
    assert {moved[d.id] for d in fleet.devices[:5]} == {fleet.new.id}
    assert {moved[d.id] for d in fleet.devices[5:]} == {fleet.old.id}


def test_bad_rollout_settings_name_the_field(fleet: Fleet) -> None:
    ws = fleet.ws
    bad: list[tuple[dict[str, Any], str]] = [
        ({"waves": "10,5,100"}, "increasing"),
        ({"waves": "10,50"}, "must be 100"),
        ({"waves": "a,b"}, "not numbers"),
        ({"bake": "10 parsecs"}, "not a duration"),
        ({"max_failure": "5"}, "between 0% and 100%"),
        ({"min_success": "lots"}, "not a share"),
        ({"health": "error_rate<<1"}, "METRIC OP NUMBER"),
        ({"health": "temperature<40"}, "not known"),
        ({"on_failure": "panic"}, "rollback or pause"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValidationFailed, match=message):
            _rollouts.create_rollout(ws, fleet.new.id, "plant", **kwargs)
    with pytest.raises(NotFound):
        _rollouts.create_rollout(ws, "rel_nope", "plant")
    _groups.create_group(ws, "nanos", query="target=nano33ble")
    with pytest.raises(ValidationFailed, match="no accepted device of target 'rpi4'"):
        _rollouts.create_rollout(ws, fleet.new.id, "nanos")
    assert _rollouts.list_rollouts(ws).items == []
    assert _rollouts.parse_duration("1.5h") == 5_400_000
    assert _rollouts.parse_share("2.5%", "x") == pytest.approx(0.025)


def test_a_restarted_server_continues_at_the_same_wave(
    make_workspace: Callable[..., Workspace], db_url: str
) -> None:
    ws = make_workspace(db_url=db_url)
    fleet = make_fleet(ws)
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="10,50,100", bake="1m", now=T0)
    fleet.drive(T0 + 1)
    reconcile_once(ws, now=T0 + MIN + 1)  # wave 2 starts
    fleet.drive(T0 + MIN + 2)
    ws.close()
    again = Workspace.open(ws.settings)  # a new process on the same database
    fleet.ws = again
    info = _rollouts.get_rollout(again, ro.id)
    assert (info.state, info.current_wave, info.counts) == ("running", 1, {"healthy": 5})
    assert reconcile_once(again, now=T0 + MIN + 3).transitions == []
    step = reconcile_once(again, now=T0 + 2 * MIN + 2)
    assert [(e.to_state, e.wave) for e in step.transitions] == [("running", 2)]
    assert [t[2] for t in _transitions(again, ro.id)] == [None, 0, 1, 2]
    again.close()


def test_a_device_without_an_earlier_release_is_withdrawn_on_rollback(fleet: Fleet) -> None:
    ws = fleet.ws
    fresh = enrolled(ws, FakeDevice("fresh"))  # nothing installed yet
    fresh.checkin(ws, now=T0)
    ro = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="100", bake="1h", now=T0)
    assert fresh.checkin(ws, now=T0 + 1).assignment is not None
    with pytest.raises(Conflict, match="has not finished"):
        _devices.remove_device(ws, fresh.id)
    _rollouts.rollback_rollout(ws, ro.id, now=T0 + 2)
    assert fresh.checkin(ws, now=T0 + 3).assignment is None
    updates = {u.device: u for u in _rollouts.list_rollout_devices(ws, ro.id)}
    assert updates[fresh.id].state == "rolled-back"
    assert updates[fresh.id].reason.startswith("no earlier release")
    assert updates[fleet.devices[0].id].previous_release == fleet.old.id
    assert updates[fleet.devices[0].id].reason == "rollback; the update was assigned"
    removed = _devices.remove_device(ws, fresh.id)  # it may now enroll again, with a new key
    assert removed.id == fresh.id
    again = FakeDevice("fresh")
    result = _devices.enroll_device(ws, again.id, again.public_key, again.attributes())
    assert result.status == "pending"
