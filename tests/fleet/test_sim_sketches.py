"""Simulated devices with a data source sketch their inferences on their release's reference
and send the sketches with their telemetry; the server stores them as monitoring windows
(tagged with the device's site and groups) and merges them."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from edgeloop import registry
from edgeloop.config import Settings
from edgeloop.fleet import _devices, _groups, _releases, _rollouts
from edgeloop.fleet._simulator import DeviceFleet
from edgeloop.monitoring import build_reference, merged_windows
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.store import DeviceTelemetry
from edgeloop.workspace import Workspace
from tests.agent._fake_server import LABELS, N_FEATURES
from tests.fleet._fleet import register_version
from tests.fleet._live import served

RNG = np.random.default_rng(11)
REFERENCE = build_reference(
    RNG.normal(size=(500, N_FEATURES)),
    None,
    labels=list(LABELS),
    proba=RNG.dirichlet([1, 1, 1], 500),
    scores="logits",
)


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, Workspace]]:
    """The app on a loopback port with a fast reconciler, in this process."""
    with served(make_settings(), lifespan="auto") as live:
        yield live


def source(device_id: str, tags: dict[str, str], n: int, now_ms: int) -> tuple[np.ndarray, ...]:
    """plant-2's sensors read 3 higher (drift); the others look like the reference."""
    rng = np.random.default_rng([zlib.crc32(device_id.encode()), now_ms])
    shift = 3.0 if tags.get("site") == "plant-2" else 0.0
    return rng.normal(shift, 1.0, size=(n, N_FEATURES)), rng.dirichlet([1, 1, 1], n)


def test_simulated_devices_send_sketches_that_the_server_merges(
    server: tuple[str, Workspace],
) -> None:
    url, ws = server
    _, token = _devices.create_enrollment_token(ws, "sim")
    version = register_version(ws, "pump", seed=1)
    registry.attach_files(ws, "pump", version, {REFERENCE_PATH: REFERENCE.to_json()})
    release = _releases.create_release(ws, "pump", version, "rpi4")
    assert REFERENCE_PATH in release.files
    fleet = DeviceFleet(
        url,
        devices=6,
        seed=2,
        poll_interval=0.2,
        telemetry_interval=0.2,
        sites=("plant-1", "plant-2"),
        data_source=source,
    )

    def sketched() -> bool:
        with ws.db.read() as s:
            rows = s.query(DeviceTelemetry).filter(DeviceTelemetry.sketches.is_not(None)).all()
            return len({r.device_id for r in rows}) == 6

    async def scenario() -> None:
        assert await fleet.enroll_all(token) == {"accepted": 6}
        _groups.create_group(ws, "all", members=[d.id for d in fleet.devices])
        _groups.create_group(ws, "west", query="site=plant-1")
        rollout = _rollouts.create_rollout(
            ws, release.id, "all", waves="100", bake=0, offline_timeout="1h"
        )
        await fleet.run(
            30.0, until=lambda: _rollouts.get_rollout(ws, rollout.id).state == "completed"
        )
        await fleet.run(30.0, until=sketched)

    asyncio.run(scenario())
    with ws.db.read() as s:
        rows = s.query(DeviceTelemetry).filter(DeviceTelemetry.sketches.is_not(None)).all()
        samples = sum(r.inference_count for r in rows)
        assert all(r.sketches["model"] == "pump" for r in rows)
    now = int(time.time() * 1000) + 60_000
    day = 24 * 3600 * 1000
    merged = merged_windows(ws, "pump", version, start_ms=now - day, end_ms=now, window_ms=day)
    assert sum(m.sketch.count for m in merged) == samples
    assert max(m.sources for m in merged) == 6 or sum(m.sources for m in merged) >= 6

    def mean_rms(**tags: str) -> float:
        found = merged_windows(
            ws, "pump", version, start_ms=now - day, end_ms=now, window_ms=day, tags=tags
        )
        summaries = [m.sketch.features["f0"].summary for m in found]
        total = sum(s.count for s in summaries)
        return sum(s.mean * s.count for s in summaries) / total

    assert mean_rms(site="plant-2") > 2.0  # the drifted site stands out
    assert abs(mean_rms(site="plant-1")) < 0.5
    assert abs(mean_rms(group="west")) < 0.5  # group members carry group.<name>
