"""The ``edgeloop.data`` API on LocalBackend and HttpBackend (the same tests, both ways)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import edgeloop as el
from edgeloop.client import Backend
from edgeloop.errors import Conflict, DataRejected, NotFound, ValidationFailed


def _csv(tmp_path: Path, name: str, rows: int = 120, seed: int = 0, **overrides: object) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(rows)],
            "x": rng.normal(0, 1, rows).round(4),
            "subject": rng.choice(["p1", "p2", "p3", "p4"], rows),
            "label": rng.choice(["a", "b"], rows),
        }
    )
    for column, value in overrides.items():
        frame[column] = value
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_add_load_and_lineage(backend: Backend, tmp_path: Path) -> None:
    result = el.data.add("d", _csv(tmp_path, "a.csv"), label_from="column:label", key="id")
    assert result.created
    assert result.version.uri == "datasets:/d@1"
    assert not el.data.add("d", [_csv(tmp_path, "a.csv")], label_from="column:label").created
    with el.start_run(experiment="data") as run:
        table = el.data.load("datasets:/d@latest")
    assert table.num_rows == 120
    inputs = backend.get_run(run.id).inputs
    assert [(i.ref, i.digest) for i in inputs] == [("datasets:/d@1", result.version.digest)]
    assert [d.name for d in el.data.list_datasets().items] == ["d"]
    prof = el.data.profile("d@1")
    assert prof.rows == 120


def test_rejects_and_quarantines(backend: Backend, tmp_path: Path) -> None:
    el.data.add("d", _csv(tmp_path, "a.csv"), label_from="column:label")
    with pytest.raises(DataRejected):
        el.data.add("d", _csv(tmp_path, "b.csv", label="zzz"), label_from="column:label")
    el.data.set_policy("d", "quarantine")
    quarantined = el.data.add("d", _csv(tmp_path, "c.csv", label="zzz"), label_from="column:label")
    assert quarantined.version.status == "quarantined"
    with pytest.raises(Conflict, match="quarantined"):
        el.data.load(quarantined.version.uri)
    assert el.data.load(quarantined.version.uri, allow_quarantined=True).num_rows == 120
    assert el.data.accept(quarantined.version.uri).status == "ready"
    schema = el.data.schema("d")
    assert "label" in schema
    assert "policy: quarantine" in el.data.set_schema("d", schema)


def test_relabel_history_diff_split_folds(backend: Backend, tmp_path: Path) -> None:
    v1 = el.data.add("d", _csv(tmp_path, "a.csv"), label_from="column:label", key="id").version
    table = el.data.load(v1.uri)
    old = table.column("label")[0].as_py()
    new = "b" if old == "a" else "a"
    changes = tmp_path / "fix.csv"
    changes.write_text(f"id,label\ns0,{new}\n")
    v2 = el.data.relabel(v1.uri, changes, reason="reviewed")
    assert v2.version == 2
    history = el.data.label_history("d", "s0")
    assert [(h.old_label, h.new_label, h.reason) for h in history] == [(old, new, "reviewed")]
    diff = el.data.diff(v1.uri, v2.uri)
    assert diff.rows["changed"] == 1
    assert diff.labels[new]["delta"] == 1
    info = el.data.split(v2.uri, "by-subject", method="group", group="subject", test=0.25)
    got, assignment = el.data.get_split(v2.uri, "by-subject")
    assert got.digest == info.digest
    assert assignment.shape == (120,)
    cv = el.data.folds(v2.uri, "cv", method="group", k=4, group="subject")
    assert len(cv.counts) == 4
    with pytest.raises(NotFound):
        el.data.get_split(v2.uri, "missing")
    with pytest.raises(ValidationFailed):
        el.data.split(v2.uri, "bad", method="group")  # no group column named


def test_malformed_input_is_a_clear_error(backend: Backend, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValidationFailed):
        el.data.add("d", empty)
    with pytest.raises(ValidationFailed):
        el.data.add("d", tmp_path / "missing.csv")
    with pytest.raises(ValidationFailed):
        el.data.add("d", _csv(tmp_path, "a.csv"), label_from="column:nope")
    with pytest.raises(NotFound):
        el.data.get("datasets:/d@1")
