"""Helpers for the fleet tests: a registered model version with an edge export (a tiny
int8 network, its C sources and an ONNX stand-in), and devices that enroll, collect a
token and report like the agent does."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop import registry, tracking
from edgeloop.fleet import _checkin, _devices
from edgeloop.fleet._entities import CheckinReport, CheckinResult
from edgeloop.workspace import Workspace
from tests.agent._fake_server import LABELS, N_FEATURES, tiny_model

T0 = 1_764_000_000_000


def edge_files(
    version: int,
    *,
    seed: int,
    c_source: bytes = b"int model;\n",
    fits: bool = True,
    onnx: bytes | None = None,
) -> dict[str, bytes]:
    """What ``attach_edge_export`` stores for a network: ``edge/...`` files and manifest
    (``onnx``: the bytes of the ONNX file, to share it between versions)."""
    model = tiny_model(seed)
    x = np.random.default_rng(seed + 7).normal(size=(3, N_FEATURES)).astype(np.float32)
    outputs = model.run_int8(model.quantize_input(x)).astype(int).tolist()
    files = {
        "edge/int8/model.npz": model.to_bytes(),
        "edge/onnx/model.onnx": onnx or b"onnx stand-in " + bytes([seed % 256]) * 64,
        "edge/c/model.c": c_source,
        "edge/c/model.h": b"int predict(void);\n",
    }
    footprint = {"target": "rpi4", "flash_bytes": 2048, "ram_bytes": 512, "fits": fits}
    manifest = {
        "format": "edgeloop-edge/1",
        "name": "pump",
        "version": version,
        "kind": "int8",
        "input": {"features": N_FEATURES, "dtype": "float32"},
        "preprocessing": None,
        "labels": list(LABELS),
        "files": {
            p: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in files.items()
        },
        "metrics": {"int8_accuracy": 0.93},
        "footprints": {"rpi4": footprint, "nano33ble": {**footprint, "target": "nano33ble"}},
        "self_test": [
            {"input": row.tolist(), "expected": out, "class": label}
            for row, out, label in zip(x, outputs, model.predict(x), strict=True)
        ],
    }
    files["edge/manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    return files


def register_version(
    ws: Workspace, name: str = "pump", *, seed: int = 1, edge: bool = True, **kwargs: Any
) -> int:
    """A new version of ``name``, with an edge export unless ``edge`` is False."""
    run = tracking.create_run(ws, "fleet-tests")
    tracking.put_artifact(ws, run.id, "model/model.bin", io.BytesIO(b"weights %d" % seed))
    version = registry.create_model_version(ws, name, run_id=run.id).version
    if edge:
        registry.attach_files(ws, name, version, edge_files(version, seed=seed, **kwargs))
    return version


@dataclass
class FakeDevice:
    """A device that speaks the protocol through the service functions (no HTTP)."""

    id: str
    target: str = "rpi4"
    site: str = "plant-3"
    tags: dict[str, str] = field(default_factory=dict)
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    token: str = ""
    release: str | None = None
    previous: str | None = None

    @property
    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes_raw()
        return base64.b64encode(raw).decode()

    def attributes(self) -> dict[str, Any]:
        return {"target": self.target, "firmware": "1.0", "site": self.site, "tags": self.tags}

    def sign(self, timestamp: int) -> str:
        return base64.b64encode(self.key.sign(f"{self.id}:{timestamp}".encode())).decode()

    def slots(self) -> dict[str, Any]:
        return {"a": {"release": self.release, "bundle_digest": None} if self.release else None}

    def checkin(
        self, ws: Workspace, update: Mapping[str, Any] | None = None, *, now: int
    ) -> CheckinResult:
        body: dict[str, Any] = {"firmware": "1.0", "slots": self.slots(), "active": "a"}
        if update is not None:
            body["update"] = dict(update)
        return _checkin.checkin(ws, self.id, CheckinReport.model_validate(body), now=now)

    def report(
        self, ws: Workspace, rollout: str, release: str, state: str, *, now: int, **extra: Any
    ) -> CheckinResult:
        """Report a state; ``healthy`` also switches the active slot to ``release``."""
        if state == "healthy":
            self.previous, self.release = self.release, release
        update = {"rollout": rollout, "release": release, "state": state, **extra}
        return self.checkin(ws, update, now=now)


def enrolled(ws: Workspace, device: FakeDevice, *, now: int = T0) -> FakeDevice:
    """Enroll, accept (as the workspace's admin) and collect a token."""
    _devices.enroll_device(ws, device.id, device.public_key, device.attributes(), now=now)
    _devices.accept_device(ws, device.id)
    grant = _devices.collect_device_token(ws, device.id, now, device.sign(now), now=now)
    device.token = grant.device_token
    return device
