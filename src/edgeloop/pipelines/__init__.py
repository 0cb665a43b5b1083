"""Pipelines: DAGs of steps declared in ``edgeloop.yaml`` or Python, run with content-hash
caching, every run and step recorded with its lineage.

The built-in steps (train, evaluate, gate, register) live in :mod:`edgeloop.pipelines.builtin`,
imported only by the pipelines that use them (they bring scikit-learn).
"""

from __future__ import annotations

from edgeloop.pipelines._context import StepContext, current_context, step_workspace
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
from edgeloop.pipelines._spec import (
    PipelineSpec,
    StepSpec,
    Triggers,
    load_pipelines,
    resolve_function,
    step,
)
from edgeloop.pipelines._triggers import (
    TRIGGER_KINDS,
    QueueEntry,
    Scheduler,
    check_code_change,
    check_data_change,
    check_schedule,
    enqueue,
    pipeline_code_digest,
    queued,
)

__all__ = [
    "TRIGGER_KINDS",
    "Executor",
    "InlineExecutor",
    "LocalProcessExecutor",
    "PipelineRunInfo",
    "PipelineSpec",
    "QueueEntry",
    "RunStatus",
    "Scheduler",
    "StepContext",
    "StepOutcome",
    "StepRunInfo",
    "StepSpec",
    "StepStatus",
    "StepTask",
    "Triggers",
    "check_code_change",
    "check_data_change",
    "check_schedule",
    "code_digest",
    "current_context",
    "dump_value",
    "enqueue",
    "get_pipeline_run",
    "list_pipeline_runs",
    "load_pipelines",
    "load_value",
    "pipeline_code_digest",
    "queued",
    "resolve_function",
    "run_pipeline",
    "step",
    "step_workspace",
]
