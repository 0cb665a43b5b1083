"""A small simulated fleet, in this process against the real server: a share of devices
opts in, a collection request reaches only them, they upload rows from the sample source,
and the close makes a new dataset version with exactly those rows, parent set."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgeloop import datasets, fleet
from edgeloop.config import Settings
from edgeloop.fleet import DeviceFleet, _devices
from edgeloop.workspace import Workspace
from tests.fleet._collect import add_windows, rows
from tests.fleet._live import served


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, Workspace]]:
    with served(make_settings(), reconcile_every=None) as pair:
        yield pair


def test_a_simulated_fleet_answers_a_collection(live: tuple[str, Workspace]) -> None:
    url, ws = live
    parent = add_windows(ws)
    _, token = _devices.create_enrollment_token(ws, "sim")
    asked: list[tuple[str, dict[str, str], int]] = []

    def source(device_id: str, tags: dict[str, str], n: int, now_ms: int) -> list[dict[str, Any]]:
        asked.append((device_id, tags, n))
        return rows(n, device_id, label="imbalance" if tags["site"] == "plant-2" else "normal")

    sim = DeviceFleet(
        url,
        devices=10,
        seed=3,
        poll_interval=0.05,
        telemetry=False,
        sample_source=source,
        collect_share=0.5,
    )
    opted = {d.id for d in sim.devices if d.collect}
    assert len(opted) == 5

    async def scenario() -> fleet.CollectionInfo:
        assert await sim.enroll_all(token) == {"accepted": 10}
        info = fleet.request_collection(
            ws, dataset="vib-windows", devices=3, samples_per_device=3, reason="sim"
        )

        def finished() -> bool:
            return fleet.get_collection(ws, info.id).done == 3

        await sim.run(20.0, until=finished)
        return info

    info = asyncio.run(scenario())
    assert {d.id: d.data_collection for d in fleet.list_devices(ws).items} == {
        d.id: d.id in opted for d in sim.devices
    }
    chosen = {d.device for d in fleet.get_collection(ws, info.id).devices or []}
    assert chosen <= opted and {a[0] for a in asked} == chosen
    assert all(n == 3 for _, _, n in asked) and sim.samples_uploaded == 9
    closed = fleet.close_due_collections(ws)
    assert [c.id for c in closed] == [info.id]
    version, table = datasets.load_table(ws, "vib-windows")
    assert version.version == 2 and version.parent == parent and version.rows == 29
    assert version.source["collection"] == f"collection:{info.id}"
    added = sorted(table.slice(20).column("sample_id").to_pylist())
    assert added == sorted(f"{d}/{i}" for d in chosen for i in range(3))
