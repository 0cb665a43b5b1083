"""Pipelines: DAGs of steps declared in ``edgeloop.yaml`` or Python, run with content-hash
caching, every run and step recorded with its lineage.

The built-in steps (train, evaluate, gate, register) live in :mod:`edgeloop.pipelines.builtin`,
imported only by the pipelines that use them (they bring scikit-learn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
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
    from edgeloop.pipelines._keys import code_digest
    from edgeloop.pipelines._runner import (
        get_pipeline_run,
        list_pipeline_runs,
        run_pipeline,
    )
    from edgeloop.pipelines._spec import (
        PipelineSpec,
        StepSpec,
        Triggers,
        load_pipelines,
        open_pipeline_file,
        parse_params,
        pick_pipeline,
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
    "open_pipeline_file",
    "parse_params",
    "pick_pipeline",
    "pipeline_code_digest",
    "queued",
    "resolve_function",
    "run_pipeline",
    "step",
    "step_workspace",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._context": ("StepContext", "current_context", "step_workspace"),
        "._entities": ("PipelineRunInfo", "RunStatus", "StepRunInfo", "StepStatus"),
        "._executor": (
            "Executor",
            "InlineExecutor",
            "LocalProcessExecutor",
            "StepOutcome",
            "StepTask",
            "dump_value",
            "load_value",
        ),
        "._keys": ("code_digest",),
        "._runner": ("get_pipeline_run", "list_pipeline_runs", "run_pipeline"),
        "._spec": (
            "PipelineSpec",
            "StepSpec",
            "Triggers",
            "load_pipelines",
            "open_pipeline_file",
            "parse_params",
            "pick_pipeline",
            "resolve_function",
            "step",
        ),
        "._triggers": (
            "TRIGGER_KINDS",
            "QueueEntry",
            "Scheduler",
            "check_code_change",
            "check_data_change",
            "check_schedule",
            "enqueue",
            "pipeline_code_digest",
            "queued",
        ),
    },
)
