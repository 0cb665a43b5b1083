"""Experiment tracking: experiments, runs, params, metric series, tags, artifacts, lineage.

Run search uses a small grammar, documented in :mod:`edgeloop.store._filter` (see docs/search.md)::

    metrics.f1 > 0.9 and params.model = 'mlp' and (tags.team = 'x' or tags.team like 'y%')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.tracking._entities import (
        TERMINAL_STATUSES,
        ArtifactEntry,
        Experiment,
        Metric,
        MetricPoint,
        Run,
        RunInput,
        RunStatus,
        cv_metric_points,
    )
    from edgeloop.tracking._lineage import capture_lineage, environment_digest, git_state
    from edgeloop.tracking._service import (
        DEFAULT_EXPERIMENT,
        create_experiment,
        create_run,
        delete_tag,
        get_experiment,
        get_or_create_experiment,
        get_run,
        list_artifacts,
        list_experiments,
        log_inputs,
        log_metrics,
        log_params,
        metric_history,
        put_artifact,
        read_artifact,
        search_runs,
        set_run_status,
        set_tags,
    )
    from edgeloop.tracking._validate import check_artifact_path, check_key, check_name

__all__ = [
    "DEFAULT_EXPERIMENT",
    "TERMINAL_STATUSES",
    "ArtifactEntry",
    "Experiment",
    "Metric",
    "MetricPoint",
    "Run",
    "RunInput",
    "RunStatus",
    "capture_lineage",
    "check_artifact_path",
    "check_key",
    "check_name",
    "create_experiment",
    "create_run",
    "cv_metric_points",
    "delete_tag",
    "environment_digest",
    "get_experiment",
    "get_or_create_experiment",
    "get_run",
    "git_state",
    "list_artifacts",
    "list_experiments",
    "log_inputs",
    "log_metrics",
    "log_params",
    "metric_history",
    "put_artifact",
    "read_artifact",
    "search_runs",
    "set_run_status",
    "set_tags",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._entities": (
            "TERMINAL_STATUSES",
            "ArtifactEntry",
            "Experiment",
            "Metric",
            "MetricPoint",
            "Run",
            "RunInput",
            "RunStatus",
            "cv_metric_points",
        ),
        "._lineage": ("capture_lineage", "environment_digest", "git_state"),
        "._service": (
            "DEFAULT_EXPERIMENT",
            "create_experiment",
            "create_run",
            "delete_tag",
            "get_experiment",
            "get_or_create_experiment",
            "get_run",
            "list_artifacts",
            "list_experiments",
            "log_inputs",
            "log_metrics",
            "log_params",
            "metric_history",
            "put_artifact",
            "read_artifact",
            "search_runs",
            "set_run_status",
            "set_tags",
        ),
        "._validate": ("check_artifact_path", "check_key", "check_name"),
    },
)
