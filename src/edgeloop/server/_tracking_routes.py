"""Routes for experiments, runs, metrics and run artifacts."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgeloop import tracking
from edgeloop.pages import Page
from edgeloop.server._deps import as_role
from edgeloop.server._schemas import (
    ExperimentIn,
    InputsIn,
    MetricsIn,
    ParamsIn,
    RunIn,
    RunPatch,
    SearchIn,
    TagsIn,
)
from edgeloop.tracking import ArtifactEntry, Experiment, Metric, Run
from edgeloop.workspace import Workspace

router = APIRouter(tags=["tracking"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentIn, ws: Workspace = editor) -> Experiment:
    return tracking.create_experiment(ws, body.name, body.description, body.tags)


@router.get("/experiments")
def list_experiments(
    cursor: str | None = None, limit: int = 100, ws: Workspace = viewer
) -> Page[Experiment]:
    return tracking.list_experiments(ws, cursor, limit)


@router.get("/experiments/{ref}")
def get_experiment(ref: str, ws: Workspace = viewer) -> Experiment:
    return tracking.get_experiment(ws, ref)


@router.post("/runs", status_code=201)
def create_run(body: RunIn, ws: Workspace = editor) -> Run:
    return tracking.create_run(
        ws,
        body.experiment,
        body.name,
        params=body.params,
        tags=body.tags,
        lineage=body.lineage,
        inputs=body.inputs,
        parent_run_id=body.parent_run_id,
    )


@router.post("/runs/search")
def search_runs(body: SearchIn, ws: Workspace = viewer) -> Page[Run]:
    return tracking.search_runs(
        ws, body.experiments, body.filter, body.order_by, body.max_results, body.cursor
    )


@router.get("/runs/{run_id}")
def get_run(run_id: str, ws: Workspace = viewer) -> Run:
    return tracking.get_run(ws, run_id)


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: RunPatch, ws: Workspace = editor) -> Run:
    return tracking.set_run_status(ws, run_id, body.status)


@router.post("/runs/{run_id}/params", status_code=204)
def log_params(run_id: str, body: ParamsIn, ws: Workspace = editor) -> Response:
    tracking.log_params(ws, run_id, body.params)
    return Response(status_code=204)


@router.post("/runs/{run_id}/tags", status_code=204)
def set_tags(run_id: str, body: TagsIn, ws: Workspace = editor) -> Response:
    tracking.set_tags(ws, run_id, body.tags)
    return Response(status_code=204)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204)
def delete_tag(run_id: str, key: str, ws: Workspace = editor) -> Response:
    tracking.delete_tag(ws, run_id, key)
    return Response(status_code=204)


@router.post("/runs/{run_id}/metrics")
def log_metrics(run_id: str, body: MetricsIn, ws: Workspace = editor) -> dict[str, int]:
    return {"stored": tracking.log_metrics(ws, run_id, body.points)}


@router.get("/runs/{run_id}/metrics/{key:path}")
def metric_history(run_id: str, key: str, ws: Workspace = viewer) -> list[Metric]:
    return tracking.metric_history(ws, run_id, key)


@router.post("/runs/{run_id}/inputs", status_code=204)
def log_inputs(run_id: str, body: InputsIn, ws: Workspace = editor) -> Response:
    tracking.log_inputs(ws, run_id, body.inputs)
    return Response(status_code=204)


@router.put("/runs/{run_id}/artifacts/{path:path}")
async def put_artifact(
    run_id: str, path: str, request: Request, ws: Workspace = editor
) -> ArtifactEntry:
    tracking.check_artifact_path(path)
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        entry: ArtifactEntry = await run_in_threadpool(
            tracking.put_artifact,
            ws,
            run_id,
            path,
            spool,  # type: ignore[arg-type]
        )
    return entry


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, prefix: str = "", ws: Workspace = viewer) -> list[ArtifactEntry]:
    return tracking.list_artifacts(ws, run_id, prefix)


@router.get("/runs/{run_id}/artifacts/{path:path}")
def get_artifact(run_id: str, path: str, ws: Workspace = viewer) -> StreamingResponse:
    entry = tracking.read_artifact(ws, run_id, path)
    return blob_response(ws, entry)


def blob_response(ws: Workspace, entry: ArtifactEntry) -> StreamingResponse:
    """Stream a verified blob (verification happens before the first byte is sent)."""
    chunks = ws.artifacts.iter_verified(entry.digest)
    first = next(chunks, b"")

    def body() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(
        body(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(entry.size), "ETag": f'"{entry.digest}"'},
    )
