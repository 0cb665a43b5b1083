"""The device check-in as the server answers it: the path below FastAPI's routing answers
like the documented route (the same answers, errors and metrics), devices' ``last_seen`` is
written behind and flushed at shutdown, and ``edgeloop server --workers 2`` serves devices."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._asgi import asgi_client
from tests.fleet._fleet import FakeDevice

from edgeloop import governance
from edgeloop.config import load_settings
from edgeloop.fleet import _checkin, _devices
from edgeloop.server import _fleet_routes, create_app
from edgeloop.store import DeviceStore
from edgeloop.workspace import Workspace, now_ms

API = "/api/v1"
CHECKIN = f"{API}/device/checkin"
BODY = {"firmware": "1.0", "slots": {"a": None}, "active": "a"}


def _enroll(ws: Workspace, device: FakeDevice) -> str:
    _, token = _devices.create_enrollment_token(ws, "tests")
    grant = _devices.enroll_device(ws, device.id, device.public_key, device.attributes(), token)
    assert grant.device_token
    return grant.device_token


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace()


@pytest.fixture
def client(ws: Workspace) -> Iterator[httpx.Client]:
    with asgi_client(create_app(workspace=ws, auth=True)) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_check_in_is_answered_as_the_protocol_says(ws: Workspace, client: httpx.Client) -> None:
    token = _enroll(ws, FakeDevice("pump-0001"))
    for _ in range(2):  # the first stores the inventory, the second is a heartbeat
        response = client.post(CHECKIN, json=BODY, headers=_bearer(token))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"poll_interval_s": 30, "jitter_s": 5, "assignment": None}
    metrics = client.get("/metrics").text
    assert 'route="/api/v1/device/checkin",status="200"' in metrics


def test_check_in_errors_have_the_usual_body(ws: Workspace, client: httpx.Client) -> None:
    token = _enroll(ws, FakeDevice("pump-0001"))
    _, user = governance.create_token(ws, "someone", "viewer")
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        (BODY, {}, 401, "unauthenticated"),
        (BODY, _bearer("eld_0123456789ab_" + "x" * 30), 401, "unauthenticated"),
        (BODY, _bearer(user), 403, "permission_denied"),
        ({**BODY, "active": "a" * 20}, _bearer(token), 400, "validation_failed"),
        ({**BODY, "update": {"state": "flying"}}, _bearer(token), 400, "validation_failed"),
    ]
    for body, headers, status, code in cases:
        response = client.post(CHECKIN, json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert (error["code"], set(error)) == (code, {"code", "message", "details"})
    response = client.post(CHECKIN, content=b"{not json", headers=_bearer(token))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_failed")
    response = client.post(CHECKIN, json=["a list"], headers=_bearer(token))
    assert response.status_code == 400
    _devices.reject_device(ws, "pump-0001")
    response = client.post(CHECKIN, json=BODY, headers=_bearer(token))
    assert response.status_code == 401  # its token is gone at once


def test_a_body_without_a_length_goes_the_documented_route(
    ws: Workspace, client: httpx.Client
) -> None:
    token = _enroll(ws, FakeDevice("pump-0001"))

    def chunks() -> Iterator[bytes]:
        yield b'{"slots": {}, '
        yield b'"active": null}'

    response = client.post(CHECKIN, content=chunks(), headers=_bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["assignment"] is None


def test_last_seen_is_written_behind_and_flushed_at_shutdown(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _enroll(ws, FakeDevice("pump-0001"))

    class Slow(_checkin.LastSeenWriter):  # no periodic flush during the test
        def __init__(self, workspace: Workspace) -> None:
            super().__init__(workspace, every_s=3600.0)

    monkeypatch.setattr(_fleet_routes, "LastSeenWriter", Slow)
    app = create_app(workspace=ws, auth=True)
    started = now_ms()

    async def scenario() -> int:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(3):
                    response = await c.post(CHECKIN, json=BODY, headers=_bearer(token))
                    assert response.status_code == 200, response.text
            return len(app.state.last_seen)

    assert asyncio.run(scenario()) == 1  # waiting in memory, not yet written
    with ws.db.read() as s:
        seen = DeviceStore(s).get("pump-0001").last_seen
    assert seen is not None and seen >= started  # written when the app shut down


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_server_serves_devices_with_several_workers(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    ws = Workspace.open(load_settings(home=str(home)))
    try:
        token = _enroll(ws, FakeDevice("pump-0001"))
    finally:
        ws.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["EDGELOOP_HOME"] = str(home)
    port = _free_port()
    cmd = [sys.executable, "-m", "edgeloop", "server", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [*cmd, "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as c:
            for _ in range(4):  # spread over the workers
                response = c.post(CHECKIN, json=BODY, headers=_bearer(token))
                assert response.status_code == 200, response.text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "2 workers" in output
    ws = Workspace.open(load_settings(home=str(home)))
    try:
        with ws.db.read() as s:
            assert DeviceStore(s).get("pump-0001").last_seen is not None
    finally:
        ws.close()
