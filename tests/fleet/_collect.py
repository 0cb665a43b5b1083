"""Helpers for the data collection tests: a small windowed vibration dataset (the layout
``edgeloop data window`` makes), opted-in devices, and rows in that layout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from edgeloop import datasets
from edgeloop.fleet import _devices
from edgeloop.workspace import Workspace
from tests.fleet._fleet import T0, FakeDevice

LENGTH = 8
AXES = ("acc_x", "acc_y", "acc_z")
SENSOR = {
    "axes": list(AXES),
    "sample_rate": 1000.0,
    "length_min": LENGTH,
    "length_max": LENGTH,
    "window_ms": 8.0,
}


def window_table(n: int, *, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {
        "sample_id": [f"machine-{i // 2:02d}/normal/{i:04d}" for i in range(n)],
        "window": pa.array([i % 2 for i in range(n)], pa.int32()),
        "start_ms": pa.array([float(i % 2 * 8) for i in range(n)]),
        "label": [("normal", "imbalance")[i % 2] for i in range(n)],
    }
    for axis in AXES:
        values = pa.array(rng.normal(size=n * LENGTH).astype(np.float32))
        columns[axis] = pa.FixedSizeListArray.from_arrays(values, LENGTH)
    return pa.table(columns)


def add_windows(ws: Workspace, name: str = "vib-windows", rows: int = 20) -> str:
    result = datasets.add_version(ws, name, window_table(rows), label="label", sensor=SENSOR)
    return result.version.uri


def rows(
    n: int, device: str, *, label: str | None = "normal", seed: int = 1
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "sample_id": f"{device}/{i}",
            "window": 0,
            "start_ms": 0.0,
            "label": label,
            **{axis: rng.normal(size=LENGTH).astype(np.float32).tolist() for axis in AXES},
        }
        for i in range(n)
    ]


def enroll(
    ws: Workspace, device_id: str, *, opt_in: bool = True, tags: dict[str, str] | None = None
) -> FakeDevice:
    """Enroll (opted in or not), accept and collect a token."""
    device = FakeDevice(device_id, tags=dict(tags or {}))
    _devices.enroll_device(
        ws, device.id, device.public_key, device.attributes(), now=T0, data_collection=opt_in
    )
    _devices.accept_device(ws, device.id)
    grant = _devices.collect_device_token(ws, device.id, T0, device.sign(T0), now=T0)
    device.token = grant.device_token
    return device
