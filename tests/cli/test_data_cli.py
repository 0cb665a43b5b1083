"""``edgeloop data``: add, show, diff, relabel, history, accept, split, window, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.cli.test_cli import run_cli


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _csv(path: Path, seed: int = 0, **overrides: object) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(50)],
            "x": rng.normal(0, 1, 50).round(3),
            "label": rng.choice(["a", "b"], 50),
        }
    )
    for column, value in overrides.items():
        frame[column] = value
    frame.to_csv(path, index=False)
    return path


def test_add_show_versions_and_diff(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _csv(home / "a.csv")
    code, out, _ = run_cli(
        capsys, "data", "add", "d", str(a), "--label-from", "column:label", "--key", "id"
    )
    assert code == 0
    assert "added datasets:/d@1" in out
    code, out, _ = run_cli(capsys, "data", "add", "d", str(a))
    assert "unchanged" in out
    b = _csv(home / "b.csv", seed=1)
    assert run_cli(capsys, "data", "add", "d", str(b))[0] == 0
    code, out, _ = run_cli(capsys, "data", "versions", "d", "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, out, _ = run_cli(capsys, "data", "show", "d@2", "--json")
    assert json.loads(out)["version"]["rows"] == 50
    code, out, _ = run_cli(capsys, "data", "show", "d@2")
    assert "profile" in out
    code, out, _ = run_cli(capsys, "data", "diff", "d@1", "d@2", "--json")
    assert json.loads(out)["rows"]["changed"] == 50
    code, out, _ = run_cli(capsys, "data", "list", "--json")
    assert json.loads(out)[0]["latest_version"] == 2


def test_rejected_data_exits_non_zero_with_the_failures(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "data", "add", "d", str(_csv(home / "a.csv")), "--label-from", "column:label")
    code, out, err = run_cli(capsys, "data", "add", "d", str(_csv(home / "b.csv", label="zzz")))
    assert code == 2
    assert "label_set" in out
    assert err.startswith("error: dataset 'd' rejected the data")
    code, _, err = run_cli(capsys, "data", "add", "d", str(home / "missing.csv"))
    assert code == 2
    code, _, _ = run_cli(capsys, "data", "show", "nope@1")
    assert code == 3


def test_relabel_history_split_schema(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(
        capsys,
        "data",
        "add",
        "d",
        str(_csv(home / "a.csv")),
        "--label-from",
        "column:label",
        "--key",
        "id",
    )
    fixes = home / "fix.csv"
    fixes.write_text("id,label\ns1,zzz\n")
    code, _, err = run_cli(
        capsys, "data", "relabel", "d@1", "--changes", str(fixes), "--reason", "review"
    )
    assert code == 2  # 'zzz' is outside the label set: rejected
    assert "label_set" in err or "rejected" in err
    labels = pd.read_csv(home / "a.csv").set_index("id")["label"]
    flipped = {s: "b" if labels[s] == "a" else "a" for s in ("s1", "s2", "s3")}
    fixes.write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in flipped.items()))
    code, out, _ = run_cli(
        capsys, "data", "relabel", "d@1", "--changes", str(fixes), "--reason", "review"
    )
    assert code == 0
    assert "relabelled: datasets:/d@2" in out
    code, out, _ = run_cli(capsys, "data", "history", "d", "s1", "--json")
    assert [(h["old_label"], h["new_label"], h["reason"]) for h in json.loads(out)] == [
        (labels["s1"], flipped["s1"], "review")
    ]
    code, out, _ = run_cli(
        capsys, "data", "split", "d@1", "--method", "stratified", "--label", "label", "--json"
    )
    assert sum(json.loads(out)["counts"].values()) == 50
    code, out, _ = run_cli(capsys, "data", "schema", "d")
    assert "columns" in out
    schema_file = home / "schema.yaml"
    schema_file.write_text(out.replace("policy: reject", "policy: quarantine"))
    assert run_cli(capsys, "data", "schema", "d", "--set", str(schema_file))[0] == 0
    code, out, _ = run_cli(capsys, "data", "add", "d", str(_csv(home / "c.csv", label="zzz")))
    assert code == 0
    assert "quarantined" in out
    assert run_cli(capsys, "data", "accept", "d@latest", "--note", "ok")[0] == 0
