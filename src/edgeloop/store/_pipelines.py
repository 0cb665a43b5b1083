"""Store for pipeline runs and their step runs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgeloop.errors import NotFound
from edgeloop.store._models import PipelineRun, StepRun

__all__ = ["PipelineStore"]


class PipelineStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add_run(self, run: PipelineRun, steps: list[StepRun]) -> PipelineRun:
        self.s.add(run)
        self.s.flush()
        for step in steps:
            step.pipeline_run_id = run.id
        self.s.add_all(steps)
        self.s.flush()
        return run

    def run(self, run_id: str, *, for_update: bool = False) -> PipelineRun:
        stmt = select(PipelineRun).where(PipelineRun.id == run_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.s.scalar(stmt)
        if row is None:
            raise NotFound(f"pipeline run {run_id!r} does not exist", details={"run": run_id})
        return row

    def runs(self, pipeline: str | None, offset: int, limit: int) -> list[PipelineRun]:
        stmt = select(PipelineRun)
        if pipeline:
            stmt = stmt.where(PipelineRun.pipeline == pipeline)
        stmt = (
            stmt.order_by(PipelineRun.started_at.desc(), PipelineRun.id).offset(offset).limit(limit)
        )
        return list(self.s.scalars(stmt))

    def last_succeeded(self, pipeline: str) -> PipelineRun | None:
        stmt = (
            select(PipelineRun)
            .where(PipelineRun.pipeline == pipeline, PipelineRun.status == "succeeded")
            .order_by(PipelineRun.started_at.desc(), PipelineRun.id.desc())
            .limit(1)
        )
        return self.s.scalar(stmt)

    def steps(self, run_id: str) -> list[StepRun]:
        stmt = select(StepRun).where(StepRun.pipeline_run_id == run_id).order_by(StepRun.id)
        return list(self.s.scalars(stmt))

    def step(self, run_id: str, name: str) -> StepRun:
        row = self.s.scalar(
            select(StepRun).where(StepRun.pipeline_run_id == run_id, StepRun.name == name)
        )
        if row is None:
            raise NotFound(f"pipeline run {run_id} has no step {name!r}")
        return row

    def cached(self, cache_key: str) -> StepRun | None:
        """The newest succeeded step run with this cache key, from any pipeline run."""
        stmt = (
            select(StepRun)
            .where(StepRun.cache_key == cache_key, StepRun.status == "succeeded")
            .order_by(StepRun.id.desc())
            .limit(1)
        )
        return self.s.scalar(stmt)
