"""What the pipeline service returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["PipelineRunInfo", "RunStatus", "StepRunInfo", "StepStatus"]

RunStatus = Literal["running", "succeeded", "failed"]
StepStatus = Literal["pending", "running", "cached", "succeeded", "failed", "skipped"]


class StepRunInfo(BaseModel):
    name: str
    status: StepStatus
    cache_key: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    logs_digest: str = ""
    error: str = ""
    started_at: int | None = None
    ended_at: int | None = None


class PipelineRunInfo(BaseModel):
    id: str
    pipeline: str
    status: RunStatus
    params: dict[str, Any] = Field(default_factory=dict)
    reasons: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    resumed_from: str | None = None
    started_at: int
    ended_at: int | None = None
    created_by: str
    steps: list[StepRunInfo] = Field(default_factory=list)

    def step(self, name: str) -> StepRunInfo:
        return next(s for s in self.steps if s.name == name)
