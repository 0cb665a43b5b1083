"""``edgeloop demo``: the main job, end to end, on the embedded defaults.

Stages: register scikit-learn's bundled digits as a validated, profiled dataset version with a
recorded stratified split → train a real model on it with its loss curve tracked (the run
records the dataset version it read) → register it → alias it ``production`` → load it back by
alias and check it → simulate a machine fleet's vibration recordings, version them and their
windows, and run the predictive-maintenance pipeline (features → zoo search with group k-fold
by machine → evaluate → gate → register).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import typer

import edgeloop.client as el
from edgeloop import data
from edgeloop.cli._edge import footprint
from edgeloop.cli._render import console, table
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.pipelines import PipelineSpec, StepSpec

EXPERIMENT = "digits"
MODEL = "digits"
DATASET = "digits"


def _register_digits(workdir: Path) -> str:
    """Write the digits as a CSV, add it as a dataset version, record a stratified split."""
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype(np.int64), columns=[f"px{i}" for i in range(64)])
    frame.insert(0, "id", [f"d{i:04d}" for i in range(len(frame))])
    frame["label"] = [str(t) for t in digits.target]
    path = workdir / "digits.csv"
    frame.to_csv(path, index=False)
    result = data.add(DATASET, path, label_from="column:label", key="id")
    version = result.version
    try:
        data.get_split(version.uri, "holdout")  # a second demo finds the same version
    except NotFound:
        data.split(version.uri, "holdout", method="stratified", test=0.25, seed=0)
    console.print(
        f"{'added' if result.created else 'found'} {version.uri}: {version.rows} rows, "
        f"{len(version.schema_['columns'])} columns, validation "
        f"{'passed' if version.validation.get('ok') else 'failed'}, profile "
        f"{version.profile_digest[:12]}"
    )
    return version.uri


def _train_digits(dataset: str, epochs: int) -> tuple[str, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from sklearn.neural_network import MLPClassifier

    params = {"model": "mlp", "hidden": 32, "lr": 0.01, "epochs": epochs, "seed": 0}
    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden"],), learning_rate_init=params["lr"], random_state=0
    )
    with el.start_run(experiment=EXPERIMENT, name="mlp-32", params=params) as run:
        el.set_tag("stage", "demo")
        table = data.load(dataset)  # recorded as the run's input
        _, side = data.get_split(dataset, "holdout")
        pixels = table.select([f"px{i}" for i in range(64)]).to_pandas().to_numpy()
        x = (pixels / 16.0).astype(np.float32)
        y = np.asarray(table.column("label").to_pylist())
        x_train, x_test = x[side == "train"], x[side == "test"]
        y_train, y_test = y[side == "train"], y[side == "test"]
        classes = np.unique(y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for epoch in range(epochs):
                model.partial_fit(x_train, y_train, classes=classes)
                proba = model.predict_proba(x_test)
                el.log_metrics(
                    {
                        "train_loss": float(model.loss_),
                        "val_loss": float(log_loss(y_test, proba)),
                        "val_accuracy": float(accuracy_score(y_test, classes[proba.argmax(1)])),
                    },
                    step=epoch,
                )
        predicted = model.predict(x_test)
        accuracy = float(accuracy_score(y_test, predicted))
        el.log_metrics(
            {"accuracy": accuracy, "f1_macro": float(f1_score(y_test, predicted, average="macro"))}
        )
        el.log_model(model, "model", input_example=x_test[:5])
    return run.id, accuracy


def maintenance_pipeline(
    *,
    name: str = "predictive_maintenance",
    dataset: str = "datasets:/vibration-windows@latest",
    hidden: tuple[int, ...] = (16, 32),
    targets: tuple[str, ...] = ("nano33ble", "cortex-m4f", "cortex-m0plus", "rpi4"),
    alias: str | None = "production",
) -> PipelineSpec:
    """The predictive-maintenance pipeline of examples/predictive_maintenance, in Python.

    The defaults are the demo's production pipeline; the fleet stage makes release candidates
    with other ``hidden`` sizes, a pinned ``dataset``, only the ``rpi4`` target and no alias."""
    test = {"X": "steps.features.X_test", "y": "steps.features.y_test"}
    builtin = "edgeloop.pipelines.builtin"
    return PipelineSpec(
        name=name,
        params={"fft_length": 256, "n_bands": 8},
        steps=(
            StepSpec(
                "features",
                "edgeloop.sim.steps:vibration_features",
                inputs={"table": dataset},
                params={"fft_length": "${params.fft_length}", "n_bands": "${params.n_bands}"},
                outputs=(
                    "X_train",
                    "y_train",
                    "groups_train",
                    "X_test",
                    "y_test",
                    "feature_names",
                    "features",
                    "window",
                ),
            ),
            StepSpec(
                "train",
                f"{builtin}:train",
                inputs={
                    "X": "steps.features.X_train",
                    "y": "steps.features.y_train",
                    "groups": "steps.features.groups_train",
                },
                params={
                    "models": ["mlp"],
                    "metric": "f1_macro",
                    "cv": 4,
                    "cv_method": "group",
                    "grids": {
                        "mlp": {"hidden_layer_sizes": [[h] for h in hidden], "alpha": [1e-3]}
                    },
                },
                outputs=("model", "run_id", "search"),
            ),
            StepSpec(
                "evaluate",
                f"{builtin}:evaluate",
                inputs={
                    "model": "steps.train.model",
                    "run_id": "steps.train.run_id",
                    "feature_names": "steps.features.feature_names",
                    **test,
                },
                outputs=("metrics", "report"),
            ),
            StepSpec(
                "gate",
                f"{builtin}:gate",
                inputs={"metrics": "steps.evaluate.metrics", **test},
                params={
                    "thresholds": ["f1_macro >= 0.8"],
                    "baseline": "models:/machine-condition@production",
                    "max_drop": 0.02,
                },
                outputs=("report",),
            ),
            StepSpec(
                "export",
                f"{builtin}:export",
                inputs={
                    "model": "steps.train.model",
                    "run_id": "steps.train.run_id",
                    "X_calib": "steps.features.X_train",
                    "X_test": "steps.features.X_test",
                    "y_test": "steps.features.y_test",
                    "features": "steps.features.features",
                    "window": "steps.features.window",
                },
                params={
                    "targets": list(targets),
                    "max_drop_points": 1.0,
                },
                outputs=("edge", "report"),
            ),
            StepSpec(
                "register",
                f"{builtin}:register",
                inputs={
                    "run_id": "steps.train.run_id",
                    "gate": "steps.gate.report",
                    "edge": "steps.export.edge",
                },
                params={"name": "machine-condition", "alias": alias},
                outputs=("model_version",),
            ),
        ),
    )


def _run_maintenance(workdir: Path, machines: int) -> tuple[str, str, dict[str, float], str]:
    """Simulate a fleet, version its recordings and windows, run the pipeline."""
    from edgeloop.pipelines import run_pipeline
    from edgeloop.sim import simulate_fleet, write_recordings

    backend = el.get_backend()
    if not isinstance(backend, el.LocalBackend):
        raise ValidationFailed("the demo runs on a local workspace: unset EDGELOOP_URL")
    recordings = simulate_fleet(machines=machines, recordings_per_condition=6, seed=0)
    write_recordings(recordings, workdir / "recordings")
    raw = data.add("vibration", [workdir / "recordings"], label_from="folder").version
    windows = data.window(raw.uri, length_ms=500, stride_ms=250).version
    console.print(
        f"{raw.uri}: {raw.rows} recordings from {machines} machines → {windows.uri}: "
        f"{windows.rows} windows of 500 ms"
    )

    def show(step: str, status: str) -> None:
        if status != "running":
            console.print(f"  {step} {status}")

    run = run_pipeline(backend.ws, maintenance_pipeline(), on_event=show)
    if run.status != "succeeded":
        failed = next(s for s in run.steps if s.status == "failed")
        raise ValidationFailed(f"pipeline step {failed.name} failed: {failed.error.strip()}")
    version = backend.resolve_model_uri("models:/machine-condition@production")
    return run.id, version.uri, dict(version.metrics), windows.uri


def demo(
    epochs: int = typer.Option(30, help="Training epochs for the digits MLP."),
    devices: int = typer.Option(200, help="Simulated devices of the fleet stage."),
    faulty: str = typer.Option("3%", help="Share of faulty simulated devices, e.g. 3%."),
    fleet: bool = typer.Option(
        True, "--fleet/--no-fleet", help="Run the fleet stage and the closed loop (7-8)."
    ),
) -> None:
    """Run the main job end to end on the local workspace (EDGELOOP_HOME, default .edgeloop)."""
    started = time.perf_counter()
    backend = el.get_backend()
    if fleet and not isinstance(backend, el.LocalBackend):
        raise ValidationFailed("the demo runs on a local workspace: unset EDGELOOP_URL")
    console.rule("[bold]1. version the data[/]")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = _register_digits(Path(tmp))

    console.rule("[bold]2. train and track[/]")
    run_id, accuracy = _train_digits(dataset, epochs)
    console.print(f"run {run_id}: {epochs} epochs, test accuracy {accuracy:.3f}")

    console.rule("[bold]3. register and alias[/]")
    version = backend.create_model_version(
        MODEL, run_id=run_id, path="model", description="digits MLP from edgeloop demo"
    )
    backend.set_alias(MODEL, "production", version.version, reason="demo: best digits model")
    console.print(f"registered {version.uri}; models:/{MODEL}@production → {version.version}")

    console.rule("[bold]4. load by alias and check[/]")
    from sklearn.datasets import load_digits

    digits = load_digits()
    predictor = el.load_model(f"models:/{MODEL}@production")
    x = (digits.data / 16.0).astype(np.float32)
    agreement = float((predictor.predict(x) == digits.target).mean())
    console.rule("[bold]5. predictive-maintenance pipeline (continuous training)[/]")
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_run, machine_model, metrics, windows = _run_maintenance(Path(tmp), machines=6)
    console.rule("[bold]6. edge: int8 C library and footprint per board[/]")
    name, _, number = machine_model.removeprefix("models:/").partition("/")
    edge_files = [
        f.path for f in backend.model_version_files(name, number) if f.path.startswith("edge/")
    ]
    console.print(
        f"{machine_model}: {len(edge_files)} edge files (int8 weights, C library with the "
        "feature block, ONNX, manifest)"
    )
    footprint(f"{name}/{number}", as_json=False)
    rows: list[tuple[object, ...]] = [
        ("dataset", dataset),
        ("run", run_id),
        ("model", f"models:/{MODEL}@production (version {version.version})"),
        ("test accuracy", f"{accuracy:.4f}"),
        ("accuracy on all digits (loaded by alias)", f"{agreement:.4f}"),
        ("pipeline run", pipeline_run),
        (
            "machine-condition model",
            f"{machine_model} (F1 on unseen machines "
            f"{metrics.get('test.f1_macro', float('nan')):.3f})",
        ),
        (
            "int8 vs float accuracy (edge export)",
            f"{metrics.get('edge.int8_accuracy', float('nan')):.4f} vs "
            f"{metrics.get('edge.float_accuracy', float('nan')):.4f}",
        ),
    ]
    if fleet:
        rows += _fleet_and_loop(backend, windows, devices, faulty)
    rows.append(("time", f"{time.perf_counter() - started:.1f} s"))
    table("summary", ["what", "value"], rows)
    console.print(
        "Look at it: [bold]edgeloop data show digits@latest[/], "
        "[bold]edgeloop runs list -e digits[/], [bold]edgeloop pipelines runs[/],"
        " [bold]edgeloop models show digits[/], [bold]edgeloop rollouts list[/],"
        " or start the API with [bold]edgeloop server[/] and open http://127.0.0.1:8080/docs"
    )


def _fleet_and_loop(
    backend: el.Backend, windows: str, devices: int, faulty: str
) -> list[tuple[object, ...]]:
    """Stages 7 and 8 against an ``edgeloop server`` on loopback; summary rows."""
    from edgeloop.cli._demo_field import DeployedModels, field_data, fleet_sources
    from edgeloop.cli._demo_fleet import local_server, run_fleet_stage
    from edgeloop.cli._demo_loop import run_closed_loop, summary_rows
    from edgeloop.fleet._rollouts import parse_share

    assert isinstance(backend, el.LocalBackend)
    ws = backend.ws
    share = parse_share(faulty, "faulty")
    models = DeployedModels(ws)
    field = field_data(ws, windows)
    sources = fleet_sources(field, models)
    rows: list[tuple[object, ...]] = []
    with local_server(ws) as url:
        console.rule("[bold]7. roll out to a simulated fleet[/]")
        stage = run_fleet_stage(
            ws,
            url,
            windows,
            devices=devices,
            faulty=share,
            fleet_options=sources.options,
            on_stage=sources.bind,
        )
        for role in ("base", "canary", "good"):
            info = stage.rollouts[role]
            rows.append(
                (f"{role} rollout", f"{info.id} {info.state} ({stage.seconds[role]:.0f} s)")
            )
        console.rule("[bold]8. the closed loop: drift → alert → data → retrain → roll out[/]")
        loop = run_closed_loop(stage, field, models, sources)
    table(
        f"closed loop ({loop.seconds:.0f} s)",
        ["site", "drift", "drift share before", "after", "accuracy before", "after"],
        summary_rows(loop),
    )
    rows += [
        ("alerts", ", ".join(f"{a.id} ({a.subject})" for a in loop.alerts) or "none"),
        (
            "data collected",
            ", ".join(f"{c.rows} windows → {c.uri}" for c in loop.collections) or "none",
        ),
        ("retraining run", loop.pipeline_run.id if loop.pipeline_run else "none"),
        (
            "retrained model",
            f"models:/machine-condition/{loop.version}" if loop.version else "none",
        ),
        (
            "its rollout",
            f"{loop.rollout.id} {loop.rollout.state}" if loop.rollout is not None else "none",
        ),
    ]
    return rows
