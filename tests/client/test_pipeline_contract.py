"""Pipeline runs and the trigger queue through the Backend contract, local and over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tests.conftest import http_backend_for

from edgeloop.client import Backend, LocalBackend
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.pipelines import InlineExecutor, PipelineSpec, StepSpec, run_pipeline
from edgeloop.workspace import Workspace

M = "tests.pipelines._steps"


@pytest.fixture(params=["local", "http"])
def ran(
    request: pytest.FixtureRequest, make_workspace: Callable[..., Workspace]
) -> Iterator[tuple[Backend, str]]:
    ws = make_workspace()
    spec = PipelineSpec(
        name="tiny",
        steps=(
            StepSpec("ingest", f"{M}:ingest", params={"rows": 10}, outputs=("table",)),
            StepSpec(
                "count",
                f"{M}:count_rows",
                inputs={"table": "steps.ingest.table"},
                outputs=("rows",),
            ),
        ),
    )
    run = run_pipeline(ws, spec, executor=InlineExecutor())
    backend: Backend = (
        LocalBackend(workspace=ws) if request.param == "local" else http_backend_for(ws)
    )
    yield backend, run.id
    backend.close()


def test_runs_are_listed_and_shown(ran: tuple[Backend, str]) -> None:
    backend, run_id = ran
    (listed,) = backend.list_pipeline_runs("tiny")
    assert listed.id == run_id
    shown = backend.get_pipeline_run(run_id)
    assert [s.name for s in shown.steps] == ["ingest", "count"]
    assert shown.step("count").inputs["table"]["step"] == "ingest"
    assert backend.list_pipeline_runs("other") == []
    with pytest.raises(NotFound):
        backend.get_pipeline_run("0" * 32)
    with pytest.raises(ValidationFailed, match="limit"):
        backend.list_pipeline_runs(limit=0)


def test_triggers_queue_through_the_backend(ran: tuple[Backend, str]) -> None:
    backend, _ = ran
    backend.trigger_pipeline("tiny", "manual", {"note": "by hand"})
    backend.trigger_pipeline("tiny", "alert", {"rule": "accuracy < 0.85"})
    (entry,) = backend.pipeline_queue()
    assert sorted(entry.reasons) == ["alert", "manual"]
    assert entry.reasons["alert"][0]["rule"] == "accuracy < 0.85"
