"""``edgeloop devices | groups | releases | rollouts | reconcile`` on a local workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from edgeloop.cli._fleet import devices_app, groups_app, reconcile, releases_app, rollouts_app
from edgeloop.client import set_backend
from edgeloop.config import load_settings
from edgeloop.errors import EdgeloopError
from edgeloop.fleet import _devices
from edgeloop.fleet.bundle import unpack_tar
from edgeloop.workspace import Workspace
from tests.fleet._fleet import FakeDevice, register_version


def _app() -> typer.Typer:
    """The commands as ``edgeloop`` registers them."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(devices_app, name="devices")
    app.add_typer(groups_app, name="groups")
    app.add_typer(releases_app, name="releases")
    app.add_typer(rollouts_app, name="rollouts")
    app.command("reconcile")(reconcile)
    return app


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    set_backend(None)
    try:
        _app()(args=list(args), prog_name="edgeloop")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except EdgeloopError as exc:  # what edgeloop.cli.main turns into one line and a code
        print(f"error: {exc.message}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    monkeypatch.setenv("EDGELOOP_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    return path


def _ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


def test_the_fleet_commands_drive_a_rollout(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = Workspace.open(load_settings())
    try:
        version = register_version(ws)
        devices = [FakeDevice(f"pump-{i}") for i in range(3)]
        for device in devices:
            _devices.enroll_device(ws, device.id, device.public_key, device.attributes())
    finally:
        ws.close()
    listed = json.loads(_ok(capsys, "devices", "list", "--status", "pending", "--json"))
    assert [d["id"] for d in listed] == ["pump-0", "pump-1", "pump-2"]
    for device in devices:
        assert "accepted pump-" in _ok(capsys, "devices", "accept", device.id)
    assert "pump-0" in _ok(capsys, "devices", "show", "pump-0")
    token = _ok(capsys, "devices", "enrollment-token", "create", "--max-uses", "5")
    assert "ele_" in token
    assert "plant" in _ok(capsys, "groups", "create", "plant", "--query", "site=plant-3")
    assert "3 accepted devices" in _ok(capsys, "groups", "show", "plant")
    code, _, err = run(capsys, "groups", "create", "bad", "--query", "site=x or id=y")
    assert code == 2 and "expected 'and'" in err
    release = json.loads(
        _ok(capsys, "releases", "create", f"pump/{version}", "--target", "rpi4", "--json")
    )
    assert release["runtime"] == "int8"
    assert release["id"] in _ok(capsys, "releases", "list")
    out = tmp_path / "bundle.tar"
    _ok(capsys, "releases", "export", release["id"], "--out", str(out))
    assert (
        unpack_tar(out.read_bytes(), max_bytes=1 << 22).manifest_dict()["release"] == release["id"]
    )
    created = json.loads(
        _ok(
            capsys,
            "rollouts",
            "create",
            "--release",
            release["id"],
            "--group",
            "plant",
            "--waves",
            "34,100",
            "--bake",
            "10m",
            "--max-failure",
            "5%",
            "--min-success",
            "95%",
            "--health",
            "error_rate<0.02,latency_p95_ms<40",
            "--on-failure",
            "pause",
            "--approve-each-wave",
            "--json",
        )
    )
    assert created["state"] == "awaiting-approval"
    assert "running" in _ok(capsys, "rollouts", "approve", created["id"], "--reason", "CHG-7")
    shown = _ok(capsys, "rollouts", "show", created["id"])
    assert "waves (cumulative)" in shown and "━" in shown  # the progress bars
    assert "CHG-7" in shown  # the transitions, with why
    assert "baking" in shown
    assert "paused" in _ok(capsys, "rollouts", "pause", created["id"])
    assert "0 transitions" in _ok(capsys, "reconcile")
    assert "running" in _ok(capsys, "rollouts", "resume", created["id"])
    rows = json.loads(_ok(capsys, "rollouts", "list", "--json"))
    assert [r["state"] for r in rows] == ["running"]
    assert "rolled-back" in _ok(capsys, "rollouts", "rollback", created["id"])
    code, _, err = run(capsys, "rollouts", "abort", created["id"])
    assert code == 4 and "cannot abort" in err
    code, _, err = run(capsys, "rollouts", "create", "--release", "rel_x", "--group", "plant")
    assert code == 3 and "does not exist" in err
