"""The context a step runs in: which pipeline run it belongs to, and how to reach the
workspace from whatever process or machine the executor chose."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from edgeloop.config import load_settings
from edgeloop.errors import ValidationFailed
from edgeloop.workspace import Principal, Workspace

__all__ = ["StepContext", "current_context", "step_workspace"]


@dataclass(frozen=True)
class StepContext:
    pipeline: str
    pipeline_run_id: str
    step: str
    settings: Mapping[str, Any]
    principal: str
    datasets: Mapping[str, str] = field(default_factory=dict)  # uri -> digest

    def lineage(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "pipeline_run_id": self.pipeline_run_id,
            "step": self.step,
            "datasets": dict(self.datasets),
        }


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "edgeloop_step", default=None
)
_workspaces: dict[tuple[tuple[str, Any], ...], Workspace] = {}
_lock = threading.Lock()


@contextmanager
def running(context: StepContext | None) -> Iterator[None]:
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def current_context() -> StepContext:
    """The running step's context; only inside a pipeline step."""
    context = _current.get()
    if context is None:
        raise ValidationFailed("this function runs as a pipeline step (edgeloop run), not alone")
    return context


def step_workspace() -> Workspace:
    """The workspace of the running step's pipeline, opened once per worker process and
    acting as ``pipeline:NAME``."""
    context = current_context()
    key = tuple(sorted(context.settings.items()))
    with _lock:
        ws = _workspaces.get(key)
        if ws is None:
            ws = Workspace.open(load_settings(**dict(context.settings)))
            _workspaces[key] = ws
    return ws.acting_as(Principal(f"pipeline:{context.pipeline} ({context.principal})", "editor"))
