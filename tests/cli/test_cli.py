"""The ``edgeloop`` command: tables, ``--json``, one-line errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeloop as el
from edgeloop.cli import main
from edgeloop.client import set_backend


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    set_backend(None)  # each invocation picks its backend from the environment, like a process
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    monkeypatch.setenv("EDGELOOP_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    return path


def _two_runs() -> list[str]:
    ids = []
    for model, f1 in (("mlp", 0.91), ("svm", 0.88)):
        with el.start_run(experiment="cli", params={"model": model, "seed": 0}) as run:
            el.log_metric("f1", f1)
        ids.append(run.id)
    set_backend(None)
    return ids


def test_experiments_create_and_list(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "experiments", "create", "vision")[0] == 0
    code, out, _ = run_cli(capsys, "experiments", "list", "--json")
    assert code == 0
    assert [e["name"] for e in json.loads(out)] == ["vision"]
    code, out, _ = run_cli(capsys, "experiments", "list")
    assert "vision" in out


def test_duplicate_is_a_one_line_error_with_exit_code(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "experiments", "create", "vision")
    code, _, err = run_cli(capsys, "experiments", "create", "vision")
    assert code == 4
    assert err == "error: experiment 'vision' already exists\n"
    code, _, err = run_cli(capsys, "runs", "show", "nope")
    assert code == 3
    assert err.startswith("error: run 'nope' does not exist")


def test_runs_list_filter_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _two_runs()
    code, out, _ = run_cli(
        capsys,
        "runs",
        "list",
        "-e",
        "cli",
        "-f",
        "metrics.f1 > 0.9",
        "-o",
        "metrics.f1 desc",
        "--json",
    )
    assert code == 0
    assert [r["params"]["model"] for r in json.loads(out)] == ["mlp"]
    code, _, err = run_cli(capsys, "runs", "list", "-f", "metrics.f1 >")
    assert code == 2
    assert "position" in err


def test_runs_compare_highlights_differences(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs()
    code, out, _ = run_cli(capsys, "runs", "compare", a, b, "--json")
    assert code == 0
    rows = {r["field"]: r for r in json.loads(out)["rows"]}
    assert rows["params.model"]["differs"] is True
    assert rows["params.seed"]["differs"] is False
    assert rows["metrics.f1"]["values"] == ["0.91", "0.88"]
    code, out, _ = run_cli(capsys, "runs", "compare", a, b)
    assert "params.model" in out
    assert run_cli(capsys, "runs", "compare", a)[0] == 2
    code, out, _ = run_cli(capsys, "runs", "show", a)
    assert "model" in out
    code, out, _ = run_cli(capsys, "runs", "metrics", a, "f1", "--json")
    assert [m["value"] for m in json.loads(out)] == [0.91]


def test_models_alias_history_and_tokens(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(30, 2))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    with el.start_run(experiment="cli") as run:
        el.log_model(model, "model", input_example=x[:2])
    set_backend(None)
    assert run_cli(capsys, "models", "register", "clf", "--run", run.id)[0] == 0
    assert run_cli(capsys, "models", "register", "clf", "--run", run.id)[0] == 0
    assert run_cli(capsys, "models", "alias", "set", "clf", "production", "1")[0] == 0
    code, out, _ = run_cli(
        capsys, "models", "alias", "set", "clf", "production", "2", "--reason", "better"
    )
    assert "from 1 to 2" in out
    code, out, _ = run_cli(capsys, "models", "alias", "history", "clf", "--json")
    assert [(c["from_version"], c["to_version"]) for c in json.loads(out)] == [(None, 1), (1, 2)]
    code, out, _ = run_cli(capsys, "models", "list", "--json")
    assert json.loads(out)[0]["aliases"] == {"production": 2}
    code, out, _ = run_cli(capsys, "models", "show", "clf", "--json")
    assert [v["version"] for v in json.loads(out)["versions"]] == [1, 2]
    code, _, _ = run_cli(capsys, "models", "alias", "set", "clf", "production", "7")
    assert code == 3
    code, out, _ = run_cli(capsys, "tokens", "create", "--role", "viewer", "--json")
    token = json.loads(out)
    assert token["token"].startswith("el_")
    code, out, _ = run_cli(capsys, "tokens", "list", "--json")
    assert [t["role"] for t in json.loads(out)] == ["viewer"]
    assert run_cli(capsys, "tokens", "revoke", token["info"]["id"])[0] == 0
    assert run_cli(capsys, "tokens", "create", "--role", "root")[0] == 2


def test_bad_settings_are_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGELOOP_DB_URL", "mysql+nodriver://x")
    code, _, err = run_cli(capsys, "experiments", "list")
    assert code == 2
    assert "EDGELOOP_DB_URL" in err
