"""Data collection over REST, in-process through ASGI: the admin routes, the device upload
route and who may call them, and the device agent answering a request end to end (labels
from local feedback, and no duplicate rows after a crash in the middle of an upload)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from edgeloop import datasets, fleet, governance
from edgeloop.agent import Agent, Request
from edgeloop.fleet import _devices
from edgeloop.server import create_app
from edgeloop.workspace import Workspace
from tests._asgi import asgi_client
from tests.fleet._collect import AXES, LENGTH, add_windows, rows
from tests.fleet._fleet import FakeDevice

API = "/api/v1"


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self._response, self._body = response, io.BytesIO(response.content)

    @property
    def status(self) -> int:
        return self._response.status_code

    def header(self, name: str) -> str | None:
        value = self._response.headers.get(name)
        return None if value is None else str(value)

    def read(self, amount: int) -> bytes:
        return self._body.read(amount)

    def close(self) -> None:
        self._body.close()


class Link:
    """The agent's transport to the app; ``lose_answers`` drops that many responses after
    the server handled the request (a crash or a cut between upload and acknowledgement)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client, self.lose_answers = client, 0
        self.paths: list[str] = []

    def __call__(self, request: Request) -> _Response:
        response = self.client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        self.paths.append(request.url.split(API, 1)[-1])
        if self.lose_answers and request.url.endswith("/device/samples"):
            self.lose_answers -= 1
            raise ConnectionResetError("the connection broke before the answer")
        return _Response(response)


@pytest.fixture
def app(make_workspace: Callable[..., Workspace]) -> Iterator[tuple[Workspace, httpx.Client, str]]:
    ws = make_workspace()
    _, admin = governance.create_token(ws, "admin", "admin")
    with asgi_client(create_app(workspace=ws, auth=True)) as client:
        yield ws, client, admin


def _enroll(client: httpx.Client, token: str, device: FakeDevice, opt_in: bool) -> str:
    body = {
        "id": device.id,
        "public_key": device.public_key,
        "enrollment_token": token,
        "attributes": device.attributes(),
        "data_collection": opt_in,
    }
    answer = client.post(f"{API}/devices/enroll", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["device_token"])


def test_admin_and_device_routes(app: tuple[Workspace, httpx.Client, str]) -> None:
    ws, client, admin = app
    auth = {"Authorization": f"Bearer {admin}"}
    add_windows(ws)
    _, enrollment = _devices.create_enrollment_token(ws, "t")
    tokens = {f"d{i}": _enroll(client, enrollment, FakeDevice(f"d{i}"), i < 2) for i in range(3)}
    shown = client.get(f"{API}/devices/d0", headers=auth).json()
    assert shown["data_collection"] is True
    made = client.post(
        f"{API}/collections",
        headers=auth,
        json={"dataset": "vib-windows", "devices": 5, "samples_per_device": 2, "reason": "r"},
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert made.json()["chosen"] == 2
    device = {"Authorization": f"Bearer {tokens['d0']}"}
    answer = client.post(f"{API}/device/checkin", headers=device, json={"slots": {}}).json()
    assert answer["collection"]["id"] == cid and answer["collection"]["samples"] == 2
    other = {"Authorization": f"Bearer {tokens['d2']}"}
    assert "collection" not in client.post(f"{API}/device/checkin", headers=other, json={}).json()
    body = {"collection": cid, "upload_id": "u-1", "rows": rows(2, "d0"), "done": True}
    assert client.post(f"{API}/device/samples", headers=other, json=body).status_code == 403
    assert client.post(f"{API}/device/samples", headers=auth, json=body).status_code == 403
    taken = client.post(f"{API}/device/samples", headers=device, json=body)
    assert taken.status_code == 200 and taken.json()["accepted"] == 2
    again = client.post(f"{API}/device/samples", headers=device, json=body).json()
    assert again["duplicate"] is True and again["accepted"] == 0
    bad = {**body, "upload_id": "u-2", "rows": [{**rows(1, "d1")[0], "acc_y": "x"}]}
    refused = client.post(
        f"{API}/device/samples", headers={"Authorization": f"Bearer {tokens['d1']}"}, json=bad
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["field"] == "rows[0].acc_y"
    assert client.get(f"{API}/collections", headers=device).status_code == 403
    listed = client.get(f"{API}/collections", headers=auth).json()["items"]
    assert [c["id"] for c in listed] == [cid] and listed[0]["rows"] == 2
    shown = client.get(f"{API}/collections/{cid}", headers=auth).json()
    assert {d["device"]: d["done"] for d in shown["devices"]} == {"d0": True, "d1": False}
    closed = client.post(f"{API}/collections/{cid}/close", headers=auth).json()
    assert closed["state"] == "closed" and closed["version"] == 2
    assert client.post(f"{API}/collections/{cid}/close", headers=auth).json() == closed
    on = client.post(f"{API}/devices/d2/data-collection", headers=auth, json={"enabled": True})
    assert on.status_code == 403 and "only the device" in on.json()["error"]["message"]
    off = client.post(f"{API}/devices/d0/data-collection", headers=auth, json={"enabled": False})
    assert off.status_code == 200 and off.json()["data_collection"] is False


def _agent(tmp_path: Path, link: Link, token: str, **kwargs: object) -> Agent:
    return Agent(
        tmp_path / "pump-1",
        "http://testserver",
        target="rpi4",
        device_id="pump-1",
        attributes={"site": "plant-3"},
        enrollment_token=token,
        http=link,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_agent_uploads_its_last_windows_once(
    app: tuple[Workspace, httpx.Client, str], tmp_path: Path
) -> None:
    ws, client, _ = app
    add_windows(ws)
    _, enrollment = _devices.create_enrollment_token(ws, "t")
    link = Link(client)
    agent = _agent(tmp_path, link, enrollment, collect_data=True, sample_buffer=6)
    assert agent.run_once() is not None
    assert fleet.get_device(ws, "pump-1").data_collection is True
    windows = np.arange(10 * LENGTH * len(AXES), dtype=np.float32).reshape(10, LENGTH * len(AXES))
    assert agent.samples is not None
    for window in windows:  # what predict keeps, one inference at a time
        agent.samples.append(window[None, :], 1_764_000_000_000)
    assert len(agent.samples) == 6  # bounded: the 6 newest of 10
    assert agent.feedback("10", "imbalance") and not agent.feedback("1", "normal")
    info = fleet.request_collection(ws, dataset="vib-windows", devices=1, samples_per_device=4)
    link.lose_answers = 1  # the upload reaches the server, its answer does not
    agent.run_once()
    assert (tmp_path / "pump-1" / "samples" / "pending.json").exists()
    restarted = _agent(tmp_path, link, enrollment, collect_data=True, sample_buffer=6)
    restarted.run_once()  # sends the same upload again: the server keeps it once
    assert not (tmp_path / "pump-1" / "samples" / "pending.json").exists()
    progress = fleet.get_collection(ws, info.id)
    assert progress.rows == 4 and progress.done == 1
    closed = fleet.close_due_collections(ws)
    assert [c.version for c in closed] == [2]
    _, table = datasets.load_table(ws, "vib-windows")
    added = table.slice(20)
    assert added.num_rows == 1  # only the labelled sample: the dataset's label is not nullable
    assert added.column("label").to_pylist() == ["imbalance"]
    assert added.column("sample_id").to_pylist() == ["pump-1/1764000000000-10"]
    x = np.asarray(added.column("acc_x").to_pylist()[0], dtype=np.float32)
    assert np.array_equal(x, windows[9].reshape(LENGTH, len(AXES))[:, 0])


def test_an_agent_that_did_not_opt_in_keeps_nothing_and_is_not_asked(
    app: tuple[Workspace, httpx.Client, str], tmp_path: Path
) -> None:
    ws, client, _ = app
    add_windows(ws)
    _, enrollment = _devices.create_enrollment_token(ws, "t")
    agent = _agent(tmp_path, Link(client), enrollment)
    response = agent.run_once()
    assert response is not None and "collection" not in response
    assert agent.samples is None and not (tmp_path / "pump-1" / "samples").exists()
    assert fleet.get_device(ws, "pump-1").data_collection is False
    with pytest.raises(Exception, match="opted in"):
        fleet.request_collection(ws, dataset="vib-windows", devices=1, samples_per_device=1)
