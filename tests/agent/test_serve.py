"""The local inference endpoint and the command line."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeloop.agent import Agent, NoModel, main
from edgeloop.agent._cli import parse_attributes
from edgeloop.errors import ValidationFailed
from tests.agent._fake_server import N_FEATURES, FakeFleet
from tests.agent.conftest import ENROLLMENT_TOKEN

X = np.random.default_rng(11).normal(size=(5, N_FEATURES)).astype(np.float32)


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_local_http_predict_and_healthz(fleet: FakeFleet, installed: Callable[..., Agent]) -> None:
    agent = installed()
    with agent.serve(port=0) as server:
        status, body = _call(server.port, "POST", "/predict", {"inputs": X.tolist()})
        assert status == 200
        assert body["predictions"] == fleet.releases["rel_1"].model.predict(X)
        assert body["model_version"] == 1 and body["release"] == "rel_1"

        status, health = _call(server.port, "GET", "/healthz")
        assert status == 200
        assert health["status"] == "ok" and health["model_version"] == 1
        assert health["slot"] == "a" and health["device_id"] == "dev-1"

        status, error = _call(server.port, "POST", "/predict", {"inputs": [[1.0, 2.0]]})
        assert status == 400 and error["error"]["code"] == "validation_failed"
        status, error = _call(server.port, "POST", "/predict", {"rows": []})
        assert status == 400 and "inputs" in error["error"]["message"]
        status, _ = _call(server.port, "GET", "/nowhere")
        assert status == 404
    assert agent.window.inference_count == 2  # one good call, one bad (an error)
    assert agent.window.error_count == 1


def test_without_a_model_the_endpoint_answers_503(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    with pytest.raises(NoModel):
        agent.predict(X)
    with agent.serve(port=0) as server:
        status, body = _call(server.port, "POST", "/predict", {"inputs": X.tolist()})
        assert status == 503 and body["error"]["code"] == "no_model"
        assert _call(server.port, "GET", "/healthz")[0] == 503


def test_cli_once_enrolls_and_installs(
    fleet: FakeFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.add_release("rel_1", 1)
    fleet.enrollment_tokens.add(ENROLLMENT_TOKEN)
    argv = ["--server", fleet.url, "--state", str(tmp_path / "s"), "--target", "rpi4"]
    argv += ["--id", "cli-dev", "--attr", "site=plant-3", "--enrollment-token", ENROLLMENT_TOKEN]
    fleet.devices.clear()
    assert main([*argv, "--once"]) == 0
    fleet.assign("cli-dev", "rel_1")
    assert main([*argv, "--once"]) == 0
    assert fleet.states("cli-dev")[-1] == "healthy"
    assert fleet.devices["cli-dev"].attributes["site"] == "plant-3"
    assert "cli-dev: ok" in capsys.readouterr().out


def test_cli_reports_an_unreachable_server_with_its_exit_code(tmp_path: Path) -> None:
    argv = ["--server", "http://127.0.0.1:9", "--state", str(tmp_path / "s"), "--target", "t"]
    assert main([*argv, "--once"]) == 7


def test_attributes_nest_on_dots() -> None:
    assert parse_attributes(["firmware=1.4.2", "tags.line=b", "tags.cell=4"]) == {
        "firmware": "1.4.2",
        "tags": {"line": "b", "cell": "4"},
    }
    with pytest.raises(ValidationFailed):
        parse_attributes(["novalue"])
