"""The agent's data collection side: inputs are kept only on a device that opted in, in a
ring on disk that stays bounded, keeps local feedback labels and survives a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeloop.agent import Agent
from tests.agent._fake_server import N_FEATURES


def test_no_input_is_kept_without_opting_in(
    installed: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = installed("plain")
    agent.predict(np.zeros((5, N_FEATURES), dtype=np.float32))
    agent.scores(np.zeros((2, N_FEATURES), dtype=np.float32))
    assert agent.samples is None and agent.last_samples == []
    assert not (tmp_path / "plain" / "samples").exists()
    assert not agent.feedback("1", "normal")


def test_an_opted_in_agent_keeps_its_last_inputs_in_a_bounded_ring(
    installed: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = installed("keen", collect_data=True, sample_buffer=8)
    x = np.arange(20 * N_FEATURES, dtype=np.float32).reshape(20, N_FEATURES)
    for start in range(0, 20, 4):
        agent.predict(x[start : start + 4])
    assert agent.last_samples == ["17", "18", "19", "20"]
    ring = agent.samples
    assert ring is not None and len(ring) == 8
    size = (tmp_path / "keen" / "samples" / "ring.bin").stat().st_size
    assert size == 8 * ring.record_size  # never more than the buffer
    assert agent.feedback("20", "imbalance") and not agent.feedback("3", "normal")
    newest = ring.latest(3)
    assert [s[0] for s in newest] == [20, 19, 18]
    assert newest[0][2] == "imbalance" and newest[1][2] is None
    assert np.array_equal(newest[0][3], x[19])
    restarted = Agent(
        tmp_path / "keen", agent.client.origin, target="rpi4", collect_data=True, sample_buffer=8
    )
    assert restarted.samples is not None and len(restarted.samples) == 8
    assert restarted.samples.next_seq == 21
    assert restarted.samples.latest(1)[0][2] == "imbalance"
