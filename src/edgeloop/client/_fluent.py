"""The Python API users call: ``with edgeloop.start_run(...): edgeloop.log_metric(...)``.

The backend is chosen once per process: :class:`HttpBackend` when ``EDGELOOP_URL`` is set,
else :class:`LocalBackend` on ``EDGELOOP_HOME``. :func:`set_backend` replaces it.
"""

from __future__ import annotations

import atexit
import io
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from edgeloop.client._backend import Backend
from edgeloop.client._buffer import MetricBuffer
from edgeloop.config import load_settings
from edgeloop.errors import ValidationFailed
from edgeloop.pages import Page
from edgeloop.registry import ModelVersion, Predictor, load_predictor, save_sklearn
from edgeloop.tracking import (
    DEFAULT_EXPERIMENT,
    ArtifactEntry,
    Run,
    RunInput,
    capture_lineage,
    check_artifact_path,
    check_key,
    cv_metric_points,
)
from edgeloop.tracking._validate import check_metric_value

if TYPE_CHECKING:
    from edgeloop.train import TrialResult

__all__ = [
    "ActiveRun",
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

_lock = threading.RLock()
_backend: Backend | None = None
_buffer: MetricBuffer | None = None
_stack: list[ActiveRun] = []
_checked_keys: set[str] = set()


def get_backend() -> Backend:
    """The process's backend, created on first use from the settings."""
    global _backend
    with _lock:
        if _backend is None:
            settings = load_settings()
            if settings.url:
                from edgeloop.client._http import HttpBackend

                _backend = HttpBackend(settings.url, settings.token)
            else:
                from edgeloop.client._local import LocalBackend

                _backend = LocalBackend(settings)
        return _backend


def set_backend(backend: Backend | None) -> None:
    """Use ``backend`` from now on (``None``: choose again from the settings on next use)."""
    global _backend, _buffer
    with _lock:
        if _buffer is not None:
            _buffer.close()
            _buffer = None
        _backend = backend


def _metrics() -> MetricBuffer:
    global _buffer
    with _lock:
        if _buffer is None:
            backend = get_backend()
            _buffer = MetricBuffer(backend.log_metrics)
        return _buffer


class ActiveRun:
    """A running run; a context manager that ends it (failed if the block raised)."""

    def __init__(self, run: Run) -> None:
        self.info = run

    @property
    def id(self) -> str:
        return self.info.id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "killed"
        else:
            status = "failed"
        end_run(status, run=self)


def start_run(
    experiment: str | int | None = None,
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    inputs: Sequence[RunInput | str] = (),
    nested: bool = False,
) -> ActiveRun:
    """Start a run and make it the active one.

    >>> with edgeloop.start_run(experiment="digits", name="mlp") as run:  # doctest: +SKIP
    ...     edgeloop.log_param("hidden", 64)
    ...     edgeloop.log_metric("loss", 0.3, step=1)

    ``nested=True`` starts a child of the active run. The git commit, a digest of the
    uncommitted diff and a digest of the installed environment are recorded as lineage.
    """
    parent = _stack[-1].id if (_stack and nested) else None
    if _stack and not nested:
        raise ValidationFailed(
            f"run {_stack[-1].id} is already active: end it first, or pass nested=True"
        )
    run = get_backend().create_run(
        experiment if experiment is not None else DEFAULT_EXPERIMENT,
        name,
        params=params,
        tags=tags,
        lineage=capture_lineage(),
        inputs=[RunInput(ref=i) if isinstance(i, str) else i for i in inputs],
        parent_run_id=parent,
    )
    active = ActiveRun(run)
    with _lock:
        _stack.append(active)
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    return _stack[-1] if _stack else None


def end_run(status: str = "finished", *, run: ActiveRun | None = None) -> None:
    """Flush buffered metrics and end ``run`` (default: the active one)."""
    target = run or active_run()
    if target is None:
        return
    try:
        if _buffer is not None:
            _buffer.flush()
    finally:
        with _lock:
            if target in _stack:
                _stack.remove(target)
        target.info = get_backend().set_run_status(target.id, status)


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise ValidationFailed("no active run: call edgeloop.start_run() first")
    return run


def log_param(key: str, value: Any) -> None:
    log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    get_backend().log_params(_require_run().id, params)


def set_tag(key: str, value: Any) -> None:
    set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    get_backend().set_tags(_require_run().id, tags)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Buffer one metric point; it is stored in the background, in batches."""
    run = _require_run()
    if key not in _checked_keys:
        _checked_keys.add(check_key("metric", key))
    if type(value) is not float or not math.isfinite(value):
        value = check_metric_value(key, value)
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    _metrics().add(run.id, (key, value, int(step), ts))


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    for key, value in metrics.items():
        log_metric(key, value, step=step, timestamp=ts)


def log_input(ref: str, kind: str = "dataset", digest: str = "") -> None:
    """Record that the active run consumed ``ref`` (e.g. ``datasets:/vibration@4``)."""
    get_backend().log_inputs(_require_run().id, [RunInput(ref=ref, kind=kind, digest=digest)])


def log_artifact(path: str | Path, name: str | None = None) -> list[ArtifactEntry]:
    """Store a file, or every file under a directory, under the logical path ``name``."""
    source = Path(path)
    if not source.exists():
        raise ValidationFailed(f"{source} does not exist")
    target = check_artifact_path(name or source.name)
    run_id = _require_run().id
    backend = get_backend()
    if source.is_file():
        with source.open("rb") as fh:
            return [backend.upload_artifact(run_id, target, fh)]
    entries = []
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = file.relative_to(source).as_posix()
        with file.open("rb") as fh:
            entries.append(backend.upload_artifact(run_id, f"{target}/{rel}", fh))
    return entries


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any | None = None,
    registered_model_name: str | None = None,
) -> ModelVersion | None:
    """Store a fitted scikit-learn estimator under ``name``; register it if asked."""
    run_id = _require_run().id
    check_artifact_path(name)
    backend = get_backend()
    for rel, data in save_sklearn(model, input_example).items():
        backend.upload_artifact(run_id, f"{name}/{rel}", io.BytesIO(data))
    if registered_model_name:
        return backend.create_model_version(registered_model_name, run_id=run_id, path=name)
    return None


def trial_logger() -> Callable[[int, TrialResult, str], str]:
    """An ``on_trial`` for :func:`edgeloop.train.search` that records each trial as a child run
    of the active run (named ``<model>-<index>``, params ``model`` + the model's params, metrics
    ``cv_<metric>_mean``, ``cv_<metric>_std`` and ``cv_<metric>`` per fold).

    >>> with edgeloop.start_run(experiment="zoo"):  # doctest: +SKIP
    ...     result = search(X, y, spec, on_trial=edgeloop.client.trial_logger())
    """
    parent = _require_run()

    def log(index: int, trial: TrialResult, metric: str) -> str:
        backend = get_backend()
        run = backend.create_run(
            parent.info.experiment_id,
            f"{trial.model}-{index}",
            params={"model": trial.model, **trial.params},
            parent_run_id=parent.id,
        )
        points = cv_metric_points(
            metric, trial.scores, trial.mean, trial.std, int(time.time() * 1000)
        )
        backend.log_metrics(run.id, points)
        backend.set_run_status(run.id, "finished")
        return run.id

    return log


def register_model(name: str, run_id: str, path: str = "model") -> ModelVersion:
    """Register the model logged under ``path`` of ``run_id`` as the next version of ``name``."""
    return get_backend().create_model_version(name, run_id=run_id, path=path)


def search_runs(
    experiments: Sequence[int | str] | int | str = (),
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    cursor: str | None = None,
) -> Page[Run]:
    """Runs matching ``filter`` (see the search grammar), e.g.
    ``search_runs("digits", "metrics.f1 > 0.9 and params.model = 'mlp'", ["metrics.f1 desc"])``.
    """
    return get_backend().search_runs(experiments, filter, order_by, max_results, cursor)


def load_model(uri: str) -> Predictor:
    """A predictor for ``models:/name@alias``, ``models:/name/3`` or ``models:/name/latest``."""
    backend = get_backend()
    version = backend.resolve_model_uri(uri)
    files = {
        entry.path: backend.download_model_file(version.name, version.version, entry.path)
        for entry in backend.model_version_files(version.name, version.version)
    }
    return load_predictor(files, uri=f"{uri} (version {version.version})")


_exit_status = "finished"
_previous_hook = sys.excepthook


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    global _exit_status
    _exit_status = "killed" if issubclass(kind, KeyboardInterrupt) else "failed"
    _previous_hook(kind, value, tb)


def _at_exit() -> None:
    status = _exit_status
    try:
        while _stack:
            end_run(status, run=_stack[-1])
    finally:
        if _buffer is not None:
            _buffer.close()


sys.excepthook = _excepthook
atexit.register(_at_exit)
