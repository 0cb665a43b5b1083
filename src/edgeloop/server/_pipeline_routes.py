"""Routes for pipeline triggers and the queue (runs execute in a scheduler)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from edgeloop import pipelines
from edgeloop.pipelines import PipelineRunInfo, QueueEntry
from edgeloop.server._deps import as_role
from edgeloop.workspace import Workspace

router = APIRouter(tags=["pipelines"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str
    alert: dict[str, Any] = Field(default_factory=dict)


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: dict[str, Any] = Field(default_factory=dict)


@router.post("/triggers/alert", status_code=202)
def alert(body: AlertIn, ws: Workspace = editor) -> QueueEntry:
    """Queue a retraining run because a monitoring alert fired (``alert`` is its evidence)."""
    return pipelines.enqueue(ws, body.pipeline, "alert", body.alert)


@router.post("/pipelines/{name}/trigger", status_code=202)
def trigger(name: str, body: TriggerIn, ws: Workspace = editor) -> QueueEntry:
    """Queue a manual run of the pipeline."""
    return pipelines.enqueue(ws, name, "manual", body.detail)


@router.get("/pipelines/runs")
def runs(
    pipeline: str | None = None, limit: int = 50, ws: Workspace = viewer
) -> list[PipelineRunInfo]:
    return pipelines.list_pipeline_runs(ws, pipeline, limit)


@router.get("/pipelines/runs/{run_id}")
def run(run_id: str, ws: Workspace = viewer) -> PipelineRunInfo:
    return pipelines.get_pipeline_run(ws, run_id)


@router.get("/pipelines/queue")
def queue(ws: Workspace = viewer) -> list[QueueEntry]:
    return pipelines.queued(ws)
