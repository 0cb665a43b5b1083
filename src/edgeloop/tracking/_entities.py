"""What the tracking service returns; the same types travel over the REST API."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "TERMINAL_STATUSES",
    "ArtifactEntry",
    "Experiment",
    "Metric",
    "MetricPoint",
    "Run",
    "RunInput",
    "RunStatus",
]

RunStatus = Literal["running", "finished", "failed", "killed"]
TERMINAL_STATUSES: tuple[RunStatus, ...] = ("finished", "failed", "killed")


class Experiment(BaseModel):
    id: int
    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: int
    created_by: str


class MetricPoint(BaseModel):
    """One point of a metric series, as logged."""

    key: str
    value: float
    step: int = 0
    timestamp: int


class Metric(MetricPoint):
    pass


class RunInput(BaseModel):
    """Something a run consumed: ``datasets:/name@4``, a file digest, another run's output."""

    ref: str
    kind: str = "dataset"
    digest: str = ""


class Run(BaseModel):
    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    created_by: str
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    inputs: list[RunInput] = Field(default_factory=list)


class ArtifactEntry(BaseModel):
    path: str
    digest: str
    size: int


def cv_metric_points(
    metric: str, scores: list[float], mean: float, std: float, timestamp: int
) -> list[MetricPoint]:
    """The points a cross-validated trial is recorded with: ``cv_<metric>`` per fold (step =
    fold), and ``cv_<metric>_mean`` / ``_std``. Undefined (NaN) scores are left out."""
    key = f"cv_{metric}"
    points = [
        MetricPoint(key=key, value=score, step=fold, timestamp=timestamp)
        for fold, score in enumerate(scores)
        if math.isfinite(score)
    ]
    for suffix, value in (("mean", mean), ("std", std)):
        if math.isfinite(value):
            points.append(MetricPoint(key=f"{key}_{suffix}", value=value, timestamp=timestamp))
    return points
