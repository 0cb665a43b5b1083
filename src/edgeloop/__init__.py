"""edgeloop: MLOps for servers and fleets of edge devices.

>>> import edgeloop as el
>>> with el.start_run(experiment="digits") as run:  # doctest: +SKIP
...     el.log_param("model", "mlp")
...     el.log_metric("accuracy", 0.97)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop import data
    from edgeloop._version import __version__
    from edgeloop.client import (
        ActiveRun,
        Backend,
        HttpBackend,
        LocalBackend,
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
    )
    from edgeloop.errors import (
        Conflict,
        EdgeloopError,
        IntegrityError,
        NotFound,
        PermissionDenied,
        ValidationFailed,
    )
    from edgeloop.pipelines import step

__all__ = [
    "ActiveRun",
    "Backend",
    "Conflict",
    "EdgeloopError",
    "HttpBackend",
    "IntegrityError",
    "LocalBackend",
    "NotFound",
    "PermissionDenied",
    "ValidationFailed",
    "__version__",
    "active_run",
    "data",
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
    "step",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "edgeloop.data": ("data",),
        "._version": ("__version__",),
        ".client": (
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
        ),
        ".errors": (
            "Conflict",
            "EdgeloopError",
            "IntegrityError",
            "NotFound",
            "PermissionDenied",
            "ValidationFailed",
        ),
        ".pipelines": ("step",),
    },
)
