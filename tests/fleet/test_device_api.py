"""The device protocol over REST (docs/fleet-protocol.md), in-process through ASGI: enroll,
accept, token, check-in, assignment, signed bundle download with resume and delta, reports,
gates, the next wave, rollback; and what a device token can and cannot reach."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgeloop import governance
from edgeloop.agent import Agent as DeviceAgent
from edgeloop.agent import Request as AgentRequest
from edgeloop.fleet.bundle import delta, load_public_key, verify_file, verify_manifest
from edgeloop.server import create_app
from edgeloop.workspace import Workspace
from tests._asgi import asgi_client
from tests.fleet._fleet import FakeDevice, register_version

API = "/api/v1"
ONNX = b"the same onnx file in both versions " * 40


@dataclass
class Server:
    ws: Workspace
    client: httpx.Client
    admin: str

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("/") and path.startswith(API) else f"{API}{path}"
        return self.client.request(method, url, headers=headers, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = self.call(method, path, token or self.admin, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture
def server(make_workspace: Callable[..., Workspace]) -> Iterator[Server]:
    ws = make_workspace()
    _, admin = governance.create_token(ws, "admin", "admin")
    with asgi_client(create_app(workspace=ws, auth=True)) as client:
        yield Server(ws, client, admin)


@dataclass
class Agent:
    """The device side, as the agent does it, over HTTP."""

    server: Server
    device: FakeDevice
    fleet_key: str = ""
    manifest: dict[str, Any] | None = None  # of the release in its active slot

    @property
    def id(self) -> str:
        return self.device.id

    def enroll(self, enrollment_token: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {
            "id": self.id,
            "public_key": self.device.public_key,
            "attributes": self.device.attributes(),
        }
        if enrollment_token:
            body["enrollment_token"] = enrollment_token
        return self.server.call("POST", "/devices/enroll", json=body)

    def collect(self) -> httpx.Response:
        timestamp = int(time.time() * 1000)
        body = {"timestamp": timestamp, "signature": self.device.sign(timestamp)}
        response = self.server.call("POST", f"/devices/{self.id}/token", json=body)
        if response.status_code == 200:
            self.device.token = response.json()["device_token"]
            self.fleet_key = response.json()["fleet_public_key"]
        return response

    def checkin(self, update: dict[str, Any] | None = None) -> dict[str, Any]:
        release = self.device.release
        body: dict[str, Any] = {
            "firmware": "1.0",
            "slots": {"a": {"release": release, "bundle_digest": "x"} if release else None},
            "active": "a",
            "future_field": True,  # newer agents may send more
        }
        if update:
            body["update"] = update
        return dict(self.server.ok("POST", "/device/checkin", self.device.token, json=body))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.server.call("GET", url, self.device.token, **kwargs)

    def install(self, assignment: dict[str, Any], *, fail: bool = False) -> int:
        """Download (resuming once, reusing unchanged files), verify and report; returns the
        bytes saved by delta transfer."""
        rollout, release = assignment["rollout"], assignment["release"]

        def report(state: str, **extra: Any) -> dict[str, Any]:
            update = {"rollout": rollout, "release": release, "state": state, **extra}
            return self.checkin(update)

        raw = self.get(assignment["manifest_url"]).content
        signature = self.get(assignment["signature_url"]).content
        manifest = verify_manifest(raw, signature, load_public_key(self.fleet_key))
        plan = delta(self.manifest, manifest)
        report("downloading", bytes_saved=plan.bytes_saved)
        downloaded = 0
        for path in plan.fetch:
            url = assignment["files_url"] + path
            size = manifest["files"][path]["size"]
            head = self.get(url, headers={"Range": f"bytes=0-{size // 2 - 1}"})
            tail = self.get(url, headers={"Range": f"bytes={size // 2}-"})
            assert (head.status_code, tail.status_code) == (206, 206)
            assert tail.headers["content-range"] == f"bytes {size // 2}-{size - 1}/{size}"
            verify_file(manifest, path, head.content + tail.content)
            downloaded += size
        report("downloaded", bytes_downloaded=downloaded, bytes_saved=plan.bytes_saved)
        report("installing")
        report("verifying")
        if fail:
            report("failed", reason="self-test")
            return plan.bytes_saved
        self.device.release, self.manifest = release, manifest
        report("healthy", bytes_downloaded=downloaded, bytes_saved=plan.bytes_saved)
        return plan.bytes_saved


def _fleet(server: Server, n: int) -> tuple[str, str, list[Agent]]:
    ws = server.ws
    old_version = register_version(ws, seed=1, onnx=ONNX)
    new_version = register_version(ws, seed=2, onnx=ONNX)
    old = server.ok(
        "POST", "/releases", json={"model": "pump", "version": old_version, "target": "rpi4"}
    )
    new = server.ok(
        "POST", "/releases", json={"model": "pump", "version": new_version, "target": "rpi4"}
    )
    agents = []
    for i in range(n):
        agent = Agent(server, FakeDevice(f"pump-{i:04d}"))
        response = agent.enroll()
        assert (response.status_code, response.json()) == (
            201,
            {"status": "pending", "poll_interval_s": 30},
        )
        assert agent.collect().status_code == 403  # pending
        server.ok("POST", f"/devices/{agent.id}/accept", json={"reason": "serial checked"})
        assert agent.collect().status_code == 200
        # the device already runs the old release (installed at the factory)
        agent.device.release = old["id"]
        agent.manifest = server.ok("GET", f"/releases/{old['id']}/manifest.json")
        assert agent.checkin()["assignment"] is None
        agents.append(agent)
    server.ok("POST", "/device-groups", json={"name": "plant-3", "query": "site=plant-3"})
    return old["id"], new["id"], agents


def test_a_rollout_end_to_end_over_rest(server: Server) -> None:
    old, new, agents = _fleet(server, 4)
    rollout = server.ok(
        "POST",
        "/rollouts",
        json={"release": new, "group": "plant-3", "waves": "50,100", "bake": "0s"},
    )
    assert (rollout["state"], rollout["counts"]) == ("running", {"assigned": 2})
    saved = 0
    first = {a.id: a.checkin()["assignment"] for a in agents}
    assert sum(1 for a in first.values() if a) == 2
    for agent in agents:
        assignment = first[agent.id]
        if assignment:
            assert assignment["rollback"] is False and assignment["max_bundle_bytes"] > 0
            assert assignment["manifest_url"] == f"{API}/device/releases/{new}/manifest.json"
            saved += agent.install(assignment)
    assert saved == 2 * len(ONNX)  # model.onnx did not change: delta transfer skipped it
    step = server.ok("POST", "/fleet/reconcile")
    assert [(t["to_state"], t["wave"]) for t in step["transitions"]] == [("running", 1)]
    for agent in agents:
        assignment = agent.checkin()["assignment"]
        assert (assignment is None) == (first[agent.id] is not None)
        if assignment:
            saved += agent.install(assignment)
    step = server.ok("POST", "/fleet/reconcile")
    assert [t["to_state"] for t in step["transitions"]] == ["completed"]
    shown = server.ok("GET", f"/rollouts/{rollout['id']}")
    assert shown["state"] == "completed" and shown["counts"] == {"healthy": 4}
    assert shown["bytes_saved"] == saved == 4 * len(ONNX)
    assert shown["bytes_downloaded"] > 0
    events = server.ok("GET", f"/rollouts/{rollout['id']}/events")
    assert [e["to_state"] for e in events] == ["draft", "running", "running", "completed"]
    assert events[0]["actor"] == "token:admin" and events[2]["actor"] == "reconcile:token:admin"
    device = server.ok("GET", f"/devices/{agents[0].id}")
    assert device["current_release"] == new and device["health"]["update"]["state"] == "healthy"
    telemetry = {
        "window_start": 1,
        "window_end": 2,
        "release": new,
        "inference_count": 10,
        "error_count": 1,
        "latency_ms": {"edges": [1, 2], "counts": [5, 5, 0]},
        "latency_p95_ms": 1.9,
    }
    response = agents[0].server.call(
        "POST", "/device/telemetry", agents[0].device.token, json=telemetry
    )
    assert (response.status_code, response.json()) == (202, {"stored": True})
    assert server.ok("GET", f"/devices/{agents[0].id}")["health"]["error_rate"] == 0.1
    del old


def test_a_breach_sends_every_assigned_device_back(server: Server) -> None:
    old, new, agents = _fleet(server, 4)
    rollout = server.ok(
        "POST",
        "/rollouts",
        json={
            "release": new,
            "group": "plant-3",
            "waves": [50, 100],
            "bake": "1h",
            "max_failure": "10%",
        },
    )
    chosen = [(a, a.checkin()["assignment"]) for a in agents]
    chosen = [(a, x) for a, x in chosen if x]
    chosen[0][0].install(chosen[0][1], fail=True)
    chosen[1][0].install(chosen[1][1])
    step = server.ok("POST", "/fleet/reconcile")
    assert [t["to_state"] for t in step["transitions"]] == ["rolled-back"]
    assert step["transitions"][0]["evidence"]["share_failed"] == 0.5
    back = {a.id: a.checkin()["assignment"] for a in agents}
    assert back[chosen[0][0].id] is None  # failed: already on its previous release
    assignment = back[chosen[1][0].id]
    assert assignment is not None
    assert (assignment["release"], assignment["rollback"]) == (old, True)
    assert sum(1 for x in back.values() if x) == 1  # devices never assigned get nothing
    chosen[1][0].install(assignment)
    devices = server.ok("GET", f"/rollouts/{rollout['id']}/devices")
    assert {d["state"] for d in devices} == {"rolled-back"}
    assert all(a.device.release == old for a in agents)


def test_a_device_token_reaches_only_its_own_device_endpoints(server: Server) -> None:
    _, new, agents = _fleet(server, 2)
    server.ok("POST", "/device-groups", json={"name": "one", "members": [agents[0].id]})
    server.ok("POST", "/rollouts", json={"release": new, "group": "one", "waves": "100"})
    assignment = agents[0].checkin()["assignment"]
    assert assignment is not None
    mine, other = agents
    assert mine.get(assignment["manifest_url"]).status_code == 200
    for url in (
        assignment["manifest_url"],
        assignment["signature_url"],
        assignment["files_url"] + "model.int8.npz",
    ):
        response = other.get(url)  # another device's release
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "permission_denied"
    token = mine.device.token
    for method, path in (
        ("GET", "/devices"),
        ("GET", f"/devices/{other.id}"),
        ("POST", f"/devices/{other.id}/accept"),
        ("GET", "/rollouts"),
        ("GET", f"/releases/{new}/manifest.json"),
        ("POST", "/fleet/reconcile"),
        ("GET", "/experiments"),
        ("GET", "/tokens"),
    ):
        response = server.call(method, path, token, json={})
        assert response.status_code == 403, (method, path, response.text)
    checkin = {"slots": {}, "active": None}
    assert server.call("POST", "/device/checkin", server.admin, json=checkin).status_code == 403
    assert server.call("POST", "/device/checkin", None, json=checkin).status_code == 401
    bad = server.call("POST", "/device/checkin", "eld_" + "0" * 12 + "_" + "x" * 30, json=checkin)
    assert bad.status_code == 401
    # a report about another device's rollout changes nothing
    update = {"rollout": assignment["rollout"], "release": new, "state": "failed"}
    assert other.checkin(update)["assignment"] is None
    devices = server.ok("GET", f"/rollouts/{assignment['rollout']}/devices")
    assert [(d["device"], d["state"]) for d in devices] == [(mine.id, "assigned")]


def test_files_answer_ranges(server: Server) -> None:
    _, new, agents = _fleet(server, 1)
    server.ok("POST", "/rollouts", json={"release": new, "group": "plant-3", "waves": "100"})
    assignment = agents[0].checkin()["assignment"]
    url = assignment["files_url"] + "model.onnx"
    whole = agents[0].get(url)
    assert whole.status_code == 200 and whole.content == ONNX
    assert whole.headers["accept-ranges"] == "bytes"
    part = agents[0].get(url, headers={"Range": "bytes=10-"})
    assert (part.status_code, part.content) == (206, ONNX[10:])
    assert part.headers["content-range"] == f"bytes 10-{len(ONNX) - 1}/{len(ONNX)}"
    suffix = agents[0].get(url, headers={"Range": "bytes=-5"})
    assert (suffix.status_code, suffix.content) == (206, ONNX[-5:])
    beyond = agents[0].get(url, headers={"Range": f"bytes={len(ONNX)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(ONNX)}"
    assert agents[0].get(url, headers={"Range": "bytes=1-2,5-6"}).status_code == 200
    assert agents[0].get(assignment["files_url"] + "nope").status_code == 404
    signature = agents[0].get(assignment["signature_url"])
    assert signature.headers["content-type"] == "application/octet-stream"
    assert len(signature.content) == 64


def test_enrollment_answers_as_the_protocol_says(server: Server) -> None:
    created = server.ok("POST", "/fleet/enrollment-tokens", json={"name": "plant-3"})
    agent = Agent(server, FakeDevice("pump-9"))
    response = agent.enroll(created["token"])
    body = response.json()
    assert response.status_code == 201 and body["status"] == "accepted"
    assert body["device_token"].startswith("eld_") and body["fleet_public_key"]
    again = agent.enroll(created["token"]).json()
    assert again == {
        "status": "accepted",
        "poll_interval_s": 30,
        "fleet_public_key": body["fleet_public_key"],
    }
    impostor = Agent(server, FakeDevice("pump-9"))
    conflict = impostor.enroll()
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    assert impostor.collect().status_code == 401  # not the enrolled key
    assert Agent(server, FakeDevice("ghost")).collect().status_code == 404
    stranger = Agent(server, FakeDevice("pump-10")).enroll("ele_000000000000_" + "x" * 30)
    assert stranger.status_code == 401
    bad = server.call("POST", "/devices/enroll", json={"id": "x", "public_key": "nope"})
    assert bad.status_code == 400
    agent.device.token = body["device_token"]
    wrong = server.call(
        "POST",
        "/device/checkin",
        agent.device.token,
        json={"update": {"rollout": "ro_x", "release": "rel_x", "state": "exploded"}},
    )
    assert wrong.status_code == 400 and "state" in wrong.json()["error"]["message"]
    tokens = server.ok("GET", "/fleet/enrollment-tokens")
    assert [t["uses"] for t in tokens] == [1]


# ---- the real device agent against this server ----------------------------------------------


class _AsgiResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._body = io.BytesIO(response.content)

    @property
    def status(self) -> int:
        return self._response.status_code

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    def read(self, amount: int) -> bytes:
        return self._body.read(amount)

    def close(self) -> None:
        self._body.close()


def _transport(client: httpx.Client) -> Callable[[AgentRequest], _AsgiResponse]:
    def send(request: AgentRequest) -> _AsgiResponse:
        response = client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        return _AsgiResponse(response)

    return send


def test_the_device_agent_follows_a_rollout_and_its_rollback(
    server: Server, tmp_path: Path
) -> None:
    ws = server.ws
    versions = [register_version(ws, seed=seed, onnx=ONNX) for seed in (1, 2)]
    old, new = (
        server.ok("POST", "/releases", json={"model": "pump", "version": v, "target": "rpi4"})
        for v in versions
    )
    enrollment = server.ok("POST", "/fleet/enrollment-tokens", json={"max_uses": 3})["token"]
    agents = [
        DeviceAgent(
            tmp_path / f"pump-{i}",
            "http://testserver",
            target="rpi4",
            device_id=f"pump-{i}",
            attributes={"site": "plant-3", "firmware": "1.0"},
            enrollment_token=enrollment,
            http=_transport(server.client),
        )
        for i in range(3)
    ]
    for agent in agents:  # enroll (accepted by the pre-shared token) and check in
        assert agent.run_once() == {"poll_interval_s": 30, "jitter_s": 5, "assignment": None}
    server.ok("POST", "/device-groups", json={"name": "plant-3", "query": "site=plant-3"})

    def roll_out(release: str, waves: str) -> str:
        rollout = server.ok(
            "POST",
            "/rollouts",
            json={"release": release, "group": "plant-3", "waves": waves, "bake": "0s"},
        )
        for _ in range(3):
            for agent in agents:
                agent.run_once()
            server.ok("POST", "/fleet/reconcile")
        return str(rollout["id"])

    first = roll_out(old["id"], "100")
    assert server.ok("GET", f"/rollouts/{first}")["state"] == "completed"
    assert {a.model.release for a in agents if a.model} == {old["id"]}
    second = roll_out(new["id"], "34,100")
    shown = server.ok("GET", f"/rollouts/{second}")
    assert (shown["state"], shown["counts"]) == ("completed", {"healthy": 3})
    assert shown["bytes_saved"] == 3 * len(ONNX)  # the agents reused model.onnx
    assert [e["to_state"] for e in server.ok("GET", f"/rollouts/{second}/events")] == [
        "draft",
        "running",
        "running",
        "completed",
    ]
    device = server.ok("GET", "/devices/pump-0")
    assert device["current_release"] == new["id"] and device["firmware"] == "1.0"
    server.ok("POST", f"/rollouts/{second}/rollback", json={"reason": "field reports"})
    for agent in agents:
        agent.run_once()
    assert {a.model.release for a in agents if a.model} == {old["id"]}
    devices = server.ok("GET", f"/rollouts/{second}/devices")
    assert {(d["state"], d["rollback"]) for d in devices} == {("rolled-back", True)}


def test_device_tokens_are_refused_off_the_device_routes_even_without_auth(
    server: Server,
) -> None:
    agent = Agent(server, FakeDevice("pump-1"))
    token = server.ok("POST", "/fleet/enrollment-tokens", json={})["token"]
    agent.device.token = agent.enroll(token).json()["device_token"]
    with asgi_client(create_app(workspace=server.ws, auth=False)) as open_client:
        headers = {"Authorization": f"Bearer {agent.device.token}"}
        for path in ("/experiments", "/devices", "/rollouts", "/models"):
            assert open_client.get(f"{API}{path}", headers=headers).status_code == 403, path
        assert open_client.get(f"{API}/devices").status_code == 200  # no token: auth is off
        checkin = open_client.post(f"{API}/device/checkin", headers=headers, json={})
        assert checkin.status_code == 200
        assert open_client.post(f"{API}/device/checkin", json={}).status_code == 401
