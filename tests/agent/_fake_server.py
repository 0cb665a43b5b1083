"""A small fake fleet server for the agent tests: the device side of
``docs/fleet-protocol.md`` over :mod:`http.server` in a thread.

- enrollment (pending until :meth:`FakeFleet.accept`, or accepted at once with a pre-shared
  token) and token collection with the Ed25519 signature check;
- check-ins that record every body and hand out the assignment scripted with
  :meth:`FakeFleet.assign` until the device reports a state for its rollout;
- manifest, signature and files of assigned releases, files with ``Range: bytes=N-``; a
  download can be cut short once (:attr:`FakeFleet.cut`) or hang after some bytes until
  :attr:`FakeFleet.unstall` is set (:attr:`FakeFleet.stall`); every file request is
  recorded;
- a telemetry sink;
- ``offline``: ``"503"`` answers every request with 503, ``"drop"`` closes connections
  without an answer.

Bundles are signed with :func:`edgeloop.fleet.bundle.build_bundle`; models are tiny int8
networks made from :mod:`edgeloop.edge.runtime` dataclasses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeloop.edge.runtime import Dense, QuantizedModel, QuantParams, requant_params
from edgeloop.fleet.bundle import Runtime, build_bundle, public_key_b64

LABELS = ("normal", "imbalance", "bearing")
N_FEATURES = 4


# ---- models and bundles ---------------------------------------------------------------------


def tiny_model(seed: int, n_features: int = N_FEATURES) -> QuantizedModel:
    """A 2-layer int8 MLP with random weights (small: a few hundred bytes)."""
    rng = np.random.default_rng(seed)
    input_q = QuantParams(0.05, 0)
    hidden_q = QuantParams(0.1, -128)
    out_q = QuantParams(0.2, 0)

    def dense(n_out: int, n_in: int, in_scale: float, out: QuantParams, relu: bool) -> Dense:
        scales = np.full(n_out, 0.01, dtype=np.float32)
        multiplier, shift = requant_params(in_scale, scales, out.scale)
        return Dense(
            weights=rng.integers(-127, 128, size=(n_out, n_in)).astype(np.int8),
            bias=rng.integers(-500, 500, size=n_out).astype(np.int32),
            multiplier=multiplier,
            shift=shift,
            weight_scales=scales,
            output=out,
            relu=relu,
        )

    return QuantizedModel(
        input_shape=(n_features,),
        mean=np.zeros(n_features, dtype=np.float32),
        inv_std=np.ones(n_features, dtype=np.float32),
        input=input_q,
        layers=(
            dense(8, n_features, input_q.scale, hidden_q, True),
            dense(len(LABELS), 8, hidden_q.scale, out_q, False),
        ),
        labels=LABELS,
    )


def self_tests(model: QuantizedModel, seed: int, *, wrong: bool = False) -> list[dict[str, Any]]:
    x = np.random.default_rng(seed + 1000).normal(size=(3, N_FEATURES)).astype(np.float32)
    outputs = model.run_int8(model.quantize_input(x)).astype(int).tolist()
    if wrong:
        outputs[0][0] += 1
    return [
        {"input": row.tolist(), "expected": out, "class": label}
        for row, out, label in zip(x, outputs, model.predict(x), strict=True)
    ]


@dataclass
class Release:
    manifest: bytes
    signature: bytes
    files: dict[str, bytes]
    model: Any  # what predicts like the bundle: QuantizedModel, QuantizedTrees, ...

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


# ---- the server --------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed mid-download
            super().handle_error(request, client_address)


@dataclass
class Device:
    public_key: str
    status: str
    token: str = ""
    collected: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


class FakeFleet:
    def __init__(self, *, poll_interval_s: float = 30, jitter_s: float = 0) -> None:
        self.signing_key = Ed25519PrivateKey.generate()
        self.public_key = public_key_b64(self.signing_key)
        self.poll_interval_s = poll_interval_s
        self.jitter_s = jitter_s
        self.lock = threading.Lock()
        self.devices: dict[str, Device] = {}
        self.enrollment_tokens: set[str] = set()
        self.releases: dict[str, Release] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.allowed: dict[str, set[str]] = {}
        self.checkins: list[tuple[str, dict[str, Any]]] = []
        self.telemetry: list[tuple[str, dict[str, Any]]] = []
        self.file_requests: list[dict[str, Any]] = []
        self.offline: str | None = None
        self.files_unavailable = False  # 503 for file downloads only
        self.omit_length = False  # file bodies delimited by closing the connection
        self.cut: dict[tuple[str, str], int] = {}
        self.stall: dict[tuple[str, str], int] = {}  # send N bytes, then hang until unstalled
        self.unstall = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.unstall.set()
        self._server.shutdown()
        self._server.server_close()

    # scripting ------------------------------------------------------------------------------

    def add_release(
        self,
        release: str,
        model_version: int,
        *,
        seed: int | None = None,
        target: str = "rpi4",
        extra: Mapping[str, bytes] | None = None,
        wrong_self_test: bool = False,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> Release:
        model = tiny_model(model_version if seed is None else seed)
        files = {"model.int8.npz": model.to_bytes(), **dict(extra or {})}
        bundle = build_bundle(
            release=release,
            name="machine-condition",
            model_version=model_version,
            target=target,
            runtime="int8",
            files=files,
            signing_key=signing_key or self.signing_key,
            created_at=1764000000000 + model_version,
            labels=LABELS,
            input={"features": N_FEATURES, "dtype": "float32"},
            self_test=self_tests(model, model_version, wrong=wrong_self_test),
        )
        entry = Release(bundle.manifest, bundle.signature, dict(bundle.files), model)
        self.releases[release] = entry
        return entry

    def add_bundle(
        self,
        release: str,
        model_version: int,
        *,
        runtime: Runtime,
        files: Mapping[str, bytes],
        labels: Sequence[str],
        self_test: Sequence[Mapping[str, Any]],
        model: Any,
    ) -> Release:
        """A release of any runtime (the caller makes its model file and self-test)."""
        bundle = build_bundle(
            release=release,
            name="machine-condition",
            model_version=model_version,
            target="rpi4",
            runtime=runtime,
            files=files,
            signing_key=self.signing_key,
            created_at=1764000000000 + model_version,
            labels=labels,
            self_test=self_test,
        )
        entry = Release(bundle.manifest, bundle.signature, dict(bundle.files), model)
        self.releases[release] = entry
        return entry

    def assign(
        self,
        device_id: str,
        release: str,
        *,
        rollout: str | None = None,
        rollback: bool = False,
        max_bundle_bytes: int = 16 << 20,
    ) -> dict[str, Any]:
        base = f"/api/v1/device/releases/{release}"
        assignment = {
            "rollout": rollout or f"ro_{release}",
            "release": release,
            "rollback": rollback,
            "manifest_url": f"{base}/manifest.json",
            "signature_url": f"{base}/manifest.sig",
            "files_url": f"{base}/files/",
            "max_bundle_bytes": max_bundle_bytes,
        }
        with self.lock:
            self.assignments[device_id] = assignment
            self.allowed.setdefault(device_id, set()).add(release)
        return assignment

    def accept(self, device_id: str) -> None:
        with self.lock:
            self.devices[device_id].status = "accepted"

    def forget(self, device_id: str) -> None:
        """Clear what was recorded for a device (its identity stays)."""
        with self.lock:
            self.checkins = [c for c in self.checkins if c[0] != device_id]
            self.telemetry = [t for t in self.telemetry if t[0] != device_id]
            self.file_requests = [r for r in self.file_requests if r["device"] != device_id]
            self.assignments.pop(device_id, None)

    def updates(self, device_id: str, rollout: str | None = None) -> list[dict[str, Any]]:
        """The ``update`` fields the device reported, in order (optionally one rollout's)."""
        with self.lock:
            found = [body.get("update") for dev, body in self.checkins if dev == device_id]
        return [u for u in found if u and (rollout is None or u.get("rollout") == rollout)]

    def states(self, device_id: str, rollout: str | None = None) -> list[str]:
        """The reported states with consecutive repeats collapsed."""
        out: list[str] = []
        for update in self.updates(device_id, rollout):
            if not out or out[-1] != update["state"]:
                out.append(update["state"])
        return out

    # handling -------------------------------------------------------------------------------

    def device_for(self, token: str) -> str | None:
        with self.lock:
            for device_id, device in self.devices.items():
                if device.token and secrets.compare_digest(device.token, token):
                    return device_id
        return None

    def new_token(self, device_id: str) -> str:
        token_id = hashlib.sha256(device_id.encode()).hexdigest()[:12]
        token = f"eld_{token_id}_{secrets.token_urlsafe(32)}"
        self.devices[device_id].token = token
        return token


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


def _handler(fleet: FakeFleet) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            assert isinstance(data, dict)
            return data

        def _offline(self) -> bool:
            if fleet.offline == "drop":
                self.close_connection = True
                return True
            if fleet.offline == "503":
                self._send(503, _error("backend_unavailable", "offline"))
                return True
            return False

        def _device(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            device = fleet.device_for(auth[7:]) if auth.startswith("Bearer ") else None
            if device is None:
                self._send(401, _error("unauthenticated", "unknown device token"))
            return device

        def do_POST(self) -> None:
            if self._offline():
                return
            body = self._body()
            path = self.path
            if path == "/api/v1/devices/enroll":
                self._enroll(body)
            elif m := re.fullmatch(r"/api/v1/devices/([^/]+)/token", path):
                self._token(unquote(m.group(1)), body)
            elif path == "/api/v1/device/checkin":
                if (device := self._device()) is not None:
                    self._checkin(device, body)
            elif path == "/api/v1/device/telemetry":
                if (device := self._device()) is not None:
                    with fleet.lock:
                        fleet.telemetry.append((device, body))
                    self._send(202, {})
            else:
                self._send(404, _error("not_found", path))

        def _enroll(self, body: dict[str, Any]) -> None:
            device_id, key = str(body["id"]), str(body["public_key"])
            with fleet.lock:
                device = fleet.devices.get(device_id)
                if device is not None and device.public_key != key:
                    self._send(409, _error("conflict", "another key holds this id"))
                    return
                if device is None:
                    preshared = body.get("enrollment_token") in fleet.enrollment_tokens
                    device = Device(key, "accepted" if preshared else "pending")
                    device.attributes = dict(body.get("attributes") or {})
                    fleet.devices[device_id] = device
                answer: dict[str, Any] = {
                    "status": device.status,
                    "poll_interval_s": fleet.poll_interval_s,
                }
                if device.status == "accepted":
                    answer["fleet_public_key"] = fleet.public_key
                    if not device.collected:
                        answer["device_token"] = fleet.new_token(device_id)
                        device.collected = True
            self._send(201, answer)

        def _token(self, device_id: str, body: dict[str, Any]) -> None:
            with fleet.lock:
                device = fleet.devices.get(device_id)
                if device is None:
                    self._send(404, _error("not_found", device_id))
                    return
                timestamp = int(body.get("timestamp", 0))
                try:
                    Ed25519PublicKey.from_public_bytes(base64.b64decode(device.public_key)).verify(
                        base64.b64decode(str(body.get("signature", ""))),
                        f"{device_id}:{timestamp}".encode(),
                    )
                except (InvalidSignature, ValueError):
                    self._send(401, _error("unauthenticated", "bad signature"))
                    return
                if abs(timestamp - time.time() * 1000) > 300_000:
                    self._send(401, _error("unauthenticated", "timestamp too far off"))
                    return
                if device.status != "accepted":
                    self._send(403, _error("permission_denied", f"device is {device.status}"))
                    return
                token = fleet.new_token(device_id)
                device.collected = True
            self._send(
                200,
                {
                    "device_token": token,
                    "fleet_public_key": fleet.public_key,
                    "poll_interval_s": fleet.poll_interval_s,
                },
            )

        def _checkin(self, device: str, body: dict[str, Any]) -> None:
            with fleet.lock:
                fleet.checkins.append((device, body))
                assignment = fleet.assignments.get(device)
                update = body.get("update") or {}
                if assignment is not None and update.get("rollout") == assignment["rollout"]:
                    del fleet.assignments[device]  # the device has it
                    assignment = None
            self._send(
                200,
                {
                    "poll_interval_s": fleet.poll_interval_s,
                    "jitter_s": fleet.jitter_s,
                    "assignment": assignment,
                },
            )

        def do_GET(self) -> None:
            if self._offline():
                return
            m = re.fullmatch(
                r"/api/v1/device/releases/([^/]+)/(manifest\.json|manifest\.sig|files/.+)",
                self.path,
            )
            if m is None:
                self._send(404, _error("not_found", self.path))
                return
            device = self._device()
            if device is None:
                return
            release_id, what = m.group(1), m.group(2)
            with fleet.lock:
                allowed = release_id in fleet.allowed.get(device, set())
                release = fleet.releases.get(release_id)
            if not allowed or release is None:
                self._send(403, _error("permission_denied", "release not assigned"))
                return
            if what == "manifest.json":
                self._send(200, release.manifest)
            elif what == "manifest.sig":
                self._send(200, release.signature, "application/octet-stream")
            else:
                self._file(device, release_id, release, unquote(what[len("files/") :]))

        def _file(self, device: str, release_id: str, release: Release, path: str) -> None:
            data = release.files.get(path)
            if fleet.files_unavailable:
                self._send(503, _error("backend_unavailable", "file store offline"))
                return
            if data is None:
                self._send(404, _error("not_found", path))
                return
            header = self.headers.get("Range")
            start = 0
            if header:
                m = re.fullmatch(r"bytes=(\d+)-", header)
                if m is None or int(m.group(1)) >= len(data):
                    self._send(416, _error("range", header))
                    return
                start = int(m.group(1))
            body = data[start:]
            with fleet.lock:
                cut = fleet.cut.pop((release_id, path), None)
                stall = fleet.stall.pop((release_id, path), None)
            if stall is not None:
                cut = stall
            sent = body if cut is None else body[:cut]
            with fleet.lock:
                fleet.file_requests.append(
                    {
                        "device": device,
                        "release": release_id,
                        "path": path,
                        "range": header,
                        "sent": len(sent),
                    }
                )
            self.send_response(206 if header else 200)
            self.send_header("Content-Type", "application/octet-stream")
            if fleet.omit_length:
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(body)))
            if header:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            self.wfile.write(sent)
            if cut is not None:
                self.wfile.flush()
                if stall is not None:
                    fleet.unstall.wait(60)
                self.close_connection = True

    return Handler
