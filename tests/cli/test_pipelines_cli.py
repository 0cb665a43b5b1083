"""``edgeloop run`` and ``edgeloop pipelines``, on a repository with edgeloop.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_cli import run_cli

STEPS = """
import edgeloop

@edgeloop.step(outputs=["n"])
def make(n: int = 3):
    print("making", n)
    return n

def square(n: int):
    if n < 0:
        raise ValueError("negative")
    return n * n
"""

YAML = """
pipelines:
  tiny:
    params: {n: 3}
    steps:
      make:
        run: cli_steps:make
        params: {n: "${params.n}"}
        outputs: [n]
      square:
        run: cli_steps:square
        inputs: {n: steps.make.n}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_steps.py").write_text(STEPS)
    (tmp_path / "edgeloop.yaml").write_text(YAML)
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_run_caches_and_shows(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", "--json")
    assert code == 0
    first = json.loads(out)
    assert [s["status"] for s in first["steps"]] == ["succeeded", "succeeded"]
    code, out, _ = run_cli(capsys, "run", "tiny")
    assert code == 0
    assert "make cached" in out
    assert "square cached" in out
    code, out, _ = run_cli(capsys, "run", "--param", "n=4", "--json")
    assert json.loads(out)["params"] == {"n": 4}
    code, out, _ = run_cli(capsys, "pipelines", "runs", "--json")
    assert len(json.loads(out)) == 3
    code, out, _ = run_cli(capsys, "pipelines", "show", first["id"])
    assert "square" in out
    assert "← make" in out


def test_a_failed_run_exits_non_zero(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", "--param", "n=-1")
    assert code == 1
    assert "square failed" in out
    code, _, err = run_cli(capsys, "run", "--param", "x=1")
    assert code == 2
    assert "no param" in err
    code, _, err = run_cli(capsys, "run", "other")
    assert code == 2
    code, _, err = run_cli(capsys, "run", "--param", "novalue")
    assert code == 2


def test_triggers_queue_and_the_scheduler_runs_them(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "trigger", "code-change", "tiny")
    assert code == 0
    assert "queued tiny: code changed" in out  # never succeeded: its code is new
    assert run_cli(capsys, "trigger", "manual", "tiny", "--note", "by hand")[0] == 0
    code, out, _ = run_cli(capsys, "pipelines", "queue", "--json")
    assert sorted(json.loads(out)[0]["reasons"]) == ["code_change", "manual"]
    code, out, _ = run_cli(capsys, "scheduler", "--once")
    assert code == 0
    assert "tiny run" in out
    assert "succeeded" in out
    code, out, _ = run_cli(capsys, "pipelines", "queue", "--json")
    assert json.loads(out) == []
    code, out, _ = run_cli(capsys, "trigger", "code-change", "tiny")
    assert "code unchanged" in out
    code, out, _ = run_cli(capsys, "trigger", "data-change", "tiny")
    assert "data unchanged" in out
