"""Clients of a workspace: the ``Backend`` contract, its local and HTTP implementations, and
the Python API built on them."""

from __future__ import annotations

from edgeloop.client._backend import Backend
from edgeloop.client._fluent import (
    ActiveRun,
    active_run,
    end_run,
    get_backend,
    load_model,
    log_artifact,
    log_input,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    register_model,
    search_runs,
    set_backend,
    set_tag,
    set_tags,
    start_run,
    trial_logger,
)
from edgeloop.client._http import HttpBackend
from edgeloop.client._local import LocalBackend

__all__ = [
    "ActiveRun",
    "Backend",
    "HttpBackend",
    "LocalBackend",
    "active_run",
    "end_run",
    "get_backend",
    "load_model",
    "log_artifact",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "register_model",
    "search_runs",
    "set_backend",
    "set_tag",
    "set_tags",
    "start_run",
    "trial_logger",
]
