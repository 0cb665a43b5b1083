"""Executors run step tasks. A task carries everything a step needs (its inputs are values,
not paths), so a step never assumes the process or machine it runs on: the local process pool
here, and later a Ray executor, implement the same two methods."""

from __future__ import annotations

import abc
import contextlib
import io
import logging
import multiprocessing
import traceback
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor as _Pool
from dataclasses import dataclass
from typing import Any

import joblib

from edgeloop.pipelines._context import StepContext, running
from edgeloop.pipelines._spec import resolve_function

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalProcessExecutor",
    "StepOutcome",
    "StepTask",
    "dump_value",
    "execute_task",
    "load_value",
]


def dump_value(value: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    return buffer.getvalue()


def load_value(data: bytes) -> Any:
    return joblib.load(io.BytesIO(data))


@dataclass(frozen=True)
class StepTask:
    step: str
    run: str
    kwargs: Mapping[str, Any]
    outputs: tuple[str, ...]
    context: StepContext | None = None


@dataclass(frozen=True)
class StepOutcome:
    outputs: dict[str, bytes]
    logs: str
    error: str | None = None


def execute_task(task: StepTask) -> StepOutcome:
    """Run one step with its stdout, stderr and log records captured."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with (
            contextlib.redirect_stdout(stream),
            contextlib.redirect_stderr(stream),
            running(task.context),
        ):
            func = resolve_function(task.run)
            result = func(**task.kwargs)
        if len(task.outputs) == 1 and not (
            isinstance(result, dict) and set(result) == set(task.outputs)
        ):
            result = {task.outputs[0]: result}
        if not isinstance(result, dict) or set(result) != set(task.outputs):
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise TypeError(
                f"step {task.step!r} must return a dict with keys {list(task.outputs)}, got {got}"
            )
        return StepOutcome({k: dump_value(v) for k, v in result.items()}, stream.getvalue())
    except Exception:
        return StepOutcome({}, stream.getvalue(), traceback.format_exc())
    finally:
        root.removeHandler(handler)


class Executor(abc.ABC):
    @abc.abstractmethod
    def submit(self, task: StepTask) -> Future[StepOutcome]: ...

    @abc.abstractmethod
    def shutdown(self) -> None: ...


class InlineExecutor(Executor):
    """Runs each task in this process, one at a time (debugging, tests)."""

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        future: Future[StepOutcome] = Future()
        future.set_result(execute_task(task))
        return future

    def shutdown(self) -> None:
        return None


class LocalProcessExecutor(Executor):
    """Runs tasks in a pool of worker processes, started on first use (``spawn``: workers
    import the step's module afresh, as a remote worker would)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, multiprocessing.cpu_count())
        self._pool: _Pool | None = None

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        if self._pool is None:
            self._pool = _Pool(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(execute_task, task)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
