"""``edgeloop collect request | list | show | close | opt-out`` on a local workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from edgeloop.cli._collect import collect_app
from edgeloop.cli._fleet import devices_app
from edgeloop.client import set_backend
from edgeloop.config import load_settings
from edgeloop.errors import EdgeloopError
from edgeloop.fleet import _collection
from edgeloop.fleet._collection_entities import SamplesUpload
from edgeloop.workspace import Workspace
from tests.fleet._collect import add_windows, enroll, rows


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(collect_app, name="collect")
    app.add_typer(devices_app, name="devices")
    set_backend(None)
    try:
        app(args=list(args), prog_name="edgeloop")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except EdgeloopError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def test_collect_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    ws = Workspace.open(load_settings())
    try:
        add_windows(ws)
        for i in range(3):
            enroll(ws, f"d{i}", opt_in=i != 2)
    finally:
        ws.close()
    code, out, err = _run(capsys, "devices", "list", "--json")
    assert code == 0, err
    assert {d["id"]: d["data_collection"] for d in json.loads(out)} == {
        "d0": True,
        "d1": True,
        "d2": False,
    }
    code, out, err = _run(
        capsys,
        "collect",
        "request",
        "--dataset",
        "vib-windows",
        "--devices",
        "5",
        "--samples",
        "2",
        "--json",
    )
    assert code == 0, err
    cid = json.loads(out)["id"]
    assert json.loads(out)["chosen"] == 2
    ws = Workspace.open(load_settings())
    try:
        body = SamplesUpload(collection=cid, upload_id="u", rows=rows(2, "d0"), done=True)
        _collection.upload_samples(ws, "d0", body)
    finally:
        ws.close()
    code, out, err = _run(capsys, "collect", "list", "--json")
    assert code == 0 and [(c["id"], c["rows"]) for c in json.loads(out)] == [(cid, 2)]
    code, out, err = _run(capsys, "collect", "show", cid)
    assert code == 0 and "d0" in out and "open" in out
    code, out, err = _run(capsys, "collect", "close", cid)
    assert code == 0 and "datasets:/vib-windows@2" in out
    code, out, err = _run(capsys, "collect", "list")
    assert code == 0 and "closed" in out
    code, out, err = _run(capsys, "collect", "opt-out", "d1")
    assert code == 0 and "off" in out
    code, out, err = _run(capsys, "devices", "show", "d1")
    assert code == 0 and "data collection" in out
    code, out, err = _run(
        capsys,
        "collect",
        "request",
        "--dataset",
        "vib-windows",
        "--devices",
        "1",
        "--samples",
        "1",
        "--tag",
        "line=z",
    )
    assert code == 2 and "opted in" in err
