"""Monitor routes: monitors (create, list, show, delete, run, reports) and the prediction,
label and review intake that performance is measured on."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from edgeloop.monitoring._labels import (
    LabelIn,
    LabelsResult,
    PredictionIn,
    PredictionsRecorded,
    ReviewInfo,
    post_labels,
    post_review,
    record_predictions,
)
from edgeloop.monitors import _monitors, _report, _run
from edgeloop.monitors._entities import MonitorInfo, ReportInfo, TestOverride
from edgeloop.server._deps import as_role
from edgeloop.workspace import Workspace

__all__ = ["router"]

router = APIRouter(tags=["monitors"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitorIn(_Body):
    name: str
    model: str
    window: str | int = "1h"
    group: str | None = None
    tags: dict[str, str] | None = None
    sources: list[str] | None = None
    tests: dict[str, str | TestOverride] | list[str] | None = None
    drift_share: float = 0.5
    min_samples: int = _monitors.DEFAULT_MIN_SAMPLES
    slice_by: list[str] = Field(default_factory=lambda: ["site"])
    delay: str | int = 0
    start: int | None = None
    description: str = ""


class RunIn(_Body):
    now: int | None = None
    """Evaluate as of this time (epoch ms; default: now)."""


class PredictionsIn(_Body):
    model: str
    version: int
    source: str
    predictions: list[PredictionIn]
    tags: dict[str, str] = Field(default_factory=dict)


class LabelsIn(_Body):
    labels: list[LabelIn]


class ReviewIn(_Body):
    prediction_id: str
    decision: str
    label: str | int | None = None
    reviewer: str | None = None


@router.post("/monitors", status_code=201)
def create_monitor(body: MonitorIn, ws: Workspace = editor) -> MonitorInfo:
    tests: Any = body.tests
    return _monitors.create_monitor(
        ws,
        body.name,
        model=body.model,
        window=body.window,
        group=body.group,
        tags=body.tags,
        sources=body.sources,
        tests=tests,
        drift_share=body.drift_share,
        min_samples=body.min_samples,
        slice_by=body.slice_by,
        delay=body.delay,
        start=body.start,
        description=body.description,
    )


@router.get("/monitors")
def list_monitors(model: str | None = None, ws: Workspace = viewer) -> list[MonitorInfo]:
    return _monitors.list_monitors(ws, model=model)


@router.get("/monitors/{name}")
def get_monitor(name: str, ws: Workspace = viewer) -> MonitorInfo:
    return _monitors.get_monitor(ws, name)


@router.delete("/monitors/{name}")
def delete_monitor(name: str, ws: Workspace = editor) -> MonitorInfo:
    """Delete a monitor and its reports."""
    return _monitors.delete_monitor(ws, name)


@router.post("/monitors/{name}/run")
def run_monitor(name: str, body: RunIn | None = None, ws: Workspace = editor) -> list[ReportInfo]:
    """Evaluate the closed windows not yet reported; returns the new reports."""
    return _run.run_monitor(ws, name, now=body.now if body else None)


@router.get("/monitors/{name}/reports")
def monitor_reports(
    name: str, since: int | None = None, limit: int | None = None, ws: Workspace = viewer
) -> list[ReportInfo]:
    """Reports, oldest window first (``since``: windows ending after it; ``limit``: the
    newest ``limit``)."""
    return _run.list_reports(ws, name, since=since, limit=limit)


@router.get("/monitors/{name}/summary")
def monitor_summary(name: str, windows: int = 24, ws: Workspace = viewer) -> _report.MonitorSummary:
    return _report.monitor_report(ws, name, windows=windows)


@router.post("/monitoring/predictions", status_code=201)
def predictions(body: PredictionsIn, ws: Workspace = editor) -> PredictionsRecorded:
    """Record predictions (id, predicted, confidence, at, tags) of a model version."""
    return record_predictions(
        ws, body.model, body.version, body.source, body.predictions, tags=body.tags
    )


@router.post("/monitoring/labels")
def labels(body: LabelsIn, ws: Workspace = editor) -> LabelsResult:
    """Ground truth by prediction id; ids never recorded come back in ``unknown``."""
    return post_labels(ws, body.labels)


@router.post("/monitoring/reviews", status_code=201)
def reviews(body: ReviewIn, ws: Workspace = editor) -> ReviewInfo:
    """A person's decision on a prediction: confirm, correct (with the label) or reject."""
    return post_review(ws, body.prediction_id, body.decision, body.label, body.reviewer)
