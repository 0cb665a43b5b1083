"""Enrollment: pending until accepted, a pre-shared token, the key kept across restarts, a
rotated token collected again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeloop.agent import Agent
from edgeloop.errors import Conflict
from tests.agent._fake_server import FakeFleet


def test_pending_until_an_admin_accepts(fleet: FakeFleet, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(enrollment_token=None)
    assert agent.enroll() == "pending"
    assert agent.run_once() is None  # no check-in while pending
    assert fleet.devices["dev-1"].status == "pending"
    assert fleet.devices["dev-1"].public_key == agent.identity.public_key()
    assert fleet.devices["dev-1"].attributes["target"] == "rpi4"

    fleet.accept("dev-1")
    assert agent.run_once() is not None  # collects the token (signed), then checks in
    assert agent.identity.status == "accepted"
    assert agent.identity.device_token == fleet.devices["dev-1"].token
    assert agent.identity.fleet_public_key == fleet.public_key
    assert [dev for dev, _ in fleet.checkins] == ["dev-1"]


def test_a_pre_shared_token_is_accepted_at_once(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(attributes={"firmware": "1.4.2", "tags": {"line": "b"}})
    assert agent.enroll() == "accepted"
    assert fleet.devices["dev-1"].attributes == {
        "firmware": "1.4.2",
        "tags": {"line": "b"},
        "target": "rpi4",
    }
    agent.run_once()
    assert fleet.checkins[-1][1]["firmware"] == "1.4.2"


def test_the_identity_survives_a_restart(
    fleet: FakeFleet, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = make_agent()
    agent.enroll()
    again = make_agent()  # same state directory: same key, same token, no new enrollment
    assert again.identity == agent.identity
    assert again.enroll() == "accepted"
    stored = json.loads((tmp_path / "dev-1" / "identity.json").read_text())
    assert stored["device_id"] == "dev-1" and stored["private_key"]


def test_another_key_for_the_same_id_is_a_conflict(
    fleet: FakeFleet, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    make_agent().enroll()
    other = Agent(
        tmp_path / "elsewhere", fleet.url, target="rpi4", device_id="dev-1", enrollment_token="x"
    )
    with pytest.raises(Conflict):
        other.enroll()


def test_a_rotated_token_is_collected_again(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    agent.run_once()
    with fleet.lock:
        fleet.new_token("dev-1")  # e.g. the admin rotated it: the device's copy is refused
    agent.run_once()
    assert agent.identity.device_token == fleet.devices["dev-1"].token
    assert len(fleet.checkins) == 2


def test_a_restart_without_attributes_keeps_the_stored_ones(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    make_agent(attributes={"firmware": "1.4.2"}).run_once()
    again = make_agent()  # e.g. `edgeloop-agent` restarted without --attr
    again.run_once()
    assert again.identity.attributes == {"firmware": "1.4.2", "target": "rpi4"}
    assert fleet.checkins[-1][1]["firmware"] == "1.4.2"
