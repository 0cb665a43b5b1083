"""Built-in evaluate, gate and register steps inside a pipeline."""

from __future__ import annotations

import pytest

from edgeloop import pipelines, registry, tracking
from edgeloop.errors import ValidationFailed
from edgeloop.pipelines import InlineExecutor, PipelineSpec, StepSpec, run_pipeline
from edgeloop.pipelines.builtin import parse_threshold
from edgeloop.workspace import Workspace

M = "tests.pipelines._steps"
B = "edgeloop.pipelines.builtin"


def spec(thresholds: list[str], shuffle: bool = False) -> PipelineSpec:
    test = {"X": "steps.data.X_test", "y": "steps.data.y_test"}
    return PipelineSpec(
        name="clf",
        params={"shuffle": shuffle, "thresholds": thresholds},
        steps=(
            StepSpec("data", f"{M}:make_blobs", outputs=("X_train", "y_train", "X_test", "y_test")),
            StepSpec(
                "train",
                f"{M}:fit_and_log",
                inputs={"X": "steps.data.X_train", "y": "steps.data.y_train"},
                params={"shuffle_labels": "${params.shuffle}"},
                outputs=("model", "run_id"),
            ),
            StepSpec(
                "evaluate",
                f"{B}:evaluate",
                inputs={"model": "steps.train.model", "run_id": "steps.train.run_id", **test},
                outputs=("metrics", "report"),
            ),
            StepSpec(
                "gate",
                f"{B}:gate",
                inputs={"metrics": "steps.evaluate.metrics", **test},
                params={
                    "thresholds": "${params.thresholds}",
                    "baseline": "models:/clf@production",
                    "baseline_metric": "accuracy",
                    "max_drop": 0.05,
                },
                outputs=("report",),
            ),
            StepSpec(
                "register",
                f"{B}:register",
                inputs={"run_id": "steps.train.run_id", "gate": "steps.gate.report"},
                params={"name": "clf", "alias": "production"},
                outputs=("model_version",),
            ),
        ),
    )


def test_evaluate_gate_register_end_to_end(workspace: Workspace) -> None:
    run = run_pipeline(workspace, spec(["accuracy >= 0.8"]), executor=InlineExecutor())
    assert run.status == "succeeded", [s.error for s in run.steps]
    version = registry.resolve_model_uri(workspace, "models:/clf@production")
    assert version.version == 1
    assert version.tags["pipeline_run_id"] == run.id
    assert version.lineage["pipeline_run_id"] == run.id
    assert run.lineage["produced"]["model_version"] == ["models:/clf/1"]
    train_run = run.lineage["produced"]["run_id"][0]
    paths = [a.path for a in tracking.list_artifacts(workspace, train_run, "plots")]
    assert paths == [
        "plots/confusion_matrix.svg",
        "plots/feature_importance.svg",
        "plots/pr.svg",
        "plots/roc.svg",
    ]
    assert tracking.get_run(workspace, train_run).metrics["test.accuracy"] >= 0.8
    gate = pipelines.load_value(workspace.artifacts.get_bytes(run.step("gate").outputs["report"]))
    assert gate["passed"] is True
    assert "does not exist yet" in gate["checks"][1]["note"]  # no production model before


def test_a_failed_threshold_stops_registration_and_says_by_how_much(
    workspace: Workspace,
) -> None:
    run = run_pipeline(workspace, spec(["accuracy >= 1.01"]), executor=InlineExecutor())
    assert run.status == "failed"
    assert "GateFailed: gate failed: accuracy >= 1.01" in run.step("gate").error
    assert "misses by" in run.step("gate").error
    assert run.step("register").status == "skipped"
    assert registry.list_models(workspace).items == []


def test_worse_than_production_fails_the_gate(workspace: Workspace) -> None:
    assert run_pipeline(workspace, spec([]), executor=InlineExecutor()).status == "succeeded"
    worse = run_pipeline(workspace, spec([], shuffle=True), executor=InlineExecutor())
    assert worse.status == "failed"
    assert "not worse than models:/clf@production (v1)" in worse.step("gate").error
    assert registry.resolve_model_uri(workspace, "models:/clf@production").version == 1


def test_bad_thresholds_are_clear_errors() -> None:
    with pytest.raises(ValidationFailed, match="METRIC OP NUMBER"):
        parse_threshold("f1 is great")
    assert parse_threshold("f1_macro >= 0.9") == ("f1_macro", ">=", 0.9)


def test_builtin_steps_refuse_to_run_outside_a_pipeline() -> None:
    with pytest.raises(ValidationFailed, match="pipeline step"):
        pipelines.current_context()


def test_builtin_train_is_reproducible_and_logs_trials(workspace: Workspace) -> None:
    trained = PipelineSpec(
        name="zoo",
        steps=(
            StepSpec("data", f"{M}:make_blobs", outputs=("X_train", "y_train", "X_test", "y_test")),
            StepSpec(
                "train",
                f"{B}:train",
                inputs={"X": "steps.data.X_train", "y": "steps.data.y_train"},
                params={"models": ["logistic_regression", "random_forest"], "cv": 3, "seed": 5},
                outputs=("model", "run_id", "search"),
            ),
        ),
    )
    digests = []
    for _ in range(2):
        run = run_pipeline(workspace, trained, force=["train"], executor=InlineExecutor())
        assert run.status == "succeeded", run.step("train").error
        run_id = run.lineage["produced"]["run_id"][0]
        entry = tracking.read_artifact(workspace, run_id, "model/model.joblib")
        digests.append(entry.digest)
        recorded = tracking.get_run(workspace, run_id)
        assert recorded.params["seed"] == "5"
        assert "cv_accuracy_mean" in recorded.metrics
        children = tracking.search_runs(workspace, "zoo", "attributes.name like '%-%'")
        assert {c.parent_run_id for c in children.items} >= {run_id}
    assert digests[0] == digests[1]  # same inputs and seed: the same model bytes


def test_regression_is_trained_evaluated_and_gated(workspace: Workspace) -> None:
    test = {"X": "steps.data.X_test", "y": "steps.data.y_test"}
    spec = PipelineSpec(
        name="reg",
        steps=(
            StepSpec(
                "data", f"{M}:make_linear", outputs=("X_train", "y_train", "X_test", "y_test")
            ),
            StepSpec(
                "train",
                f"{B}:train",
                inputs={"X": "steps.data.X_train", "y": "steps.data.y_train"},
                params={"models": ["ridge"], "metric": "r2", "cv": 3, "cv_method": "kfold"},
                outputs=("model", "run_id", "search"),
            ),
            StepSpec(
                "evaluate",
                f"{B}:evaluate",
                inputs={"model": "steps.train.model", "run_id": "steps.train.run_id", **test},
                outputs=("metrics", "report"),
            ),
            StepSpec(
                "gate",
                f"{B}:gate",
                inputs={"metrics": "steps.evaluate.metrics"},
                params={"thresholds": ["r2 >= 0.9", "rmse <= 0.5"]},
                outputs=("report",),
            ),
        ),
    )
    run = run_pipeline(workspace, spec, executor=InlineExecutor())
    assert run.status == "succeeded", [s.error for s in run.steps]
    metrics = pipelines.load_value(
        workspace.artifacts.get_bytes(run.step("evaluate").outputs["metrics"])
    )
    assert metrics["r2"] > 0.9
    assert {"mae", "rmse"} <= set(metrics)
    train_run = tracking.get_run(workspace, run.lineage["produced"]["run_id"][0])
    assert "test.r2" in train_run.metrics
