"""Triggers: the coalescing queue, schedules, data and code changes, alerts, the lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pyarrow as pa
import pytest
from tests._asgi import asgi_client

from edgeloop import datasets, pipelines
from edgeloop.errors import ValidationFailed
from edgeloop.pipelines import InlineExecutor, PipelineSpec, Scheduler, StepSpec, Triggers
from edgeloop.server import create_app
from edgeloop.workspace import Workspace

M = "tests.pipelines._steps"


def counting(schedule: str | None = None, **triggers: bool) -> PipelineSpec:
    return PipelineSpec(
        name="counting",
        steps=(
            StepSpec(
                "count",
                f"{M}:count_rows",
                inputs={"table": "datasets:/points@latest"},
                outputs=("rows",),
            ),
        ),
        triggers=Triggers(schedule=schedule, **triggers),
    )


@pytest.fixture
def points(workspace: Workspace) -> Workspace:
    datasets.add_version(workspace, "points", pa.table({"x": [1.0, 2.0, 3.0]}))
    return workspace


def test_triggers_coalesce_into_one_queued_run(points: Workspace) -> None:
    pipelines.enqueue(points, "counting", "manual", {"note": "first"})
    pipelines.enqueue(points, "counting", "alert", {"rule": "drift_share >= 0.5"})
    pipelines.enqueue(points, "counting", "alert", {"rule": "accuracy < 0.85"})
    (entry,) = pipelines.queued(points)
    assert sorted(entry.reasons) == ["alert", "manual"]
    assert [r["rule"] for r in entry.reasons["alert"]] == ["drift_share >= 0.5", "accuracy < 0.85"]
    runs = Scheduler(points, {"counting": counting()}, executor=InlineExecutor()).tick()
    assert [r.status for r in runs] == ["succeeded"]
    assert sorted(runs[0].reasons) == ["alert", "manual"]  # every reason kept on the run
    assert pipelines.queued(points) == []
    with pytest.raises(ValidationFailed, match="not known"):
        pipelines.enqueue(points, "counting", "whim")


def test_a_schedule_fires_once_for_missed_ticks(points: Workspace) -> None:
    spec = counting(schedule="0 * * * *")
    assert pipelines.check_schedule(points, spec, datetime(2026, 1, 1, 10, 30, tzinfo=UTC)) is None
    assert pipelines.check_schedule(points, spec, datetime(2026, 1, 1, 10, 59, tzinfo=UTC)) is None
    # 3 ticks (11:00, 12:00, 13:00) were missed: one run
    fired = pipelines.check_schedule(points, spec, datetime(2026, 1, 1, 13, 5, tzinfo=UTC))
    assert fired is not None
    assert fired.reasons["schedule"][0]["tick"] == int(
        datetime(2026, 1, 1, 13, tzinfo=UTC).timestamp() * 1000
    )
    assert pipelines.check_schedule(points, spec, datetime(2026, 1, 1, 13, 50, tzinfo=UTC)) is None
    assert len(pipelines.queued(points)[0].reasons["schedule"]) == 1
    with pytest.raises(ValidationFailed, match="cron"):
        counting(schedule="every day")


def test_data_change_fires_for_a_new_version(points: Workspace) -> None:
    spec = counting(data_change=True)
    assert pipelines.check_data_change(points, spec) is None  # never succeeded yet
    pipelines.run_pipeline(points, spec, executor=InlineExecutor())
    assert pipelines.check_data_change(points, spec) is None
    v2 = datasets.add_version(points, "points", pa.table({"x": [1.0, 2.0, 3.0, 4.0]})).version
    fired = pipelines.check_data_change(points, spec)
    assert fired is not None
    assert fired.reasons["data_change"][0]["datasets"] == [v2.uri]


def test_code_change_compares_with_the_last_success(points: Workspace) -> None:
    spec = counting()
    assert pipelines.check_code_change(points, spec) is not None  # nothing succeeded yet
    Scheduler(points, {"counting": spec}, executor=InlineExecutor()).tick()
    assert pipelines.check_code_change(points, spec) is None
    assert (
        pipelines.pipeline_code_digest(spec)
        == pipelines.list_pipeline_runs(points, "counting")[0].lineage["code_digest"]
    )


def test_two_schedulers_never_fire_twice(points: Workspace) -> None:
    spec = counting(schedule="* * * * *")
    pipelines.check_schedule(points, spec, datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    made: list[int] = []
    workers = [
        Scheduler(points, {"counting": spec}, executor=InlineExecutor(), holder=f"w{i}")
        for i in range(2)
    ]
    barrier = threading.Barrier(2)

    def go(worker: Scheduler) -> None:
        barrier.wait()
        made.append(len(worker.tick(datetime(2026, 1, 1, 10, 5, tzinfo=UTC))))

    threads = [threading.Thread(target=go, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == [0, 1]
    assert len(pipelines.list_pipeline_runs(points, "counting")) == 1
    assert not workers[1].holds_lease() or not workers[0].holds_lease()


def test_an_expired_lease_passes_to_another_scheduler(points: Workspace) -> None:
    first = Scheduler(points, {}, holder="a", lease_ms=1)
    second = Scheduler(points, {}, holder="b", lease_ms=60_000)
    assert first.holds_lease()
    time.sleep(0.01)
    assert second.holds_lease()
    assert not first.holds_lease()
    second.release()
    assert first.holds_lease()


@pytest.fixture
def client(make_workspace: Callable[..., Workspace]) -> httpx.Client:
    return asgi_client(create_app(workspace=make_workspace()))


def test_the_alert_endpoint_queues_a_retraining_run(client: httpx.Client) -> None:
    body = {"pipeline": "retrain", "alert": {"rule": "drift_share >= 0.5", "report": "r1"}}
    response = client.post("/api/v1/triggers/alert", json=body)
    assert response.status_code == 202
    assert response.json()["reasons"]["alert"][0]["rule"] == "drift_share >= 0.5"
    assert client.post("/api/v1/pipelines/retrain/trigger", json={}).status_code == 202
    (entry,) = client.get("/api/v1/pipelines/queue").json()
    assert sorted(entry["reasons"]) == ["alert", "manual"]
    assert client.post("/api/v1/triggers/alert", json={"alert": {}}).status_code == 400
