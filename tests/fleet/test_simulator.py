"""The simulated device fleet: against the agent tests' fake server (protocol conformance,
failure modes, stats, determinism) and end to end against the real server (a canary rolled
back by its gate, then a release that completes)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgeloop.config import Settings
from edgeloop.fleet._rollouts import parse_duration, parse_share
from edgeloop.fleet._simulator import FAILURE_MODES, DeviceFleet
from edgeloop.workspace import Workspace
from tests.agent._fake_server import FakeFleet
from tests.fleet._live import served

TOKEN = "tok-preshared"
POLL = 0.25
HEALTHY = ["downloading", "downloaded", "installing", "verifying", "healthy"]


@pytest.fixture
def fake() -> Iterator[FakeFleet]:
    server = FakeFleet(poll_interval_s=POLL)
    server.enrollment_tokens.add(TOKEN)
    try:
        yield server
    finally:
        server.close()


def _settled(fleet: DeviceFleet, rollout: str, release: str) -> Callable[[], bool]:
    def done() -> bool:
        return all((rollout, release) in d.done and not d.pending for d in fleet.devices)

    return done


def test_failure_modes_are_deterministic_for_a_seed() -> None:
    def modes(seed: int) -> list[Any]:
        fleet = DeviceFleet("http://127.0.0.1:1", devices=200, faulty=0.1, seed=seed)
        return [(d.id, d.failure, d.public_key) for d in fleet.devices]

    assert modes(3) == modes(3)
    assert modes(3) != modes(4)
    counts = Counter(m for _, m, _ in modes(3) if m is not None)
    assert counts == dict.fromkeys(FAILURE_MODES, 4)


def test_parsers() -> None:
    assert parse_share("3%", "faulty") == pytest.approx(0.03)
    assert parse_share("0.5", "faulty") == 0.5
    assert parse_duration("2m", "duration") / 1000 == 120.0
    assert parse_duration("500ms", "duration") / 1000 == 0.5


def test_fleet_against_the_fake_server(fake: FakeFleet) -> None:
    fleet = DeviceFleet(
        fake.url,
        devices=100,
        faulty=0.2,
        seed=7,
        poll_interval=POLL,
        trace=True,
        restart_s=0.5,
        concurrency=16,
    )
    fake.add_release("rel_1", 1)

    async def scenario() -> None:
        assert await fleet.enroll_all(TOKEN) == {"accepted": 100}
        fake.checkins.clear()
        for dev in fleet.devices:
            fake.assign(dev.id, "rel_1", rollout="ro_1")
        fleet.reset_stats()
        await fleet.run(20.0, until=_settled(fleet, "ro_1", "rel_1"))
        await fleet.run(3.0)  # long enough for the offline devices to go away and return

    asyncio.run(scenario())
    stats = fleet.stats()
    by_mode: dict[Any, list[Any]] = {}
    for dev in fleet.devices:
        by_mode.setdefault(dev.failure, []).append(dev)
        assert ("ro_1", "rel_1") in dev.done, dev.id

    for dev in by_mode[None] + by_mode["inference"] + by_mode["offline"]:
        assert fake.states(dev.id, "ro_1") == HEALTHY, dev.id
        assert dev.release == "rel_1" and dev.slots[dev.active or ""] is not None
    for dev in by_mode["corrupt-download"]:
        assert fake.states(dev.id, "ro_1") == ["downloading", "failed"]
        assert dev.failures == ["hash"] and dev.release is None
    for dev in by_mode["self-test"]:
        assert fake.states(dev.id, "ro_1")[-2:] == ["failed", "rolled-back"]
        assert [u["reason"] for u in fake.updates(dev.id, "ro_1")][-2:] == ["self-test"] * 2
    for dev in by_mode["crash-install"]:
        assert fake.states(dev.id, "ro_1")[-3:] == ["installing", "failed", "rolled-back"]
        assert {u["reason"] for u in fake.updates(dev.id, "ro_1")[-2:]} == {"crash"}

    # the faulty share reports the right reasons; healthy devices reach healthy
    assert stats.failures == {"hash": 4, "self-test": 4, "crash": 4}
    assert stats.states["healthy"] == 100 - 12
    assert stats.faulty == dict.fromkeys(FAILURE_MODES, 4)
    assert stats.releases == {"rel_1": 88, "none": 12}

    # inference devices: telemetry with a high error rate; the others without errors
    errors: dict[str, list[float]] = {}
    for device, window in fake.telemetry:
        errors.setdefault(device, []).append(window["error_count"] / window["inference_count"])
    bad = {d.id for d in by_mode["inference"]}
    assert all(min(errors[d]) >= 0.25 for d in bad)
    assert all(max(rates) == 0 for d, rates in errors.items() if d not in bad)

    # offline devices stop checking in while away
    for dev in by_mode["offline"]:
        assert dev.offline_periods
        for start, end in dev.offline_periods:
            assert not [t for t in dev.checkin_times if start < t < end - 1e-3]
    online = [len(d.checkin_times) for d in by_mode[None]]
    away = [len(d.checkin_times) for d in by_mode["offline"]]
    assert max(away) < sum(online) / len(online)

    # stats add up with what the server saw
    assert stats.checkins == len(fake.checkins)
    reported = Counter(body["update"]["state"] for _, body in fake.checkins if body.get("update"))
    assert stats.states == dict(reported)
    assert stats.telemetry_windows == len(fake.telemetry)
    size = fake.releases["rel_1"].size
    assert stats.bytes_downloaded == size * (100 - 4)  # all but the corrupt downloads
    assert stats.bytes_fetched == size  # fetched once, shared in-process
    assert stats.latency_ms["p50"] <= stats.latency_ms["p99"]
    assert not stats.errors


def test_delta_and_rollback_to_the_idle_slot(fake: FakeFleet) -> None:
    extra = {"labels.txt": b"normal imbalance bearing\n" * 40}
    fake.add_release("rel_1", 1, extra=extra)
    fake.add_release("rel_2", 2, extra=extra)
    fleet = DeviceFleet(fake.url, devices=20, seed=1, poll_interval=POLL, concurrency=16)

    async def step(rollout: str, release: str, rollback: bool = False) -> None:
        for dev in fleet.devices:
            fake.assign(dev.id, release, rollout=rollout, rollback=rollback)
        await fleet.run(10.0, until=_settled(fleet, rollout, release))

    async def scenario() -> tuple[float, float]:
        await fleet.enroll_all(TOKEN)
        await step("ro_1", "rel_1")
        fleet.reset_stats()
        await step("ro_2", "rel_2")
        assert fleet.stats().bytes_saved == 20 * len(extra["labels.txt"])
        fleet.reset_stats()
        before = time.time()
        await step("ro_2", "rel_1", rollback=True)
        return before, time.time()

    before, after = asyncio.run(scenario())
    stats = fleet.stats()
    assert stats.releases == {"rel_1": 20}
    assert stats.bytes_downloaded == 0  # the previous release was still in the idle slot
    # the rollback flow: manifest and signature, no file, each state reported
    assert stats.requests.get("file", 0) == 0
    assert stats.requests["manifest"] == stats.requests["signature"] == 20
    # every device recorded when it first found each assignment in a check-in answer
    assert set(fleet.first_seen) == {
        ("ro_1", "rel_1", False),
        ("ro_2", "rel_2", False),
        ("ro_2", "rel_1", True),
    }
    seen = fleet.first_seen[("ro_2", "rel_1", True)]
    assert set(seen) == {d.id for d in fleet.devices}
    assert all(before <= t <= after for t in seen.values())
    assert all(t <= before for t in fleet.first_seen[("ro_2", "rel_2", False)].values())
    assert all(
        fake.states(d.id, "ro_2")[-3:] == ["downloading", "downloaded", "healthy"]
        for d in fleet.devices
    )


# ---- end to end against the real server --------------------------------------------------------


@pytest.fixture
def live_server(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, Workspace]]:
    """The FastAPI app served by uvicorn on a loopback port, with a fast reconciler."""
    with served(make_settings()) as live:
        yield live


@pytest.mark.slow
def test_canary_rolled_back_then_good_release_completes(
    live_server: tuple[str, Workspace],
) -> None:
    from edgeloop.fleet import _devices, _groups, _releases, _rollouts
    from tests.fleet._fleet import register_version

    url, ws = live_server
    _, token = _devices.create_enrollment_token(ws, "sim")
    v1 = register_version(ws, "pump", seed=1)
    v2 = register_version(ws, "pump", seed=2)
    v3 = register_version(ws, "pump", seed=3)
    rel = {v: _releases.create_release(ws, "pump", v, "rpi4").id for v in (v1, v2, v3)}
    bad = rel[v2]
    fleet = DeviceFleet(
        url,
        devices=60,
        faulty=0.25,
        seed=5,
        poll_interval=0.3,
        failure_modes=("self-test", "corrupt-download", "crash-install"),
        faulty_when=lambda manifest: manifest["release"] == bad,
        restart_s=0.3,
    )

    def rollout(release: str) -> str:
        return _rollouts.create_rollout(
            ws,
            release,
            "sim",
            waves="25,100",
            bake=0,
            max_failure="5%",
            min_success="90%",
            offline_timeout="1h",
        ).id

    def ended(rollout_id: str) -> Callable[[], bool]:
        def check() -> bool:
            return _rollouts.get_rollout(ws, rollout_id).state in ("completed", "rolled-back")

        return check

    async def scenario() -> dict[str, str]:
        assert await fleet.enroll_all(token) == {"accepted": 60}
        _groups.create_group(ws, "sim", members=[d.id for d in fleet.devices])
        states: dict[str, str] = {}
        base = rollout(rel[v1])
        await fleet.run(30.0, until=ended(base))
        states["base"] = _rollouts.get_rollout(ws, base).state
        canary = rollout(bad)
        await fleet.run(30.0, until=ended(canary))
        states["canary"] = _rollouts.get_rollout(ws, canary).state
        back = [d.id for d in fleet.devices]  # every device of the canary ends up on v1

        def all_back() -> bool:
            return all(fleet.device(i).release == rel[v1] for i in back)

        await fleet.run(10.0, until=all_back)
        good = rollout(rel[v3])
        await fleet.run(30.0, until=ended(good))
        states["good"] = _rollouts.get_rollout(ws, good).state
        states["canary_reason"] = _rollouts.get_rollout(ws, canary).state_reason
        return states

    states = asyncio.run(scenario())
    assert states["base"] == "completed"
    assert states["canary"] == "rolled-back"
    assert "share failed" in states["canary_reason"]
    assert states["good"] == "completed"
    assert Counter(d.release for d in fleet.devices) == {rel[v3]: 60}
