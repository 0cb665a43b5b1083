"""Constraint-aware tuning: a multi-objective study over feature blocks and int8 MLPs on a
simulated machine fleet, its feasible Pareto front, child runs, plot, resume, registration
with a footprint, the error when nothing fits, the CLI, and a study shared by two processes.

The study compiles every trial with ``arm-none-eabi-gcc`` (skipped without it)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import typer
from typer.testing import CliRunner

from edgeloop import datasets, registry, tracking
from edgeloop.cli._edge import tune as tune_command
from edgeloop.client import LocalBackend, set_backend
from edgeloop.config import load_settings
from edgeloop.edge._service import get_footprints
from edgeloop.edge._tune import (
    NoFeasiblePoint,
    TunePoint,
    TuneResult,
    _Config,
    _Space,
    pareto_front,
    tune,
)
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.errors import DataRejected, ValidationFailed
from edgeloop.registry import load_predictor
from edgeloop.sim import simulate_fleet, to_table
from edgeloop.train import FeaturePipeline, windows_from_table
from edgeloop.workspace import Workspace

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc (make services)"
)

SRC = Path(__file__).resolve().parents[2] / "src"
TRIALS = 5


def add_windows(ws: Workspace) -> str:
    """A small fleet (6 machines, 4 conditions, 1 s recordings) cut into 250 ms windows."""
    recordings = simulate_fleet(machines=6, recordings_per_condition=3, seconds=1.0, seed=1)
    sensor = {"sample_rate": 1000.0, "axes": ["acc_x", "acc_y", "acc_z"]}
    raw = datasets.add_version(
        ws, "vibration", to_table(recordings), label="label", key="sample_id", sensor=sensor
    )
    return datasets.window(ws, raw.version.uri, length_ms=250, stride_ms=250).version.uri


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tune")


@pytest.fixture(scope="module")
def ws(home: Path) -> Iterator[Workspace]:
    workspace = Workspace.open(load_settings(home=str(home), db_url=f"sqlite:///{home}/el.db"))
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def windows(ws: Workspace) -> str:
    return add_windows(ws)


@pytest.fixture(scope="module")
def tuned(ws: Workspace, windows: str) -> TuneResult:
    return loose(ws, windows, trials=TRIALS, study="loose")


def loose(ws: Workspace, windows: str, **kwargs: Any) -> TuneResult:
    """``tune`` for the nano33ble with limits every trial meets (50 ms, 64 kB of RAM)."""
    return tune(
        ws, dataset=windows, target="nano33ble", max_latency_ms=50.0, max_ram_kb=64.0, **kwargs
    )


def dominates(a: TunePoint, b: TunePoint) -> bool:
    pairs = list(zip(a.objectives(), b.objectives(), strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


# ---- the front ------------------------------------------------------------------------------


def test_the_front_holds_feasible_non_dominated_points(tuned: TuneResult, windows: str) -> None:
    assert tuned.ran == TRIALS and [p.trial for p in tuned.trials] == list(range(TRIALS))
    assert tuned.dataset == windows and tuned.target == "nano33ble"
    assert tuned.limits["latency_ms"] == 50.0 and tuned.limits["ram_kb"] == 64.0
    assert tuned.front
    feasible = [p for p in tuned.trials if p.feasible]
    for point in tuned.front:
        assert point.feasible and not point.violations
        assert point.ram_kb <= 64 and point.latency_ms <= 50
        assert not any(dominates(other, point) for other in feasible)
    for point in feasible:  # every other one is beaten by, or repeats, one on the front
        assert any(dominates(f, point) or f.params == point.params for f in tuned.front)
    best = max(p.int8_accuracy for p in tuned.front)
    fastest = min(p.latency_ms for p in tuned.front if p.int8_accuracy == best)
    assert tuned.chosen.int8_accuracy == best and tuned.chosen.latency_ms == fastest
    assert tuned.chosen.int8_accuracy >= 0.7  # machines the networks never saw
    for point in tuned.trials:
        params = point.params
        assert params["window_samples"] in (62, 125, 250)
        assert params["fft_length"] <= params["window_samples"] and params["n_bands"] >= 4
        assert len(params["hidden"]) <= 2 and all(8 <= w <= 64 for w in params["hidden"])
        assert min(point.flash_kb, point.ram_kb, point.latency_ms) > 0


def point(trial: int, accuracy: float, latency: float, ram: float, *bad: str) -> TunePoint:
    config = {"window_samples": 100 + trial}
    return TunePoint(trial, config, accuracy, accuracy, 4.0, ram, latency, f"r{trial}", bad)


def test_infeasible_points_never_enter_the_front() -> None:
    points = [
        point(0, 0.99, 1.0, 1.0, "latency_ms"),  # dominates everything, but too slow
        point(1, 0.90, 2.0, 2.0),
        point(2, 0.95, 3.0, 2.0),
        point(3, 0.90, 2.5, 2.5),  # dominated by 1
        point(4, 0.90, 2.0, 1.5),  # beats 1 on RAM
        point(5, 0.95, 3.0, 2.0),  # equal to 2: neither dominates
    ]
    assert [p.trial for p in pareto_front(points)] == [4, 2, 5]
    assert pareto_front([points[0]]) == []
    again = dataclasses.replace(points[4], trial=6, run_id="r6")  # trial 4's configuration
    assert [p.trial for p in pareto_front([*points, again])] == [4, 2, 5]


def test_a_configuration_tried_before_is_not_trained_again(
    ws: Workspace, windows: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = _Config(window_samples=125, fft_length=32, n_bands=8, flatten=False, hidden=(8,))
    monkeypatch.setattr(_Space, "suggest", lambda self, trial: same)
    result = loose(ws, windows, trials=3, study="same")
    first, *repeats = result.trials
    assert result.front == [first] and result.chosen == first
    for repeat in repeats:
        assert (repeat.int8_accuracy, repeat.ram_kb) == (first.int8_accuracy, first.ram_kb)
        assert repeat.repeat_of == 0 and first.repeat_of is None
        run = tracking.get_run(ws, repeat.run_id)
        assert run.tags["duplicate_of"] == "0" and run.metrics["ram_kb"] == first.ram_kb
        assert tracking.list_artifacts(ws, run.id) == []


# ---- what is recorded -----------------------------------------------------------------------


def test_every_trial_is_a_child_run_with_its_metrics(ws: Workspace, tuned: TuneResult) -> None:
    parent = tracking.get_run(ws, tuned.run_id)
    assert parent.status == "finished" and parent.params["study"] == "loose"
    assert parent.tags["chosen_trial"] == str(tuned.chosen.trial)
    assert parent.metrics["chosen.int8_accuracy"] == tuned.chosen.int8_accuracy
    children = [
        r for r in tracking.search_runs(ws, "tune").items if r.parent_run_id == tuned.run_id
    ]
    assert sorted(r.name for r in children) == [f"trial-{i}" for i in range(TRIALS)]
    by_id = {r.id: r for r in children}
    for point in tuned.trials:
        run = by_id[point.run_id]
        assert run.status == "finished"
        assert run.metrics["int8_accuracy"] == point.int8_accuracy
        assert run.metrics["float_accuracy"] == point.float_accuracy
        assert run.metrics["latency_ms"] == pytest.approx(point.latency_ms)
        assert run.metrics["ram_kb"] == point.ram_kb and run.metrics["flash_kb"] == point.flash_kb
        assert run.metrics["feasible"] == 1.0
        assert json.loads(run.params["hidden"]) == point.params["hidden"]
        assert run.params["window_samples"] == str(point.params["window_samples"])
        paths = {a.path for a in tracking.list_artifacts(ws, run.id)}
        assert {"model/model.joblib", "model/features.json", "footprint.json"} <= paths


def test_the_pareto_plot_is_logged_on_the_tuning_run(ws: Workspace, tuned: TuneResult) -> None:
    entry = tracking.read_artifact(ws, tuned.run_id, tuned.plot)
    svg = ws.artifacts.get_bytes(entry.digest).decode()
    root = ElementTree.fromstring(svg.split("\n", 1)[1])  # after the XML declaration
    circles = root.iter("{http://www.w3.org/2000/svg}circle")
    assert sum(1 for _ in circles) == TRIALS + 1 + 4  # trials, the chosen ring, the legend
    assert "Pareto front" in svg and f"chosen: trial {tuned.chosen.trial}" in svg
    summary = json.loads(
        ws.artifacts.get_bytes(tracking.read_artifact(ws, tuned.run_id, "pareto.json").digest)
    )
    assert summary["front"] == [p.trial for p in tuned.front]


# ---- resume, registration, errors -----------------------------------------------------------


def test_a_second_call_runs_only_the_missing_trials(ws: Workspace, windows: str) -> None:
    first = loose(ws, windows, trials=3, study="resume")
    second = loose(ws, windows, trials=5, study="resume")
    assert (first.ran, second.ran) == (3, 2)
    assert [p.trial for p in second.trials] == [0, 1, 2, 3, 4]
    assert second.trials[:3] == first.trials  # the same trials, read back from the study
    again = loose(ws, windows, trials=4, study="resume")
    assert again.ran == 0 and len(again.trials) == 5
    with pytest.raises(ValidationFailed, match="study 'resume' was created with limits="):
        tune(
            ws,
            dataset=windows,
            target="nano33ble",
            max_latency_ms=50,
            max_ram_kb=32,
            study="resume",
        )


def test_registering_keeps_the_chosen_trials_model_and_its_footprint(
    ws: Workspace, windows: str, tuned: TuneResult
) -> None:
    result = loose(ws, windows, trials=TRIALS, study="loose", register="pump")
    assert result.ran == 0 and result.chosen == tuned.chosen
    assert result.model_version == "models:/pump/1"
    version = registry.get_model_version(ws, "pump", 1)
    assert version.source_run_id == tuned.chosen.run_id
    assert version.tags["target"] == "nano33ble" and version.tags["study"] == "loose"
    assert version.metrics["int8_accuracy"] == tuned.chosen.int8_accuracy
    files = {
        f.path: ws.artifacts.get_bytes(f.digest)
        for f in registry.model_version_files(ws, "pump", 1)
    }
    assert {"edgeloop-model.json", "model.joblib", "features.json", "model.int8.npz"} <= set(files)
    [record] = get_footprints(ws, "pump", 1)
    assert record.footprint.target == "nano33ble" and record.footprint.fits
    assert record.footprint.ram_bytes / 1024 == tuned.chosen.ram_kb
    # the version is usable: features from raw windows, then the float and the int8 model
    pipeline = FeaturePipeline.from_dict(json.loads(files["features.json"]))
    _, table = datasets.load_table(ws, windows)
    raw = windows_from_table(table.slice(0, 8), pipeline.axes)
    x = pipeline.transform(raw[:, : tuned.chosen.params["window_samples"], :])
    qmodel = QuantizedModel.from_bytes(files["model.int8.npz"])
    predicted = load_predictor(files).predict(x)
    assert len(predicted) == 8 and len(qmodel.predict(x)) == 8


def test_impossible_limits_say_which_was_never_met(ws: Workspace, windows: str) -> None:
    with pytest.raises(NoFeasiblePoint, match=r"never met: RAM .* kB > 0\.1 kB even at best") as e:
        tune(ws, dataset=windows, target="nano33ble", max_latency_ms=50, max_ram_kb=0.1, trials=2)
    assert isinstance(e.value, DataRejected) and e.value.http_status == 422
    assert e.value.details["never_met"] == ["ram_kb"] and e.value.details["best"]["ram_kb"] > 0.1
    run_id = e.value.details["run_id"]
    assert tracking.get_run(ws, run_id).status == "failed"
    assert tracking.read_artifact(ws, run_id, "plots/pareto.svg").size > 0  # all hollow


def test_bad_arguments_are_refused_before_any_trial(ws: Workspace, windows: str) -> None:
    with pytest.raises(ValidationFailed, match="deploys ONNX"):
        tune(ws, dataset=windows, target="rpi4", max_latency_ms=5, max_ram_kb=64)
    with pytest.raises(ValidationFailed, match="max_ram_kb must be a number > 0"):
        tune(ws, dataset=windows, target="nano33ble", max_latency_ms=5, max_ram_kb=-1)
    with pytest.raises(ValidationFailed, match="trials must be an integer from 1 to"):
        tune(ws, dataset=windows, target="nano33ble", max_latency_ms=5, max_ram_kb=64, trials=0)
    with pytest.raises(ValidationFailed, match="differs from the 1000 Hz recorded"):
        tune(
            ws,
            dataset=windows,
            sample_rate=500.0,
            target="nano33ble",
            max_latency_ms=5,
            max_ram_kb=64,
        )


# ---- the CLI -------------------------------------------------------------------------------


def test_the_cli_prints_each_trial_the_front_and_the_registered_version(
    ws: Workspace, windows: str
) -> None:
    set_backend(LocalBackend(workspace=ws))
    app = typer.Typer()
    app.command("tune")(tune_command)
    app.command("other")(lambda: None)  # two commands: tune stays a subcommand
    args = ["tune", "--dataset", windows, "--target", "nano33ble", "--max-latency-ms", "50"]
    args += ["--max-ram-kb", "64", "--trials", "2", "--study", "cli", "--register", "cli-model"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "trial   0" in out and "trial   1" in out and "feasible" in out
    assert "Pareto front of cli" in out and "chosen: trial" in out
    assert "registered models:/cli-model/1" in out
    as_json = CliRunner().invoke(app, [*args[:-2], "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ran"] == 0 and len(data["trials"]) == 2 and data["chosen"]["feasible"]


@pytest.mark.slow
def test_the_study_lives_in_a_postgresql_workspace_too(
    make_workspace: Callable[..., Workspace], pg_url: str
) -> None:
    ws = make_workspace(db_url=pg_url)
    windows = add_windows(ws)
    assert loose(ws, windows, trials=2).ran == 2
    resumed = loose(ws, windows, trials=3)
    assert resumed.ran == 1 and resumed.study == "tune:vibration-windows@1:nano33ble"


# ---- two processes, one study --------------------------------------------------------------

WORKER = """
import json, sys
from edgeloop.config import load_settings
from edgeloop.edge._tune import tune
from edgeloop.workspace import Workspace

args = json.loads(sys.argv[1])
ws = Workspace.open(load_settings(home=args["home"], db_url=args["db_url"]))
result = tune(ws, dataset=args["dataset"], target="nano33ble", max_latency_ms=50,
              max_ram_kb=64, trials=6, study="shared", seed=args["seed"])
print(json.dumps({"ran": result.ran, "seen": len(result.trials)}))
ws.close()
"""


@pytest.mark.slow
def test_two_processes_share_one_study(ws: Workspace, windows: str, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["PYTHONPATH"] = str(SRC)
    env["PYTHONWARNINGS"] = "error"
    base = {"home": str(home), "db_url": ws.settings.database_url, "dataset": windows}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps({**base, "seed": seed})],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=home,
        )
        for seed in (1, 2)
    ]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    reports = [json.loads(out) for out, _ in outputs]
    ran = sum(r["ran"] for r in reports)
    assert 6 <= ran <= 7  # each stops at 6 in all; one may overshoot by the trial it was on
    assert max(r["seen"] for r in reports) == ran  # the last to finish sees every trial
    result = loose(ws, windows, trials=6, study="shared")
    assert result.ran == 0 and [p.trial for p in result.trials] == list(range(ran))
