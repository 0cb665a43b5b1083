"""Pipeline definitions, the cached runner, failures and resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from edgeloop import datasets, pipelines
from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.pipelines import (
    InlineExecutor,
    LocalProcessExecutor,
    PipelineSpec,
    StepSpec,
    load_value,
    run_pipeline,
)
from edgeloop.workspace import Workspace

M = "tests.pipelines._steps"


def six_steps(**params: object) -> PipelineSpec:
    return PipelineSpec(
        name="six",
        params={"rows": 100, "C": 1.0, **params},
        steps=(
            StepSpec(
                "ingest", f"{M}:ingest", params={"rows": "${params.rows}"}, outputs=("table",)
            ),
            StepSpec(
                "validate",
                f"{M}:validate",
                inputs={"table": "steps.ingest.table"},
                outputs=("table",),
            ),
            StepSpec(
                "features",
                f"{M}:features",
                inputs={"table": "steps.validate.table"},
                outputs=("X", "y"),
            ),
            StepSpec(
                "train",
                f"{M}:train",
                inputs={"X": "steps.features.X", "y": "steps.features.y"},
                params={"C": "${params.C}"},
                outputs=("model",),
            ),
            StepSpec(
                "evaluate",
                f"{M}:evaluate",
                inputs={
                    "model": "steps.train.model",
                    "X": "steps.features.X",
                    "y": "steps.features.y",
                },
                outputs=("metrics",),
            ),
            StepSpec(
                "register",
                f"{M}:register",
                inputs={"metrics": "steps.evaluate.metrics"},
                outputs=("summary",),
            ),
        ),
    )


@pytest.fixture
def step_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    path = tmp_path / "steps.log"
    monkeypatch.setenv("EDGELOOP_TEST_STEP_LOG", str(path))

    def read() -> list[str]:
        lines = path.read_text().split() if path.exists() else []
        path.write_text("")
        return lines

    return read


def test_a_pipeline_runs_in_order_and_records_every_step(
    workspace: Workspace, step_log: Callable[[], list[str]]
) -> None:
    run = run_pipeline(workspace, six_steps(), executor=InlineExecutor())
    assert run.status == "succeeded"
    assert step_log() == ["ingest", "validate", "features", "train", "evaluate", "register"]
    assert [s.status for s in run.steps] == ["succeeded"] * 6
    summary = load_value(workspace.artifacts.get_bytes(run.step("register").outputs["summary"]))
    assert summary.startswith("accuracy=")
    logs = workspace.artifacts.get_bytes(run.step("validate").logs_digest).decode()
    assert "validated 100 rows" in logs
    assert run.reasons == {"manual": {"by": workspace.principal.name}}
    assert len(run.lineage["environment_digest"]) == 64
    assert pipelines.get_pipeline_run(workspace, run.id).status == "succeeded"
    assert [r.id for r in pipelines.list_pipeline_runs(workspace, "six")] == [run.id]


def test_unchanged_rerun_does_no_work_and_a_param_change_reruns_downstream(
    workspace: Workspace, step_log: Callable[[], list[str]]
) -> None:
    run_pipeline(workspace, six_steps(), executor=InlineExecutor())
    step_log()
    again = run_pipeline(workspace, six_steps(), executor=InlineExecutor())
    assert step_log() == []
    assert [s.status for s in again.steps] == ["cached"] * 6
    changed = run_pipeline(workspace, six_steps(), params={"C": 0.5}, executor=InlineExecutor())
    assert step_log() == ["train", "evaluate", "register"]
    assert changed.params["C"] == 0.5
    forced = run_pipeline(workspace, six_steps(), force=["validate"], executor=InlineExecutor())
    # validate re-ran with identical output, so everything after it is a cache hit again
    assert step_log() == ["validate"]
    assert forced.step("features").status == "cached"


def test_a_failing_step_stops_its_dependents_and_resume_continues(
    workspace: Workspace, step_log: Callable[[], list[str]], tmp_path: Path
) -> None:
    marker = tmp_path / "ready"
    spec = PipelineSpec(
        name="branches",
        steps=(
            StepSpec("ingest", f"{M}:ingest", outputs=("table",)),
            StepSpec(
                "flaky",
                f"{M}:flaky",
                inputs={"table": "steps.ingest.table"},
                params={"marker": str(marker)},
                outputs=("n",),
            ),
            StepSpec("after", f"{M}:double", inputs={"n": "steps.flaky.n"}, outputs=("doubled",)),
            StepSpec(
                "count",
                f"{M}:count_rows",
                inputs={"table": "steps.ingest.table"},
                outputs=("rows",),
            ),
        ),
    )
    failed = run_pipeline(workspace, spec, executor=InlineExecutor())
    assert failed.status == "failed"
    assert failed.error == "step(s) failed: flaky"
    assert "is missing" in failed.step("flaky").error
    assert failed.step("after").status == "skipped"
    assert failed.step("count").status == "succeeded"  # independent branch still ran
    step_log()
    marker.write_text("")
    resumed = run_pipeline(workspace, spec, resume=failed.id, executor=InlineExecutor())
    assert step_log() == ["flaky", "double"]
    assert resumed.status == "succeeded"
    assert resumed.resumed_from == failed.id
    assert resumed.step("ingest").status == "cached"
    with pytest.raises(NotFound):
        run_pipeline(workspace, spec, resume="0" * 32, executor=InlineExecutor())


def test_resuming_a_succeeded_run_is_refused(workspace: Workspace) -> None:
    ok = run_pipeline(workspace, six_steps(), executor=InlineExecutor())
    with pytest.raises(Conflict, match="nothing to resume"):
        run_pipeline(workspace, six_steps(), resume=ok.id, executor=InlineExecutor())


def test_dataset_inputs_resolve_to_versions_and_refuse_quarantine(
    workspace: Workspace, step_log: Callable[[], list[str]]
) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    v1 = datasets.add_version(workspace, "points", table, policy="quarantine").version
    spec = PipelineSpec(
        name="from-data",
        steps=(
            StepSpec(
                "count",
                f"{M}:count_rows",
                inputs={"table": "datasets:/points@latest"},
                outputs=("rows",),
            ),
        ),
    )
    run = run_pipeline(workspace, spec, executor=InlineExecutor())
    assert run.lineage["datasets"] == {v1.uri: v1.digest}
    assert run.step("count").inputs["table"] == {"dataset": v1.uri, "digest": v1.digest}
    bigger = pa.table({"x": [1.0, 2.0, 3.0, 9e9], "y": [0, 1, 0, 1]})
    v2 = datasets.add_version(workspace, "points", bigger).version
    assert v2.status == "quarantined"
    with pytest.raises(Conflict, match="quarantined"):
        run_pipeline(workspace, spec, executor=InlineExecutor())
    datasets.accept_version(workspace, v2.uri)
    step_log()
    rerun = run_pipeline(workspace, spec, executor=InlineExecutor())  # new data: not cached
    assert step_log() == ["count_rows"]
    assert load_value(workspace.artifacts.get_bytes(rerun.step("count").outputs["rows"])) == 4


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((StepSpec("a", f"{M}:ingest", inputs={"t": "steps.b.table"}),), "not in pipeline"),
        (
            (
                StepSpec("a", f"{M}:ingest", outputs=("table",)),
                StepSpec("b", f"{M}:validate", inputs={"table": "steps.a.nope"}),
            ),
            "wants output",
        ),
        (
            (
                StepSpec(
                    "a", f"{M}:validate", inputs={"table": "steps.b.table"}, outputs=("table",)
                ),
                StepSpec(
                    "b", f"{M}:validate", inputs={"table": "steps.a.table"}, outputs=("table",)
                ),
            ),
            "cycle: a -> b -> a",
        ),
        ((StepSpec("a", f"{M}:ingest"), StepSpec("a", f"{M}:ingest")), "duplicate"),
        ((StepSpec("a", f"{M}:ingest", params={"rows": "${params.nope}"}),), "does not declare"),
        ((), "no steps"),
    ],
)
def test_bad_definitions_are_clear_errors(steps: tuple[StepSpec, ...], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        PipelineSpec(name="bad", steps=steps)


def test_pipelines_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "edgeloop.yaml"
    path.write_text(
        f"""
pipelines:
  demo:
    params: {{rows: 50}}
    steps:
      ingest:
        run: {M}:ingest
        params: {{rows: "${{params.rows}}"}}
        outputs: [table]
      count:
        run: {M}:count_rows
        inputs: {{table: steps.ingest.table}}
        outputs: rows
"""
    )
    spec = pipelines.load_pipelines(path)["demo"]
    assert [s.name for s in spec.order()] == ["ingest", "count"]
    assert spec.step_params(spec.steps[0]) == {"rows": 50}
    with pytest.raises(ValidationFailed, match="no param"):
        spec.with_params({"nope": 1})
    path.write_text("pipelines:\n  x:\n    steps:\n      a: {run: m:f, retries: 3}\n")
    with pytest.raises(ValidationFailed, match="unknown key"):
        pipelines.load_pipelines(path)
    with pytest.raises(NotFound):
        pipelines.load_pipelines(tmp_path / "missing.yaml")


def test_code_digest_follows_the_module_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "userstep.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = pipelines.code_digest("userstep:f")
    (tmp_path / "userstep.py").write_text("def f():\n    return 2\n")
    assert pipelines.code_digest("userstep:f") != first
    assert "userstep" not in sys.modules  # read from its file, never imported
    with pytest.raises(NotFound):
        pipelines.code_digest("userstep:missing")
    with pytest.raises(ValidationFailed):
        pipelines.code_digest("no-colon")


@pytest.mark.slow
def test_the_process_pool_runs_independent_steps(
    make_workspace: Callable[..., Workspace], step_log: Callable[[], list[str]]
) -> None:
    ws = make_workspace()
    executor = LocalProcessExecutor(workers=2)
    try:
        run = run_pipeline(ws, six_steps(), executor=executor)
    finally:
        executor.shutdown()
    assert run.status == "succeeded"
    assert sorted(step_log()) == sorted(
        ["ingest", "validate", "features", "train", "evaluate", "register"]
    )
