"""The predictive-maintenance example, as its README runs it, on a small fleet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.cli.test_cli import run_cli

from edgeloop import registry
from edgeloop.client import LocalBackend
from edgeloop.config import load_settings
from edgeloop.sim import simulate_fleet, write_recordings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "predictive_maintenance"

pytestmark = pytest.mark.slow


def test_the_example_learns_conditions_on_unseen_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    write_recordings(
        simulate_fleet(machines=6, recordings_per_condition=4, seed=1), work / "recordings"
    )
    assert (
        run_cli(capsys, "data", "add", "vibration", "recordings", "--label-from", "folder")[0] == 0
    )
    code, out, err = run_cli(
        capsys, "data", "window", "vibration@latest", "--length-ms", "500", "--stride-ms", "250"
    )
    assert code == 0, err
    assert "datasets:/vibration-windows@1" in out
    code, out, err = run_cli(capsys, "run", "predictive_maintenance", "--json")
    assert code == 0, out + err
    run = json.loads(out)
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 6
    ws = LocalBackend(load_settings(home=str(tmp_path / "ws"))).ws
    version = registry.resolve_model_uri(ws, "models:/machine-condition@production")
    assert version.metrics["test.f1_macro"] >= 0.8
    assert version.lineage["datasets"]  # the windowed dataset version it trained on
    # The export step put the edge files on the version and measured each board.
    paths = {f.path for f in registry.model_version_files(ws, "machine-condition", 1)}
    assert {"edge/manifest.json", "edge/c/model.c", "edge/c/features.c"} <= paths
    assert version.metrics["edge.drop_points"] <= 1.0
    code, out, err = run_cli(capsys, "models", "footprint", "machine-condition/1", "--json")
    assert code == 0, err
    assert {f["target"] for f in json.loads(out)} == {
        "nano33ble",
        "cortex-m4f",
        "cortex-m0plus",
        "rpi4",
    }
