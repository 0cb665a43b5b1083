"""The construction-delays example, as its README runs it, on small data."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from tests.cli.test_cli import run_cli

from edgeloop import datasets, registry, tracking
from edgeloop.client import LocalBackend
from edgeloop.config import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "construction_delays"

pytestmark = pytest.mark.slow


def test_the_example_trains_gates_and_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.syspath_prepend(str(work))
    sys.modules.pop("construction_steps", None)
    sys.modules.pop("generate", None)
    from generate import generate

    generate(rows=800, seed=3).to_csv(work / "activities.csv", index=False)
    code, _, err = run_cli(
        capsys,
        "data",
        "add",
        "construction",
        "activities.csv",
        "--label-from",
        "column:status",
        "--key",
        "activity_id",
    )
    assert code == 0, err
    code, out, err = run_cli(
        capsys,
        "run",
        "construction_delays",
        "--param",
        "models=[logistic_regression, decision_tree]",
        "--param",
        "folds=3",
        "--json",
    )
    assert code == 0, out + err
    run = json.loads(out)
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 5
    ws = LocalBackend(load_settings(home=str(tmp_path / "ws"))).ws
    version = registry.resolve_model_uri(ws, "models:/construction-delays@production")
    assert version.lineage["pipeline_run_id"] == run["id"]
    data = datasets.get_version(ws, "datasets:/construction@1")
    assert version.lineage["datasets"] == {data.uri: data.digest}
    train_run = tracking.get_run(ws, version.source_run_id or "")
    assert train_run.metrics["test.accuracy"] >= 0.7
    plots = {a.path for a in tracking.list_artifacts(ws, train_run.id, "plots")}
    assert {
        "plots/confusion_matrix.svg",
        "plots/feature_importance.svg",
        "plots/model_comparison.svg",
    } <= plots
    children = tracking.search_runs(ws, "construction_delays", "attributes.name like 'decision%'")
    assert len(children.items) == 12  # the decision tree's grid, one child run per point
    assert all(c.parent_run_id == train_run.id for c in children.items)
