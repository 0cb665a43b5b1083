"""The cached-run fast path of ``edgeloop run``: same record as the runner, or no record."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edgeloop import datasets
from edgeloop.config import load_settings
from edgeloop.pipelines import get_pipeline_run, open_pipeline_file, run_pipeline
from edgeloop.pipelines._executor import InlineExecutor
from edgeloop.pipelines._fast import run_if_cached
from edgeloop.workspace import Workspace

STEPS = """
import edgeloop

@edgeloop.step(outputs=["rows"])
def count(table, extra: int = 0):
    return table.num_rows + extra

@edgeloop.step(outputs=["run_id", "model_version"])
def record(rows):
    return {"run_id": f"run-{rows}", "model_version": rows}
"""

YAML = """
pipelines:
  fastpath:
    params: {extra: 0}
    steps:
      count:
        run: fast_steps:count
        inputs: {table: "datasets:/points@latest"}
        params: {extra: "${params.extra}"}
        outputs: [rows]
      record:
        run: fast_steps:record
        inputs: {rows: steps.count.rows}
        outputs: [run_id, model_version]
"""

# Fields that differ between any two runs.
_VOLATILE = {"id", "started_at", "ended_at"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "fast_steps.py").write_text(STEPS)
    (tmp_path / "edgeloop.yaml").write_text(YAML)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("EDGELOOP_URL", "EDGELOOP_DB_URL", "EDGELOOP_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def ws(repo: Path) -> Any:
    workspace = Workspace.open(load_settings())
    datasets.add_version(workspace, "points", pa.table({"x": [1.0, 2.0, 3.0]}))
    yield workspace
    workspace.close()


def _spec(repo: Path, **params: Any) -> Any:
    return open_pipeline_file(repo / "edgeloop.yaml")["fastpath"].with_params(params)


def _fast(*args: str) -> tuple[int | None, str]:
    out = io.StringIO()
    return run_if_cached(list(args), out=out), out.getvalue()


def _count_runs(repo: Path) -> int:
    with sqlite3.connect(repo / "ws" / "edgeloop.db") as conn:
        return int(conn.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0])


def _stable(info: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in info.items() if k not in _VOLATILE}
    kept["steps"] = [
        {k: v for k, v in s.items() if k not in ("started_at", "ended_at")} for s in info["steps"]
    ]
    return kept


def test_a_cached_run_records_what_the_runner_records(repo: Path, ws: Workspace) -> None:
    first = run_pipeline(ws, _spec(repo), executor=InlineExecutor())
    assert [s.status for s in first.steps] == ["succeeded", "succeeded"]
    slow = run_pipeline(ws, _spec(repo), executor=InlineExecutor()).model_dump(mode="json")
    assert [s["status"] for s in slow["steps"]] == ["cached", "cached"]

    code, out = _fast("fastpath", "--json")
    assert code == 0
    fast = json.loads(out)
    assert _stable(fast) == _stable(slow)
    assert fast["lineage"]["produced"] == {"run_id": ["run-3"], "model_version": [3]}
    assert fast["lineage"]["datasets"] == {
        "datasets:/points@1": slow["lineage"]["datasets"]["datasets:/points@1"]
    }
    # The row it wrote reads back through the ORM exactly as printed.
    stored = get_pipeline_run(ws, fast["id"]).model_dump(mode="json")
    assert stored == fast

    code, out = _fast("-p", "extra=0")
    assert code == 0
    assert out.splitlines()[:2] == ["↺ count cached", "↺ record cached"]
    assert out.splitlines()[2].startswith("run ") and "succeeded" in out


def test_anything_not_cached_is_left_to_the_runner(
    repo: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_pipeline(ws, _spec(repo), executor=InlineExecutor())
    before = _count_runs(repo)
    # A changed param, new data, options it does not handle: nothing recorded.
    assert _fast("--param", "extra=1") == (None, "")
    assert _fast("--force", "count") == (None, "")
    assert _fast("--resume", "abc") == (None, "")
    assert _fast("--help") == (None, "")
    assert _fast("fastpath", "another") == (None, "")
    assert _fast("--param") == (None, "")
    assert _fast("nosuchpipeline") == (None, "")
    datasets.add_version(ws, "points", pa.table({"x": [1.0, 2.0, 3.0, 4.0]}))
    assert _fast() == (None, "")
    run_pipeline(ws, _spec(repo), executor=InlineExecutor())
    before = _count_runs(repo)
    assert _fast()[0] == 0
    assert _count_runs(repo) == before + 1

    bad = pa.table({"x": [1.0, 2.0, 3.0, 4.0, 9e12]})
    datasets.add_version(ws, "points", bad, policy="quarantine")
    assert _fast() == (None, "")  # quarantined: the runner explains it
    assert _count_runs(repo) == before + 1


def test_other_backends_and_old_schemas_take_the_regular_path(
    repo: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_pipeline(ws, _spec(repo), executor=InlineExecutor())
    before = _count_runs(repo)
    monkeypatch.setenv("EDGELOOP_URL", "http://127.0.0.1:9")
    assert _fast() == (None, "")
    monkeypatch.delenv("EDGELOOP_URL")
    monkeypatch.setenv("EDGELOOP_DB_URL", "postgresql+psycopg://u:p@127.0.0.1:9/db")
    assert _fast() == (None, "")
    monkeypatch.setenv("EDGELOOP_DB_URL", f"sqlite:///{repo / 'missing.db'}")
    assert _fast() == (None, "")
    assert not (repo / "missing.db").exists()
    monkeypatch.delenv("EDGELOOP_DB_URL")
    with sqlite3.connect(repo / "ws" / "edgeloop.db") as conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert _fast() == (None, "")
    with sqlite3.connect(repo / "ws" / "edgeloop.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
    assert _count_runs(repo) == before
    assert _fast()[0] == 0


def test_the_command_records_a_cached_run_without_loading_the_stack(
    repo: Path, ws: Workspace
) -> None:
    run_pipeline(ws, _spec(repo), executor=InlineExecutor())
    script = (
        "import sys\n"
        "from edgeloop.cli import main\n"
        "try:\n"
        "    main(['run', '--json'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'typer', 'pandas', 'sklearn', 'pyarrow')\n"
        "               if m in sys.modules)\n"
        "sys.stderr.write(repr((code, heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, check=True
    )
    assert done.stderr == "(0, [])"
    assert [s["status"] for s in json.loads(done.stdout)["steps"]] == ["cached", "cached"]
