"""Several processes on one workspace at once: migrations, writers, registry versions.

Every test starts real worker processes (``tests/_workers.py``) and releases them together
through a file barrier, so the interesting part -- the first statements each one sends --
overlaps as much as the machine allows.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

import edgeloop.store
from edgeloop import registry, tracking
from edgeloop.config import Settings
from edgeloop.workspace import Workspace

SRC = Path(__file__).resolve().parents[2] / "src"
WORKER = Path(__file__).resolve().parents[1] / "_workers.py"
TIMEOUT_S = 120.0

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Finished:
    name: str
    returncode: int
    stdout: str
    stderr: str

    def lines(self, tag: str) -> list[list[str]]:
        return [line.split()[1:] for line in self.stdout.splitlines() if line.startswith(tag)]


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["PYTHONPATH"] = str(SRC)
    env["EDGELOOP_HOME"] = str(settings.home)
    if settings.db_url:
        env["EDGELOOP_DB_URL"] = settings.db_url
    return env


def _run_together(
    command: str, jobs: list[dict[str, Any]], settings: Settings, workdir: Path
) -> list[Finished]:
    """Start one worker per job, release them at once, wait for all; output via files."""
    barrier = workdir / "barrier"
    barrier.mkdir(parents=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for i, job in enumerate(jobs):
            name = f"{command}-{i}"
            args = {**job, "barrier": str(barrier), "name": name}
            with (
                (workdir / f"{name}.out").open("wb") as out,
                (workdir / f"{name}.err").open("wb") as err,
            ):
                proc = subprocess.Popen(
                    [sys.executable, "-P", str(WORKER), command, json.dumps(args)],
                    stdout=out,
                    stderr=err,
                    env=_env(settings),
                    cwd=workdir,
                )
            procs.append((name, proc))
        deadline = time.monotonic() + TIMEOUT_S
        while not all((barrier / f"ready-{name}").exists() for name, _ in procs):
            for name, proc in procs:
                if proc.poll() is not None:
                    err = (workdir / f"{name}.err").read_text()
                    pytest.fail(f"{name} exited with {proc.returncode} before the barrier:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("workers never reached the barrier")
            time.sleep(0.01)
        (barrier / "go").touch()
        for _, proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [
        Finished(
            name,
            proc.returncode,
            (workdir / f"{name}.out").read_text(),
            (workdir / f"{name}.err").read_text(),
        )
        for name, proc in procs
    ]


def _assert_all_ok(results: list[Finished]) -> None:
    failed = [f"{r.name} exit {r.returncode}:\n{r.stderr}" for r in results if r.returncode != 0]
    assert not failed, "\n\n".join(failed)


def _settings_for(
    engine: str, make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> Settings:
    if engine == "sqlite":
        return make_settings()
    return make_settings(db_url=request.getfixturevalue("pg_url"))


ENGINES = ["sqlite", "postgresql"]


# migrations ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_processes_starting_together_migrate_once(
    engine: str,
    make_settings: Callable[..., Settings],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    settings = _settings_for(engine, make_settings, request)
    assert not settings.home.exists()

    results = _run_together("open", [{} for _ in range(4)], settings, tmp_path / "procs")

    _assert_all_ok(results)
    assert all(r.lines("OPENED") == [[]] for r in results)
    config = Config()
    config.set_main_option(
        "script_location", str(Path(edgeloop.store.__file__).parent / "migrations")
    )
    head = ScriptDirectory.from_config(config).get_current_head()
    ws = Workspace.open(settings)
    try:
        with ws.db.read() as s:
            versions = list(s.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert versions == [head]
        # The schema is usable, not just stamped.
        run = tracking.create_run(ws, "after-migrations", params={"a": 1})
        assert tracking.get_run(ws, run.id).params == {"a": "1"}
    finally:
        ws.close()


# many writers ----------------------------------------------------------------------------


def test_eight_sqlite_writers_never_see_database_is_locked(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    Workspace.open(settings).close()  # migrated up front: this test is about the writers
    workers, runs, points, batch = 8, 3, 200, 10
    jobs = [
        {"worker": w, "runs": runs, "points": points, "batch": batch, "experiment": "busy"}
        for w in range(workers)
    ]

    results = _run_together("write", jobs, settings, tmp_path / "procs")

    _assert_all_ok(results)
    for r in results:
        assert "locked" not in r.stderr.lower(), r.stderr
    reported = {run_id: int(n) for r in results for run_id, n in r.lines("RUN")}
    assert len(reported) == workers * runs
    assert set(reported.values()) == {points}

    ws = Workspace.open(settings)
    try:
        found = tracking.search_runs(ws, "busy", max_results=1000)
        assert found.next_cursor is None
        assert {run.id for run in found.items} == set(reported)
        batches = range(0, points // batch, 4)
        for run in found.items:
            worker, number = run.name[1:].split("-r")
            assert run.status == "finished"
            assert run.params == {
                "worker": worker,
                "run": number,
                **{f"p{b}": str(b) for b in batches},
            }
            assert run.tags == {"phase": "done"}
            history = tracking.metric_history(ws, run.id, "loss")
            assert [m.step for m in history] == list(range(points))
        with ws.db.read() as s:
            total = s.execute(text("SELECT count(*) FROM metrics")).scalar_one()
            experiments = s.execute(text("SELECT count(*) FROM experiments")).scalar_one()
        assert total == workers * runs * points
        assert experiments == 1  # all eight raced to create "busy"; one row
    finally:
        ws.close()


# registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_exists", [True, False], ids=["existing-model", "new-model"])
@pytest.mark.parametrize("engine", ENGINES)
def test_racing_registrations_get_distinct_gapless_versions(
    engine: str,
    model_exists: bool,
    make_settings: Callable[..., Settings],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    settings = _settings_for(engine, make_settings, request)
    ws = Workspace.open(settings)
    try:
        run = tracking.create_run(ws, "training")
        tracking.put_artifact(ws, run.id, "model/weights.bin", io.BytesIO(b"w" * 1000))
        if model_exists:
            registry.create_model(ws, "racer")
    finally:
        ws.close()
    workers, each = 3, 4
    jobs = [{"model": "racer", "run_id": run.id, "count": each} for _ in range(workers)]

    results = _run_together("register", jobs, settings, tmp_path / "procs")

    _assert_all_ok(results)
    got = sorted(int(v) for r in results for (v,) in r.lines("VERSION"))
    expected = list(range(1, workers * each + 1))
    assert got == expected
    for r in results:  # each worker saw its own versions in increasing order
        mine = [int(v) for (v,) in r.lines("VERSION")]
        assert mine == sorted(mine)
    ws = Workspace.open(settings)
    try:
        versions = registry.list_model_versions(ws, "racer")
        assert [v.version for v in versions] == expected
        assert all(v.source_run_id == run.id for v in versions)
        assert registry.get_model(ws, "racer").latest_version == workers * each
        assert [f.path for f in registry.model_version_files(ws, "racer", len(expected))] == [
            "weights.bin"
        ]
    finally:
        ws.close()
