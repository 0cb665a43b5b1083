"""Fixtures of the agent tests, written as factories: a fake fleet server per test, agents
on state directories under ``tmp_path``, and a settable clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeloop.agent import Agent
from tests.agent._fake_server import FakeFleet

ENROLLMENT_TOKEN = "tok-preshared"


class FakeClock:
    """Epoch seconds that move only when told to (starting now, so signed token requests
    stay within the server's five minutes)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    server = FakeFleet()
    server.enrollment_tokens.add(ENROLLMENT_TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make_agent(tmp_path: Path, fleet: FakeFleet) -> Callable[..., Agent]:
    def factory(device_id: str = "dev-1", **kwargs: Any) -> Agent:
        kwargs.setdefault("enrollment_token", ENROLLMENT_TOKEN)
        kwargs.setdefault("target", "rpi4")
        return Agent(tmp_path / device_id, fleet.url, device_id=device_id, **kwargs)

    return factory


@pytest.fixture
def installed(fleet: FakeFleet, make_agent: Callable[..., Agent]) -> Callable[..., Agent]:
    """An enrolled agent running release ``rel_1`` (model version 1) in slot a."""

    def factory(device_id: str = "dev-1", **kwargs: Any) -> Agent:
        if "rel_1" not in fleet.releases:
            fleet.add_release("rel_1", 1)
        agent = make_agent(device_id, **kwargs)
        fleet.assign(agent.device_id, "rel_1", rollout="ro_base")
        agent.run_once()
        assert agent.model is not None and agent.model.release == "rel_1"
        return agent

    return factory
