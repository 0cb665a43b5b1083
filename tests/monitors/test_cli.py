"""``edgeloop monitors create | list | run | report | delete`` on a local workspace."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.client import set_backend
from edgeloop.config import load_settings
from edgeloop.workspace import Workspace, now_ms
from tests.monitors._monitors import HOUR, make_reference, register_version, window_data


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    monkeypatch.setenv("EDGELOOP_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "220")
    return path


def _run(*args: str) -> str:
    set_backend(None)
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_monitor_commands_report_and_plot(home: Path, tmp_path: Path) -> None:
    from tests.monitors._monitors import ingest

    reference = make_reference()
    ws = Workspace.open(load_settings())
    start = (now_ms() // HOUR - 3) * HOUR
    try:
        register_version(ws, reference=reference)
        rng = np.random.default_rng(0)
        for w in range(3):
            shift = ("f3",) if w == 2 else ()
            ingest(ws, window_data(reference, rng, 1500, shift=shift), start=start + w * HOUR)
    finally:
        ws.close()
    out = _run(
        "monitors",
        "create",
        "vib",
        "--model",
        "pump",
        "--window",
        "1h",
        "--backfill",
        "3h",
        "--test",
        "f1=ks:0.01",
        "--drift-share",
        "0.3",
    )
    assert "monitor vib: pump, 1h windows over all sources" in out
    listed = json.loads(_run("monitors", "list", "--json"))
    assert listed[0]["name"] == "vib" and listed[0]["drift_share"] == 0.3
    assert "vib" in _run("monitors", "list")
    out = _run("monitors", "run", "vib")
    assert "3 new reports" in out and "f3" in out
    plots = tmp_path / "plots"
    out = _run("monitors", "report", "vib", "--out", str(plots))
    assert "last 3 reports" in out and "12.5%" in out
    files = sorted(p.name for p in plots.iterdir())
    assert "drift-over-time.svg" in files and "figures-over-time.svg" in files
    assert "distribution-f3.svg" in files and len(files) == 2 + 8
    for name in files:
        ET.fromstring((plots / name).read_text())  # well-formed SVG
    report = json.loads(_run("monitors", "report", "vib", "--json", "--windows", "1"))
    (last,) = report["summary"]["reports"]
    assert last["features"]["f3"]["drifted"] is True
    assert "deleted monitor vib (3 reports)" in _run("monitors", "delete", "vib")
