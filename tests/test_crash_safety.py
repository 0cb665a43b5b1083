"""Crash safety: SIGKILL mid-write, interpreter exit with buffered metrics, backend errors.

The subprocess tests run ``tests/_workers.py`` with the workspace settings in the
environment, then inspect what the killed or exited process left behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from edgeloop import tracking
from edgeloop.artifacts import LocalArtifactStore
from edgeloop.client._buffer import MetricBuffer
from edgeloop.config import Settings
from edgeloop.errors import BackendUnavailable, EdgeloopError, NotFound
from edgeloop.tracking import MetricPoint
from edgeloop.workspace import Workspace

SRC = Path(__file__).resolve().parents[1] / "src"
WORKER = Path(__file__).resolve().parent / "_workers.py"
TIMEOUT_S = 120.0


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["PYTHONPATH"] = str(SRC)
    env["EDGELOOP_HOME"] = str(settings.home)
    if settings.db_url:
        env["EDGELOOP_DB_URL"] = settings.db_url
    return env


def _worker_cmd(command: str, args: dict[str, Any]) -> list[str]:
    return [sys.executable, "-P", str(WORKER), command, json.dumps(args)]


# SIGKILL mid-write -----------------------------------------------------------------------

PARAMS = {f"param_{i}": f"value-{i}" for i in range(12)}
BATCH, BATCHES = 25, 4


def _kill_at_progress(
    settings: Settings, workdir: Path, *, seed: int, after_lines: int, delay: float
) -> list[str]:
    """Start the crash loop, let it print ``after_lines`` lines, wait ``delay``, SIGKILL it."""
    args = {
        "seed": seed,
        "experiment": "crashy",
        "params": PARAMS,
        "batch": BATCH,
        "batches": BATCHES,
    }
    seen: list[str] = []
    with (
        (workdir / f"crash-{seed}.err").open("wb") as err,
        subprocess.Popen(
            _worker_cmd("crash-loop", args),
            stdout=subprocess.PIPE,
            stderr=err,
            env=_env(settings),
            cwd=workdir,
        ) as proc,
    ):
        assert proc.stdout is not None
        # If the worker hangs instead of printing, the watchdog ends it and the loop below
        # sees EOF; the assertion after it then reports what happened.
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)
        watchdog.start()
        try:
            for raw in proc.stdout:
                seen.append(raw.decode().strip())
                if len(seen) >= after_lines:
                    time.sleep(delay)
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.stdout.close()
            proc.wait(timeout=TIMEOUT_S)
        finally:
            watchdog.cancel()
    stderr = (workdir / f"crash-{seed}.err").read_text()
    assert len(seen) >= after_lines, f"worker stopped early ({proc.returncode}):\n{stderr}"
    assert proc.returncode == -signal.SIGKILL, stderr
    return seen


def _check_workspace_after_crash(settings: Settings) -> tuple[int, int]:
    """Everything recorded is whole and readable; returns (runs, artifacts) checked."""
    db_file = settings.home / "edgeloop.db"
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()

    ws = Workspace.open(settings)
    try:
        store = ws.artifacts
        assert isinstance(store, LocalArtifactStore)
        blobs = [p for p in (store.root / "blobs").rglob("*") if p.is_file()]
        for blob in blobs:
            name = blob.parent.name + blob.name
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == name, blob

        runs = tracking.search_runs(ws, "crashy", max_results=10_000)
        assert runs.next_cursor is None
        artifacts = 0
        for run in runs.items:
            assert run.params == PARAMS, f"run {run.id} is half-created: {run.params}"
            steps = [m.step for m in tracking.metric_history(ws, run.id, "loss")]
            assert len(steps) % BATCH == 0, f"run {run.id} has a partial metric batch"
            assert steps == list(range(len(steps)))
            entries = tracking.list_artifacts(ws, run.id)
            for entry in entries:
                data = store.get_bytes(entry.digest)  # verified: no IntegrityError/NotFound
                assert len(data) == entry.size
            artifacts += len(entries)
            if run.status == "finished":
                assert len(steps) == BATCH * BATCHES
                assert [e.path for e in entries] == [f"out/{b}.bin" for b in range(BATCHES)]
            else:
                assert run.status == "running"

        store.clean_tmp(older_than_seconds=0)
        assert list((store.root / "tmp").iterdir()) == []
        return len(runs.items), artifacts
    finally:
        ws.close()


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_consistent_workspace(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    Workspace.open(settings).close()
    rng = random.Random(20261124)
    killed_during: list[str] = []
    for iteration in range(3):
        seen = _kill_at_progress(
            settings,
            tmp_path,
            seed=iteration,
            after_lines=rng.randint(4, 40),
            delay=rng.uniform(0.0, 0.05),
        )
        killed_during.append(seen[-1])
        runs, artifacts = _check_workspace_after_crash(settings)
        assert runs >= 1, killed_during
    assert artifacts >= 1, killed_during


def test_workspace_check_finds_a_half_created_run(
    make_settings: Callable[..., Settings],
) -> None:
    """The crash check is not vacuous: a run missing params or a blob is caught."""
    settings = make_settings()
    ws = Workspace.open(settings)
    try:
        run = tracking.create_run(ws, "crashy", params=dict(list(PARAMS.items())[:5]))
    finally:
        ws.close()
    with pytest.raises(AssertionError, match="half-created"):
        _check_workspace_after_crash(settings)

    settings = make_settings()
    ws = Workspace.open(settings)
    try:
        run = tracking.create_run(ws, "crashy", params=PARAMS)
        entry = tracking.put_artifact(ws, run.id, "out/0.bin", io.BytesIO(b"x" * 100))
        ws.artifacts.delete(entry.digest)
    finally:
        ws.close()
    with pytest.raises(NotFound):
        _check_workspace_after_crash(settings)


# buffered metrics at interpreter exit ----------------------------------------------------

N_POINTS = 10_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "status", "exit_code"),
    [
        ("with", "finished", 0),
        ("no-end", "finished", 0),
        ("raise", "failed", 1),
        ("with-raise", "failed", 1),
    ],
)
def test_buffered_metrics_survive_interpreter_exit(
    mode: str,
    status: str,
    exit_code: int,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    settings = make_settings()
    done = subprocess.run(
        _worker_cmd("fluent", {"mode": mode, "n": N_POINTS}),
        capture_output=True,
        env=_env(settings),
        cwd=tmp_path,
        timeout=TIMEOUT_S,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == exit_code, stderr
    if exit_code:
        assert "RuntimeError: boom after logging" in stderr
    else:
        assert stderr == ""
    (run_id,) = [line.split()[1] for line in done.stdout.decode().splitlines()]

    ws = Workspace.open(settings)
    try:
        history = tracking.metric_history(ws, run_id, "loss")
        assert [m.step for m in history] == list(range(N_POINTS))
        assert [m.value for m in history] == [1.0 / (s + 1) for s in range(N_POINTS)]
        run = tracking.get_run(ws, run_id)
        assert run.status == status
        assert run.end_time is not None
        assert run.metrics == {"loss": 1.0 / N_POINTS}
    finally:
        ws.close()


# backend errors --------------------------------------------------------------------------


class FlakySink:
    """Fails the first ``failures`` calls (optionally only for some runs), then stores."""

    def __init__(self, failures: int, only_runs: Sequence[str] = ()) -> None:
        self.failures = failures
        self.only_runs = set(only_runs)
        self.calls = 0
        self.failed = 0
        self.stored: dict[str, list[MetricPoint]] = {}
        self._lock = threading.Lock()

    def __call__(self, run_id: str, points: Sequence[MetricPoint]) -> int:
        with self._lock:
            self.calls += 1
            eligible = not self.only_runs or run_id in self.only_runs
            if eligible and self.failed < self.failures:
                self.failed += 1
                raise BackendUnavailable("database is restarting")
            self.stored.setdefault(run_id, []).extend(points)
            return len(points)


def _point(step: int) -> tuple[str, float, int, int]:
    return ("loss", step / 3.0, step, step)


def _add_interleaved(buffer: MetricBuffer, runs: Sequence[str], n: int) -> dict[str, list[int]]:
    sent: dict[str, list[int]] = {run: [] for run in runs}
    for step in range(n):
        run = runs[step % len(runs)]
        buffer.add(run, _point(step))
        sent[run].append(step)
    return sent


def _steps(sink: FlakySink) -> dict[str, list[int]]:
    return {run: [p.step for p in points] for run, points in sink.stored.items()}


def test_flush_retries_until_every_point_is_stored_once_in_order() -> None:
    sink = FlakySink(failures=3)
    buffer = MetricBuffer(sink, batch_size=10**9, interval=3600)
    try:
        sent = _add_interleaved(buffer, ["a", "b"], 1000)
        buffer.flush()
        assert sink.failed == 3
        assert _steps(sink) == sent
        assert buffer.pending() == 0
    finally:
        buffer.close()
    assert _steps(sink) == sent


def test_a_run_that_failed_is_retried_without_resending_the_others() -> None:
    sink = FlakySink(failures=2, only_runs=["b"])
    buffer = MetricBuffer(sink, batch_size=10**9, interval=3600)
    try:
        sent = _add_interleaved(buffer, ["a", "b", "c"], 900)
        buffer.flush()
        assert sink.failed == 2
        assert _steps(sink) == sent
    finally:
        buffer.close()


def test_background_flushes_and_flush_together_never_drop_or_repeat() -> None:
    sink = FlakySink(failures=3)
    buffer = MetricBuffer(sink, batch_size=50, interval=0.01)
    try:
        sent = _add_interleaved(buffer, ["a", "b"], 2000)
        buffer.flush()
        assert buffer.pending() == 0
        assert sink.failed == 3
        assert _steps(sink) == sent
    finally:
        buffer.close()
    assert _steps(sink) == sent


def test_flush_raises_and_keeps_points_when_the_backend_stays_down() -> None:
    sink = FlakySink(failures=10**9)
    buffer = MetricBuffer(sink, batch_size=10**9, interval=3600, max_retries=1)
    sent = _add_interleaved(buffer, ["a"], 100)
    with pytest.raises(EdgeloopError, match="100 metric point"):
        buffer.flush()
    assert buffer.pending() == 100
    sink.failures = 0
    buffer.close()
    assert _steps(sink) == sent
