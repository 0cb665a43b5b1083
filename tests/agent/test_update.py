"""Updates end to end against the fake fleet server: the states reported, resumed and delta
downloads, refusals with their reasons, a failed self-test switched back."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop.agent import Agent
from edgeloop.errors import BackendUnavailable
from tests.agent._fake_server import N_FEATURES, FakeFleet

X = np.random.default_rng(7).normal(size=(16, N_FEATURES)).astype(np.float32)
HAPPY = ["downloading", "downloaded", "installing", "verifying", "healthy"]


def journal_steps(agent: Agent) -> list[str]:
    return [r["step"] for r in agent.journal.records()]


def last_checkin(fleet: FakeFleet, device_id: str) -> dict[str, object]:
    return [body for dev, body in fleet.checkins if dev == device_id][-1]


def test_full_update_reports_every_state_in_order(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    release = fleet.add_release("rel_1", 1)
    agent = make_agent()
    assert agent.run_once() is not None  # enrolled with the pre-shared token, no assignment
    assert agent.model is None
    fleet.assign(agent.device_id, "rel_1")

    agent.run_once()

    assert fleet.states(agent.device_id, "ro_rel_1") == HAPPY
    final = fleet.updates(agent.device_id)[-1]
    assert final["reason"] == "" and final["bytes_downloaded"] == release.size
    assert agent.model is not None and agent.model.release == "rel_1"
    assert agent.slots.active() == "a"
    assert agent.predict(X) == release.model.predict(X)
    np.testing.assert_array_equal(agent.scores(X), release.model.scores(X))
    assert journal_steps(agent) == [
        "assigned",
        "downloading",  # the plan: fetch, reuse, bytes
        "downloading",  # model.int8.npz from offset 0
        "downloading",  # model.int8.npz done
        "downloaded",
        "installing",
        "verifying",
        "switched",
        "healthy",
        "committed",
        "reported",
    ]
    # the next check-in describes the slots and carries no update any more
    agent.run_once()
    body = last_checkin(fleet, agent.device_id)
    assert "update" not in body
    assert body["active"] == "a"
    assert body["slots"] == {
        "a": {"release": "rel_1", "bundle_digest": hashlib.sha256(release.manifest).hexdigest()},
        "b": None,
    }


def test_interrupted_download_resumes_with_range(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    big = os.urandom(300_000)
    fleet.add_release("rel_1", 1, extra={"features.bin": big})
    fleet.cut[("rel_1", "features.bin")] = 100_000  # the connection drops once
    agent = make_agent()
    agent.run_once()
    fleet.assign(agent.device_id, "rel_1")
    agent.run_once()

    assert fleet.states(agent.device_id, "ro_rel_1") == HAPPY
    asked = [r for r in fleet.file_requests if r["path"] == "features.bin"]
    assert [(r["range"], r["sent"]) for r in asked] == [
        (None, 100_000),
        ("bytes=100000-", 200_000),
    ]
    assert sum(r["sent"] for r in asked) == len(big)  # not one byte twice
    assert (agent.slots.path("a") / "features.bin").read_bytes() == big


def test_second_release_downloads_only_changed_files(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    shared = os.urandom(50_000)
    fleet.add_release("rel_1", 1, extra={"features.bin": shared})
    second = fleet.add_release("rel_2", 2, extra={"features.bin": shared})
    agent = make_agent()
    agent.run_once()
    fleet.assign(agent.device_id, "rel_1")
    agent.run_once()
    fleet.assign(agent.device_id, "rel_2")
    agent.run_once()

    final = fleet.updates(agent.device_id, "ro_rel_2")[-1]
    assert final["state"] == "healthy"
    assert final["bytes_saved"] == len(shared) > 0
    assert final["bytes_downloaded"] == len(second.files["model.int8.npz"])
    fetched = [r["path"] for r in fleet.file_requests if r["release"] == "rel_2"]
    assert fetched == ["model.int8.npz"]
    assert agent.slots.active() == "b" and agent.model is not None
    assert agent.model.release == "rel_2"
    assert agent.predict(X) == second.model.predict(X)


def _refusal(fleet: FakeFleet, agent: Agent, case: str) -> int:
    """Set up release ``rel_x`` for ``case``; returns the assignment's max bundle bytes."""
    if case == "signature":
        fleet.add_release("rel_x", 2, signing_key=Ed25519PrivateKey.generate())
    elif case == "hash":
        release = fleet.add_release("rel_x", 2)
        data = bytearray(release.files["model.int8.npz"])
        data[len(data) // 2] ^= 0xFF  # tampered on the server after signing, same length
        release.files["model.int8.npz"] = bytes(data)
    elif case == "target":
        fleet.add_release("rel_x", 2, target="nano33ble")
    elif case == "downgrade":
        fleet.add_release("rel_x", 0)
    elif case == "size-assignment":
        fleet.add_release("rel_x", 2)
        return 1000
    elif case == "size-local":
        fleet.add_release("rel_x", 2)
        agent.updater.max_bundle_bytes = 1000  # the device's own cap (--max-bundle-bytes)
    elif case.startswith("size-streamed"):  # the server sends more than the signed size
        release = fleet.add_release("rel_x", 2, extra={"data.bin": b"x" * 5000})
        release.files["data.bin"] += b"y" * 100_000
        fleet.omit_length = case.endswith("without-length")  # no Content-Length to refuse
    return 16 << 20


@pytest.mark.parametrize(
    "case",
    [
        "signature",
        "hash",
        "target",
        "downgrade",
        "size-assignment",
        "size-local",
        "size-streamed",
        "size-streamed-without-length",
    ],
)
def test_refused_bundles_are_reported_and_nothing_is_installed(
    fleet: FakeFleet, installed: Callable[..., Agent], case: str
) -> None:
    agent = installed()
    before = {slot: sorted(p.name for p in agent.slots.path(slot).glob("*")) for slot in "ab"}
    limit = _refusal(fleet, agent, case)
    fleet.assign(agent.device_id, "rel_x", rollout="ro_bad", max_bundle_bytes=limit)

    agent.run_once()

    updates = fleet.updates(agent.device_id, "ro_bad")
    assert [u["state"] for u in updates][-1] == "failed"
    assert updates[-1]["reason"] == case.split("-")[0]
    assert agent.model is not None and agent.model.release == "rel_1"
    assert agent.slots.active() == "a"
    after = {slot: sorted(p.name for p in agent.slots.path(slot).glob("*")) for slot in "ab"}
    assert after == before  # the idle slot was not touched
    assert not any((agent.state_dir / "downloads").iterdir())
    assert agent.predict(X) == fleet.releases["rel_1"].model.predict(X)
    if case.startswith("size-streamed"):  # the download stopped at the limit
        sent = [r["sent"] for r in fleet.file_requests if r["path"] == "data.bin"]
        assert sent == [105_000]  # what the server wrote; the agent read at most 5001
    if case in ("signature", "target", "downgrade") or case.startswith("size-a"):
        assert not [r for r in fleet.file_requests if r["release"] == "rel_x"]  # no file fetched


def test_downgrade_is_accepted_as_a_rollback(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    agent = installed()
    fleet.add_release("rel_2", 2)
    fleet.assign(agent.device_id, "rel_2")
    agent.run_once()
    assert agent.model is not None and agent.model.release == "rel_2"

    fleet.assign(agent.device_id, "rel_1", rollout="ro_down")
    agent.run_once()
    assert fleet.updates(agent.device_id, "ro_down")[-1]["reason"] == "downgrade"

    fleet.assign(agent.device_id, "rel_1", rollout="ro_back", rollback=True)
    agent.run_once()
    final = fleet.updates(agent.device_id, "ro_back")[-1]
    assert final["state"] == "healthy"
    assert final["bytes_saved"] > 0  # slot a still held rel_1: nothing to download
    assert not [r for r in fleet.file_requests if r["release"] == "rel_1" and r["sent"]][1:]
    assert agent.model is not None and agent.model.release == "rel_1"
    assert agent.slots.active() == "a"  # installed again into the idle slot, from itself


def test_failed_self_test_switches_back_and_reports(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    agent = installed()
    fleet.add_release("rel_bad", 2, wrong_self_test=True)  # signed: only the self-test sees it
    fleet.assign(agent.device_id, "rel_bad")

    agent.run_once()

    states = fleet.states(agent.device_id, "ro_rel_bad")
    assert states == [
        "downloading",
        "downloaded",
        "installing",
        "verifying",
        "failed",
        "rolled-back",
    ]
    assert {u["reason"] for u in fleet.updates(agent.device_id, "ro_rel_bad")[-2:]} == {"self-test"}
    steps = journal_steps(agent)
    last_switch = len(steps) - 1 - steps[::-1].index("switched")
    assert steps[last_switch : last_switch + 3] == ["switched", "failed", "rolled-back"]
    assert agent.slots.active() == "a"
    assert agent.model is not None and agent.model.release == "rel_1"
    agent.run_once()
    assert last_checkin(fleet, agent.device_id)["slots"] == {
        "a": {
            "release": "rel_1",
            "bundle_digest": hashlib.sha256(fleet.releases["rel_1"].manifest).hexdigest(),
        },
        "b": None,  # the failed bundle was cleared
    }


def test_a_newer_assignment_supersedes_an_unfinished_update(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    agent = installed()
    fleet.add_release("rel_2", 2)
    fleet.add_release("rel_3", 3)
    fleet.assign(agent.device_id, "rel_2")
    fleet.files_unavailable = True
    with pytest.raises(BackendUnavailable):
        agent.run_once()
    assert agent.journal.state().update.last == "downloading"  # type: ignore[union-attr]

    fleet.files_unavailable = False
    fleet.assign(agent.device_id, "rel_3")
    agent.run_once()

    assert fleet.updates(agent.device_id, "ro_rel_2")[-1]["state"] == "failed"
    assert fleet.updates(agent.device_id, "ro_rel_2")[-1]["reason"] == "superseded"
    assert fleet.states(agent.device_id, "ro_rel_3")[-1] == "healthy"
    assert agent.model is not None and agent.model.release == "rel_3"


def test_journal_lines_are_json_with_increasing_seq(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    agent = installed()
    lines = (agent.state_dir / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[0]["step"] == "assigned" and records[0]["slot"] == "a"
    assert records[0]["previous"] is None
    assert (agent.state_dir / "identity.json").stat().st_mode & 0o777 == 0o600


def test_recovery_falls_back_to_the_other_slot_when_the_committed_one_rots(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    agent = installed()
    fleet.add_release("rel_2", 2)
    fleet.assign(agent.device_id, "rel_2")
    agent.run_once()
    assert agent.slots.active() == "b"
    model_file = agent.slots.path("b") / "model.int8.npz"
    data = bytearray(model_file.read_bytes())
    data[-20] ^= 0xFF  # the flash under slot b went bad
    model_file.write_bytes(bytes(data))

    restarted = Agent(agent.state_dir, fleet.url, target="rpi4")
    restarted.recover()

    assert restarted.slots.active() == "a"
    assert restarted.model is not None and restarted.model.release == "rel_1"
    assert restarted.journal.state().committed_slot == "a"
    assert restarted.predict(X) == fleet.releases["rel_1"].model.predict(X)
    restarted.run_once()
    body = last_checkin(fleet, agent.device_id)
    assert body["active"] == "a" and body["slots"]["b"] is None  # type: ignore[index]
