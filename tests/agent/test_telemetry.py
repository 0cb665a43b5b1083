"""Telemetry windows, the bounded offline buffer, and the check-in schedule (poll interval
with jitter, exponential backoff on errors)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgeloop.agent import LATENCY_EDGES_MS, Agent, Request, Response
from edgeloop.agent._telemetry import TelemetryBuffer, TelemetryWindow, percentile
from edgeloop.errors import BackendUnavailable
from tests.agent._fake_server import N_FEATURES, FakeFleet
from tests.agent.conftest import FakeClock

X = np.zeros((2, N_FEATURES), dtype=np.float32)
HOUR = 3600.0


def test_a_window_counts_inferences_errors_and_latency() -> None:
    window = TelemetryWindow(1000)
    for latency in (0.2, 0.7, 0.7, 3.0, 150.0):
        window.record(latency, ok=True)
    window.record(0.3, ok=False)
    record = window.close(5000, release="rel_1", model_version=1)
    assert record["window_start"] == 1000 and record["window_end"] == 5000
    assert record["inference_count"] == 6 and record["error_count"] == 1
    assert record["latency_ms"]["edges"] == list(LATENCY_EDGES_MS)
    assert record["latency_ms"]["counts"] == [2, 2, 0, 1, 0, 0, 0, 0, 1]
    assert sum(record["latency_ms"]["counts"]) == record["inference_count"]
    assert 100.0 < record["latency_p95_ms"] <= 150.0  # in the overflow bin, up to the max
    assert window.start_ms == 5000 and window.inference_count == 0


def test_percentile_interpolates_within_a_bin() -> None:
    assert percentile([1.0, 2.0], [0, 10, 0], 0.5, top=0.0) == pytest.approx(1.5)
    assert percentile([1.0, 2.0], [0, 0, 0], 0.95, top=0.0) == 0.0


def test_the_buffer_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.jsonl", capacity=3)
    for i in range(6):
        buffer.append({"window_start": i, "dropped_windows": 0})
    kept = buffer.pending()
    assert [r["window_start"] for r in kept] == [3, 4, 5]
    assert kept[0]["dropped_windows"] == 3
    reopened = TelemetryBuffer(tmp_path / "t.jsonl", capacity=3)  # it is on disk
    assert reopened.pending() == kept


def test_windows_are_buffered_offline_and_flushed_in_order(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed(clock=clock, telemetry_buffer=3)
    agent.predict(X)
    agent.predict(X)
    clock.advance(HOUR)
    agent.run_once()  # online: the first window goes at once
    sent = [body for dev, body in fleet.telemetry]
    assert len(sent) == 1 and sent[0]["inference_count"] == 2
    assert sent[0]["release"] == "rel_1" and sent[0]["model_version"] == 1
    assert sent[0]["dropped_windows"] == 0

    fleet.offline = "drop"
    for i in range(5):  # five windows while the server cannot be reached: 1..5 inferences
        for _ in range(i + 1):
            agent.predict(X)
        if i == 4:
            with pytest.raises(ValueError, match="NaN"):
                agent.predict([[float("nan")] * N_FEATURES])
        clock.advance(HOUR)
        with pytest.raises(BackendUnavailable):
            agent.run_once()
    assert len(agent.buffer) == 3
    assert agent.buffer.dropped == 2

    fleet.offline = None
    agent.run_once()
    flushed = [body for dev, body in fleet.telemetry][1:]
    assert [w["inference_count"] for w in flushed] == [3, 4, 6]  # windows 3-5, in order
    assert [w["dropped_windows"] for w in flushed] == [2, 0, 0]
    assert flushed[-1]["error_count"] == 1  # the NaN input
    starts = [w["window_start"] for w in flushed]
    assert starts == sorted(starts)
    assert all(b["window_start"] == a["window_end"] for a, b in itertools.pairwise(flushed))
    assert len(agent.buffer) == 0


def _refused(request: Request) -> Response:
    raise ConnectionRefusedError(111, "Connection refused")


def test_backoff_grows_on_errors_up_to_its_cap(tmp_path: Path) -> None:
    clock = FakeClock()
    sleeps: list[float] = []

    agent: Agent

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        if len(sleeps) >= 10:
            agent.stop()

    agent = Agent(
        tmp_path / "dev",
        "http://fleet.invalid",
        target="rpi4",
        clock=clock,
        sleep=sleep,
        http=_refused,
        rng=random.Random(1),
        backoff_initial=1.0,
        backoff_cap=60.0,
    )
    agent.run_forever()
    assert len(sleeps) == 10
    for n, delay in enumerate(sleeps, start=1):
        base = min(60.0, 2.0 ** (n - 1))
        assert base / 2 <= delay <= base
    assert sleeps[:6] == sorted(sleeps[:6])
    assert max(sleeps) <= 60.0


def test_poll_interval_comes_from_the_server_with_jitter(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    fleet.poll_interval_s, fleet.jitter_s = 120, 10
    clock = FakeClock()
    sleeps: list[float] = []
    agent: Agent

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        if len(sleeps) >= 20:
            agent.stop()

    agent = make_agent(clock=clock, sleep=sleep, rng=random.Random(2))
    agent.run_forever()
    assert all(110 <= s <= 130 for s in sleeps)
    assert len(set(sleeps)) > 1  # jittered
    assert len(fleet.checkins) == 20


def test_telemetry_windows_close_on_schedule_between_checkins(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    fleet.poll_interval_s = 1000
    clock = FakeClock()
    agent = installed(clock=clock, telemetry_interval=300)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        if len(sleeps) >= 8:
            agent.stop()

    agent._sleep = sleep
    agent.run_forever()
    assert max(sleeps) <= 300.0  # woken for the window, not only for the check-in
    assert len(fleet.telemetry) >= 3
