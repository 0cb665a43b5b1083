"""Alerts over REST (rules CRUD, alerts, ack and resolve, 4xx on bad input, roles) and from
the command line (``edgeloop alerts ...``, ``edgeloop monitors tick``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeloop import governance, monitors
from edgeloop.cli import app
from edgeloop.client import set_backend
from edgeloop.config import load_settings
from edgeloop.errors import EdgeloopError
from edgeloop.server import create_app
from edgeloop.workspace import Principal, Workspace
from tests._asgi import asgi_client
from tests.monitors._alerting import add_report, at
from tests.monitors._monitors import T0, make_reference, register_version

API = "/api/v1"


@pytest.fixture
def client(ws: Workspace) -> Iterator[httpx.Client]:
    monitors.create_monitor(ws, "vib", model="pump", window="1h", start=T0, now=T0)
    with asgi_client(create_app(workspace=ws)) as c:
        yield c


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"]
    return dict(body)


def test_rules_crud_over_rest(client: httpx.Client) -> None:
    body = {
        "when": "drift_share>=0.5 for 2 windows",
        "monitor": "vib",
        "actions": [
            "retrain:pump-train",
            {"kind": "notify", "url": "https://h.example/x", "secret": "s"},
        ],
        "cooldown": "6h",
    }
    created = client.post(f"{API}/alerts/rules", json=body)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["when"], rule["cooldown_ms"], rule["source"]) == (
        "drift_share >= 0.5 for 2 windows",
        6 * 3_600_000,
        "monitor",
    )
    assert rule["actions"][1]["secret"] == "***"
    assert [r["id"] for r in client.get(f"{API}/alerts/rules").json()] == [rule["id"]]
    assert client.get(f"{API}/alerts/rules", params={"monitor": "other"}).json() == []
    assert client.get(f"{API}/alerts/rules/{rule['id']}").json()["id"] == rule["id"]
    patched = client.patch(f"{API}/alerts/rules/{rule['id']}", json={"enabled": False})
    assert patched.json()["enabled"] is False
    assert client.delete(f"{API}/alerts/rules/{rule['id']}").status_code == 200
    _error(client.get(f"{API}/alerts/rules/{rule['id']}"), 404, "not_found")


def test_bad_rules_are_4xx_with_a_message(client: httpx.Client) -> None:
    url = f"{API}/alerts/rules"
    syntax = _error(
        client.post(url, json={"when": "drift_share => 0.5", "monitor": "vib"}),
        400,
        "filter_syntax",
    )
    assert syntax["details"] == {"position": 12, "filter": "drift_share => 0.5", "field": "when"}
    _error(client.post(url, json={"when": "accuracy < 0.8", "monitor": "nope"}), 404, "not_found")
    _error(client.post(url, json={"when": "accuracy < 0.8"}), 400, "validation_failed")
    _error(
        client.post(url, json={"when": "accuracy < 0.8", "monitor": "vib", "colour": "red"}),
        400,
        "validation_failed",
    )
    bad_action = {"when": "accuracy < 0.8", "monitor": "vib", "actions": ["page:ops"]}
    assert "retrain:PIPELINE" in str(
        _error(client.post(url, json=bad_action), 400, "validation_failed")["message"]
    )
    _error(
        client.post(url, json={"when": "accuracy < 0.8", "monitor": "vib", "cooldown": "-1h"}),
        400,
        "validation_failed",
    )
    _error(client.patch(f"{API}/alerts/rules/rule_nope", json={"enabled": True}), 404, "not_found")
    assert client.get(f"{API}/alerts/rules").json() == []


def test_alerts_over_rest(ws: Workspace, client: httpx.Client) -> None:
    rule = client.post(
        f"{API}/alerts/rules",
        json={"when": "accuracy < 0.85", "monitor": "vib", "actions": ["notify"]},
    ).json()
    add_report(ws, "vib", 0, accuracy=0.5)
    report = monitors.tick(ws, now=at(0))
    (alert_id,) = report.evaluation.opened
    listed = client.get(f"{API}/alerts", params={"status": "open"}).json()
    assert [a["id"] for a in listed["items"]] == [alert_id] and listed["next_cursor"] is None
    assert client.get(f"{API}/alerts", params={"rule": "other"}).json()["items"] == []
    shown = client.get(f"{API}/alerts/{alert_id}").json()
    assert shown["rule"] == rule["id"] and shown["evidence"]["reports"]
    assert [(a["kind"], a["status"]) for a in shown["actions"]] == [("notify", "succeeded")]
    assert client.post(f"{API}/alerts/{alert_id}/ack").json()["status"] == "acknowledged"
    resolved = client.post(f"{API}/alerts/{alert_id}/resolve", json={"reason": "fixed"})
    assert (resolved.json()["status"], resolved.json()["resolve_reason"]) == ("resolved", "fixed")
    _error(client.post(f"{API}/alerts/{alert_id}/resolve"), 409, "conflict")
    _error(client.post(f"{API}/alerts/{alert_id}/ack"), 409, "conflict")
    _error(client.get(f"{API}/alerts/alert_nope"), 404, "not_found")
    _error(client.get(f"{API}/alerts", params={"status": "burning"}), 400, "validation_failed")
    _error(client.get(f"{API}/alerts", params={"limit": 0}), 400, "validation_failed")


def test_viewers_read_and_editors_change(ws: Workspace) -> None:
    monitors.create_monitor(ws, "vib", model="pump", window="1h", start=T0, now=T0)
    admin = ws.acting_as(Principal("test", "admin"))
    viewer = {"Authorization": f"Bearer {governance.create_token(admin, 'v', 'viewer')[1]}"}
    editor = {"Authorization": f"Bearer {governance.create_token(admin, 'e', 'editor')[1]}"}
    body = {"when": "accuracy < 0.8", "monitor": "vib"}
    with asgi_client(create_app(workspace=ws, auth=True)) as c:
        _error(c.post(f"{API}/alerts/rules", json=body, headers=viewer), 403, "permission_denied")
        created = c.post(f"{API}/alerts/rules", json=body, headers=editor).json()
        assert created["created_by"] == "token:e"
        assert c.get(f"{API}/alerts", headers=viewer).status_code == 200
        _error(c.get(f"{API}/alerts"), 401, "unauthenticated")


# ---- the command line --------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    set_backend(None)
    try:
        app(args=list(args), prog_name="edgeloop")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except EdgeloopError as exc:  # what edgeloop.cli.main turns into one line and a code
        print(f"error: {exc.message}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def _ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


def test_the_alerts_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    ws = Workspace.open(load_settings())
    try:
        register_version(ws, reference=make_reference())
        monitors.create_monitor(ws, "vib", model="pump", window="1h", start=T0, now=T0)
        add_report(ws, "vib", 0, drift_share=0.7)
        add_report(ws, "vib", 1, drift_share=0.8)
    finally:
        ws.close()
    out = _ok(
        capsys,
        "alerts", "rules", "create", "--monitor", "vib",
        "--when", "drift_share >= 0.5 for 2 windows",
        "--action", "notify", "--action", "retrain:pump-train", "--cooldown", "6h",
    )  # fmt: skip
    assert "drift_share >= 0.5 for 2 windows" in out and "retrain:pump-train" in out
    (rule,) = json.loads(_ok(capsys, "alerts", "rules", "list", "--json"))
    assert rule["cooldown_ms"] == 6 * 3_600_000
    assert "cool-down" in _ok(capsys, "alerts", "rules", "list")
    code, _, err = run(
        capsys, "alerts", "rules", "create", "--monitor", "vib", "--when", "drift >= 1"
    )
    assert code == 2 and "metric 'drift' is not known" in err and "^" in err
    code, _, err = run(
        capsys,
        "alerts",
        "rules",
        "create",
        "--monitor",
        "vib",
        "--when",
        "accuracy < 1",
        "--action",
        "sms:1",
    )
    assert code == 2 and "is not one of" in err
    ticked = _ok(capsys, "monitors", "tick")
    assert "1 opened" in ticked and "notify: succeeded" in ticked
    (alert,) = json.loads(_ok(capsys, "alerts", "list", "--json"))
    assert alert["status"] == "open" and alert["rule"] == rule["id"]
    assert alert["id"] in _ok(capsys, "alerts", "list", "--status", "active")
    shown = _ok(capsys, "alerts", "show", alert["id"])
    assert "evidence" in shown and "retrain" in shown and "succeeded" in shown
    assert json.loads(_ok(capsys, "alerts", "show", alert["id"], "--json"))["actions"]
    assert "acknowledged" in _ok(capsys, "alerts", "ack", alert["id"])
    assert "resolved" in _ok(capsys, "alerts", "resolve", alert["id"], "--reason", "ok")
    code, _, err = run(capsys, "alerts", "resolve", alert["id"])
    assert code == 4 and "already resolved" in err
    assert "disabled" in _ok(capsys, "alerts", "rules", "disable", rule["id"])
    assert "deleted" in _ok(capsys, "alerts", "rules", "delete", rule["id"])
    assert json.loads(_ok(capsys, "monitors", "tick", "--json"))["evaluation"]["rules"] == 0
