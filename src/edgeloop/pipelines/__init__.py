"""Pipelines: DAGs of steps declared in ``edgeloop.yaml`` or Python, run with content-hash
caching, every run and step recorded with its lineage."""

from __future__ import annotations

from edgeloop.pipelines._entities import PipelineRunInfo, RunStatus, StepRunInfo, StepStatus
from edgeloop.pipelines._executor import (
    Executor,
    InlineExecutor,
    LocalProcessExecutor,
    StepOutcome,
    StepTask,
    dump_value,
    load_value,
)
from edgeloop.pipelines._runner import (
    code_digest,
    get_pipeline_run,
    list_pipeline_runs,
    run_pipeline,
)
from edgeloop.pipelines._spec import PipelineSpec, StepSpec, load_pipelines, resolve_function, step

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalProcessExecutor",
    "PipelineRunInfo",
    "PipelineSpec",
    "RunStatus",
    "StepOutcome",
    "StepRunInfo",
    "StepSpec",
    "StepStatus",
    "StepTask",
    "code_digest",
    "dump_value",
    "get_pipeline_run",
    "list_pipeline_runs",
    "load_pipelines",
    "load_value",
    "resolve_function",
    "run_pipeline",
    "step",
]
