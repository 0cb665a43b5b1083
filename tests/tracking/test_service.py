"""Tracking service on SQLite and PostgreSQL (the store suite)."""

from __future__ import annotations

import io

import pytest

from edgeloop import tracking
from edgeloop.errors import Conflict, FilterSyntaxError, NotFound, ValidationFailed
from edgeloop.tracking import MetricPoint, RunInput
from edgeloop.workspace import Workspace


def _points(key: str, values: list[float], start_step: int = 0) -> list[MetricPoint]:
    return [
        MetricPoint(key=key, value=v, step=start_step + i, timestamp=1000 + i)
        for i, v in enumerate(values)
    ]


def test_experiments_are_unique_and_found_by_id_or_name(workspace: Workspace) -> None:
    exp = tracking.create_experiment(workspace, "vision", "cameras", {"team": "a"})
    assert tracking.get_experiment(workspace, exp.id).name == "vision"
    assert tracking.get_experiment(workspace, "vision").tags == {"team": "a"}
    with pytest.raises(Conflict, match="already exists"):
        tracking.create_experiment(workspace, "vision")
    with pytest.raises(NotFound):
        tracking.get_experiment(workspace, "nope")
    with pytest.raises(ValidationFailed, match="experiment name"):
        tracking.create_experiment(workspace, "../etc")


def test_list_experiments_paginates_with_a_cursor(workspace: Workspace) -> None:
    for i in range(5):
        tracking.create_experiment(workspace, f"e{i}")
    first = tracking.list_experiments(workspace, limit=3)
    assert [e.name for e in first.items] == ["e0", "e1", "e2"]
    second = tracking.list_experiments(workspace, first.next_cursor, limit=3)
    assert [e.name for e in second.items] == ["e3", "e4"]
    assert second.next_cursor is None
    with pytest.raises(ValidationFailed, match="cursor"):
        tracking.list_experiments(workspace, "garbage!", limit=3)


def test_run_lifecycle_and_terminal_status(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp", "first", params={"lr": 0.1}, tags={"team": "x"})
    assert run.status == "running" and run.end_time is None
    assert run.params == {"lr": "0.1"} and run.tags == {"team": "x"}
    done = tracking.set_run_status(workspace, run.id, "finished")
    assert done.status == "finished" and done.end_time is not None
    with pytest.raises(Conflict, match="already finished"):
        tracking.set_run_status(workspace, run.id, "running")
    with pytest.raises(ValidationFailed, match="status"):
        tracking.set_run_status(workspace, run.id, "exploded")
    with pytest.raises(NotFound):
        tracking.get_run(workspace, "0" * 32)


def test_params_are_write_once(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp")
    tracking.log_params(workspace, run.id, {"lr": 0.1, "model": "mlp"})
    tracking.log_params(workspace, run.id, {"lr": 0.1})  # same value again is fine
    with pytest.raises(Conflict, match="write-once") as info:
        tracking.log_params(workspace, run.id, {"lr": 0.2, "new": 1})
    assert info.value.details["changed"] == {"lr": {"old": "0.1", "new": "0.2"}}
    # nothing of the rejected call was written
    assert tracking.get_run(workspace, run.id).params == {"lr": "0.1", "model": "mlp"}


def test_tags_are_mutable_and_deletable(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp")
    tracking.set_tags(workspace, run.id, {"stage": "dev"})
    tracking.set_tags(workspace, run.id, {"stage": "prod"})
    assert tracking.get_run(workspace, run.id).tags == {"stage": "prod"}
    tracking.delete_tag(workspace, run.id, "stage")
    assert tracking.get_run(workspace, run.id).tags == {}
    with pytest.raises(NotFound):
        tracking.delete_tag(workspace, run.id, "stage")


def test_metric_series_keep_every_point_and_latest_is_highest_step(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp")
    tracking.log_metrics(workspace, run.id, _points("loss", [0.9, 0.5, 0.3]))
    tracking.log_metrics(
        workspace, run.id, [MetricPoint(key="loss", value=7.0, step=1, timestamp=5)]
    )
    history = tracking.metric_history(workspace, run.id, "loss")
    # ordered by step, then timestamp
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 7.0), (1, 0.5), (2, 0.3)]
    # a late point at a lower step does not become the latest value
    assert tracking.get_run(workspace, run.id).metrics == {"loss": 0.3}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc"])
def test_bad_metric_values_are_rejected_whole(workspace: Workspace, value: object) -> None:
    run = tracking.create_run(workspace, "exp")
    points = [
        MetricPoint.model_construct(key="ok", value=1.0, step=0, timestamp=1),
        MetricPoint.model_construct(key="bad", value=value, step=0, timestamp=1),
    ]
    with pytest.raises(ValidationFailed, match="bad"):
        tracking.log_metrics(workspace, run.id, points)
    assert tracking.metric_history(workspace, run.id, "ok") == []


def test_artifacts_are_content_addressed_and_listed(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp")
    a = tracking.put_artifact(workspace, run.id, "model/weights.bin", io.BytesIO(b"w" * 100))
    b = tracking.put_artifact(workspace, run.id, "copy/weights.bin", io.BytesIO(b"w" * 100))
    tracking.put_artifact(workspace, run.id, "modelx/other", io.BytesIO(b"x"))
    assert a.digest == b.digest and a.size == 100
    assert [e.path for e in tracking.list_artifacts(workspace, run.id, "model")] == [
        "model/weights.bin"
    ]
    entry = tracking.read_artifact(workspace, run.id, "model/weights.bin")
    assert workspace.artifacts.get_bytes(entry.digest) == b"w" * 100
    for bad in ("../x", "/etc/passwd", "a//b", "a/./b", "C:\\x"):
        with pytest.raises(ValidationFailed, match="artifact path"):
            tracking.put_artifact(workspace, run.id, bad, io.BytesIO(b""))


def test_lineage_and_inputs_are_recorded(workspace: Workspace) -> None:
    lineage = tracking.capture_lineage()
    assert len(lineage["environment_digest"]) == 64
    run = tracking.create_run(
        workspace, "exp", lineage=lineage, inputs=[RunInput(ref="datasets:/vib@3", digest="ab")]
    )
    tracking.log_inputs(workspace, run.id, [RunInput(ref="datasets:/vib@4")])
    got = tracking.get_run(workspace, run.id)
    assert got.lineage["environment_digest"] == lineage["environment_digest"]
    assert sorted(i.ref for i in got.inputs) == ["datasets:/vib@3", "datasets:/vib@4"]


def test_child_runs_need_an_existing_parent(workspace: Workspace) -> None:
    parent = tracking.create_run(workspace, "exp")
    child = tracking.create_run(workspace, "exp", parent_run_id=parent.id)
    assert child.parent_run_id == parent.id
    with pytest.raises(NotFound):
        tracking.create_run(workspace, "exp", parent_run_id="f" * 32)


@pytest.fixture
def searchable(workspace: Workspace) -> dict[str, str]:
    ids = {}
    specs = [
        ("a", {"model": "mlp", "lr": "0.1"}, {"team": "x"}, {"f1": 0.95, "loss": 0.1}),
        ("b", {"model": "mlp", "lr": "0.01"}, {"team": "y"}, {"f1": 0.85, "loss": 0.3}),
        ("c", {"model": "svm"}, {"team": "x"}, {"f1": 0.91}),
        ("d", {"model": "MLP"}, {}, {}),
    ]
    for name, params, tags, metrics in specs:
        run = tracking.create_run(workspace, "search", name, params=params, tags=tags)
        tracking.log_metrics(
            workspace,
            run.id,
            [MetricPoint(key=k, value=v, step=0, timestamp=1) for k, v in metrics.items()],
        )
        ids[name] = run.id
    tracking.set_run_status(workspace, ids["c"], "failed")
    return ids


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("metrics.f1 > 0.9", {"a", "c"}),
        ("metrics.f1 > 0.9 and params.model = 'mlp'", {"a"}),
        ("params.model = 'mlp' or tags.team = 'x'", {"a", "b", "c"}),
        ("not (params.model = 'mlp')", {"c", "d"}),
        ("params.model like 'm%'", {"a", "b"}),
        ("params.model ilike 'm%'", {"a", "b", "d"}),
        ("params.model in ('svm', 'MLP')", {"c", "d"}),
        ("attributes.status = 'failed'", {"c"}),
        ("attributes.name != 'a' and metrics.loss <= 0.3", {"b"}),
        ("metrics.`f1` >= 0.85 and (tags.team = 'y' or params.lr = 0.1)", {"a", "b"}),
        ("", {"a", "b", "c", "d"}),
    ],
)
def test_search_filters(
    workspace: Workspace, searchable: dict[str, str], filter_text: str, expected: set[str]
) -> None:
    page = tracking.search_runs(workspace, "search", filter_text)
    assert {r.name for r in page.items} == expected


def test_search_orders_and_paginates(workspace: Workspace, searchable: dict[str, str]) -> None:
    page = tracking.search_runs(workspace, "search", None, ["metrics.f1 desc"], max_results=2)
    assert [r.name for r in page.items] == ["a", "c"]
    rest = tracking.search_runs(workspace, "search", None, ["metrics.f1 desc"], 2, page.next_cursor)
    assert [r.name for r in rest.items] == ["b", "d"]  # runs without the metric sort last
    assert rest.next_cursor is None
    by_name = tracking.search_runs(workspace, "search", None, ["attributes.name asc"])
    assert [r.name for r in by_name.items] == ["a", "b", "c", "d"]


def test_search_errors_point_at_the_position(
    workspace: Workspace, searchable: dict[str, str]
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        tracking.search_runs(workspace, "search", "metrics.f1 >> 0.9")
    assert info.value.position == 12
    with pytest.raises(NotFound):
        tracking.search_runs(workspace, "nope", "metrics.f1 > 0")
    with pytest.raises(ValidationFailed, match="max_results"):
        tracking.search_runs(workspace, "search", max_results=0)
