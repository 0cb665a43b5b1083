"""kill -9 at every step of an update, then a restart.

Each case copies one prepared state directory (enrolled, running ``rel_1`` in slot a), runs
``python -m edgeloop.agent --once`` with ``EDGELOOP_AGENT_CRASH_AT=<point>`` (the process
``os._exit(137)``s there, as after ``kill -9``), then starts a new agent on the same state
directory and checks that

- right after ``recover()``, before any network call, ``active`` names a slot whose bundle
  verifies (signature and every hash), no slot holds a half-written bundle, and ``predict``
  gives that release's predictions;
- after check-ins, the server's last report for the rollout is the right final state with
  the right reason, nothing is left unreported, and the model is the expected release.

All cases share one fake server (module scope); each uses its own rollout id.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeloop.agent import CRASH_ENV, Agent
from edgeloop.fleet.bundle import BundleRejected, load_public_key
from tests.agent._fake_server import N_FEATURES, FakeFleet
from tests.agent.conftest import ENROLLMENT_TOKEN

DEVICE = "crash-dev"
X = np.random.default_rng(3).normal(size=(8, N_FEATURES)).astype(np.float32)
DATA_BYTES = 200_000

# (crash point, release assigned, final state, reason, release running at the end)
HEALTHY = [
    "assigned",
    "torn:assigned",
    "downloading",
    "download-partial",
    "downloaded",
    "installing",
    "install-partial",
    "verifying",
    "switch-unjournaled",
    "torn:switched",
    "healthy",
    "torn:committed",
    "committed",
    "reported",
]
CASES = [(point, "rel_2", "healthy", "", "rel_2") for point in HEALTHY] + [
    ("switched", "rel_2", "rolled-back", "crash", "rel_1"),
    ("failed", "rel_bad", "rolled-back", "self-test", "rel_1"),
    ("rollback-unjournaled", "rel_bad", "rolled-back", "self-test", "rel_1"),
    ("rolled-back", "rel_bad", "rolled-back", "self-test", "rel_1"),
    ("torn:rolled-back", "rel_bad", "rolled-back", "self-test", "rel_1"),
    ("failed", "rel_tampered", "failed", "hash", "rel_1"),
]


@pytest.fixture(scope="module")
def crash_fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet()
    fleet.enrollment_tokens.add(ENROLLMENT_TOKEN)
    shared = os.urandom(20_000)
    fleet.add_release("rel_1", 1, extra={"features.bin": shared})
    fleet.add_release(
        "rel_2", 2, extra={"features.bin": shared, "data.bin": os.urandom(DATA_BYTES)}
    )
    fleet.add_release("rel_bad", 3, wrong_self_test=True)
    tampered = fleet.add_release("rel_tampered", 4)
    data = bytearray(tampered.files["model.int8.npz"])
    data[-100] ^= 0x01
    tampered.files["model.int8.npz"] = bytes(data)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="module")
def template(crash_fleet: FakeFleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory: enrolled, running rel_1 in slot a, everything reported."""
    state = tmp_path_factory.mktemp("template") / "state"
    agent = Agent(
        state, crash_fleet.url, target="rpi4", device_id=DEVICE, enrollment_token=ENROLLMENT_TOKEN
    )
    crash_fleet.assign(DEVICE, "rel_1", rollout="ro_base")
    agent.run_once()
    assert agent.model is not None and agent.model.release == "rel_1"
    return state


def _agent_cmd(fleet: FakeFleet, state: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edgeloop.agent",
        "--server",
        fleet.url,
        "--state",
        str(state),
        "--target",
        "rpi4",
        "--once",
    ]


def _check_slots(agent: Agent) -> str:
    """``active`` verifies and no slot holds a half-written bundle; returns its release."""
    key = load_public_key(agent.identity.fleet_public_key)
    active = agent.slots.active()
    assert active is not None
    manifest, _ = agent.slots.verify(active, key)
    for slot in "ab":
        base = agent.slots.path(slot)
        if agent.slots.has_bundle(slot):
            agent.slots.verify(slot, key)  # complete, or it would raise
        else:
            assert not base.exists() or not any(base.rglob("*")), f"slot {slot} is half-written"
    return str(manifest["release"])


@pytest.mark.slow
@pytest.mark.parametrize(("point", "release", "final", "reason", "running"), CASES)
def test_kill_at_every_step_then_restart(
    crash_fleet: FakeFleet,
    template: Path,
    tmp_path: Path,
    point: str,
    release: str,
    final: str,
    reason: str,
    running: str,
) -> None:
    state = tmp_path / "state"
    shutil.copytree(template, state, symlinks=True)
    rollout = f"ro_{release}_{point}"
    crash_fleet.forget(DEVICE)
    crash_fleet.assign(DEVICE, release, rollout=rollout)

    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env[CRASH_ENV] = point
    proc = subprocess.run(
        _agent_cmd(crash_fleet, state), env=env, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]

    agent = Agent(state, crash_fleet.url, target="rpi4")
    agent.recover()
    running_now = _check_slots(agent)
    assert agent.model is not None and agent.model.release == running_now
    assert agent.predict(X) == crash_fleet.releases[running_now].model.predict(X)

    for _ in range(3):
        agent.run_once()
        update = agent.journal.state().update
        if update is not None and update.finished and not update.unreported():
            break
    reports = crash_fleet.updates(DEVICE, rollout)
    assert reports, "nothing reported for the rollout"
    assert (reports[-1]["state"], reports[-1]["reason"]) == (final, reason)
    if final == "rolled-back":
        assert any(r["state"] == "failed" and r["reason"] == reason for r in reports)
    assert _check_slots(agent) == running
    assert agent.model is not None and agent.model.release == running
    assert agent.predict(X) == crash_fleet.releases[running].model.predict(X)
    assert not any((state / "downloads").glob("*"))
    if point == "download-partial":
        asked = [r for r in crash_fleet.file_requests if r["path"] == "data.bin"]
        assert asked[0]["range"] is None
        resumed_from = int(asked[1]["range"].removeprefix("bytes=").rstrip("-"))
        assert DATA_BYTES // 2 <= resumed_from < DATA_BYTES  # what was on disk was kept
        assert len(asked) == 2


def test_a_slot_whose_files_rot_is_not_served(
    crash_fleet: FakeFleet, template: Path, tmp_path: Path
) -> None:
    """A damaged committed slot with no good alternative leaves the device without a model
    (never running unverified bytes)."""
    state = tmp_path / "state"
    shutil.copytree(template, state, symlinks=True)
    model_file = state / "slots" / "a" / "model.int8.npz"
    data = bytearray(model_file.read_bytes())
    data[10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    agent = Agent(state, crash_fleet.url, target="rpi4")
    agent.recover()
    assert agent.model is None
    assert agent.slots.active() is None
    with pytest.raises(BundleRejected):
        agent.slots.verify("a", load_public_key(agent.identity.fleet_public_key))


@pytest.mark.slow
def test_a_real_sigkill_mid_download_resumes(
    crash_fleet: FakeFleet, template: Path, tmp_path: Path
) -> None:
    """Not the crash hook: SIGKILL while the agent waits for the rest of a file."""
    state = tmp_path / "state"
    shutil.copytree(template, state, symlinks=True)
    crash_fleet.forget(DEVICE)
    crash_fleet.unstall.clear()
    crash_fleet.stall[("rel_2", "data.bin")] = 70_000
    crash_fleet.assign(DEVICE, "rel_2", rollout="ro_sigkill")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    part: Path | None = None
    with subprocess.Popen(
        _agent_cmd(crash_fleet, state),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            part = next((state / "downloads").glob("*/parts/data.bin"), None)
            if part is not None and part.stat().st_size >= 70_000:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    crash_fleet.unstall.set()
    assert part is not None and part.stat().st_size == 70_000

    agent = Agent(state, crash_fleet.url, target="rpi4")
    agent.recover()
    assert _check_slots(agent) == "rel_1"
    agent.run_once()
    assert crash_fleet.updates(DEVICE, "ro_sigkill")[-1]["state"] == "healthy"
    asked = [r for r in crash_fleet.file_requests if r["path"] == "data.bin"]
    assert [r["range"] for r in asked] == [None, "bytes=70000-"]
    assert _check_slots(agent) == "rel_2"
