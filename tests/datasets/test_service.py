"""Dataset service on SQLite and PostgreSQL: versions, validation policies, labels, splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from edgeloop import datasets
from edgeloop.datasets import canonical_parquet, read_paths
from edgeloop.errors import Conflict, DataRejected, NotFound, ValidationFailed
from edgeloop.workspace import Principal, Workspace


def _table(path: Path) -> pa.Table:
    return read_paths([path]).table


def test_versions_are_content_addressed_and_immutable(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    first = datasets.add_version(workspace, "sensors", _table(make_csv()), label="label", key="id")
    assert first.created
    assert first.version.uri == "datasets:/sensors@1"
    assert first.version.rows == 200
    again = datasets.add_version(workspace, "sensors", _table(make_csv()), label="label")
    assert not again.created
    assert again.version.version == 1
    second = datasets.add_version(workspace, "sensors", _table(make_csv(seed=1)))
    assert second.version.version == 2
    assert second.version.key == "id"  # remembered from the schema
    assert datasets.get_version(workspace, "datasets:/sensors@latest").version == 2
    assert datasets.get_version(workspace, "sensors@1").digest == first.version.digest
    _, table = datasets.load_table(workspace, "datasets:/sensors@1")
    assert canonical_parquet(table)[1] == first.version.digest
    assert [v.version for v in datasets.list_versions(workspace, "sensors")] == [1, 2]
    with pytest.raises(NotFound):
        datasets.get_version(workspace, "datasets:/sensors@9")
    with pytest.raises(ValidationFailed, match="reference"):
        datasets.get_version(workspace, "datasets:/sensors@@1")


def test_source_and_provenance_are_recorded(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    alice = workspace.acting_as(Principal("alice", "editor"))
    result = datasets.add_version(
        alice, "s", _table(make_csv()), label="label", source={"paths": ["/data/x.csv"]}
    )
    v = result.version
    assert v.source["paths"] == ["/data/x.csv"]
    assert v.source["by"] == "alice"
    assert v.created_by == "alice"
    assert v.transformation == {"kind": "add"}
    assert v.schema_["label"] == "label"
    assert v.validation["ok"] is True


def test_reject_policy_stores_nothing(workspace: Workspace, make_csv: Callable[..., Path]) -> None:
    datasets.add_version(workspace, "s", _table(make_csv()), label="label")
    bad = _table(make_csv(seed=2, label="unknown-class"))
    with pytest.raises(DataRejected) as info:
        datasets.add_version(workspace, "s", bad)
    assert info.value.http_status == 422
    rules = {r["rule"] for r in info.value.details["report"]["results"]}
    assert "label_set" in rules
    assert [v.version for v in datasets.list_versions(workspace, "s")] == [1]


def test_quarantine_policy_stores_but_pipelines_refuse(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    datasets.add_version(workspace, "s", _table(make_csv()), label="label", policy="quarantine")
    result = datasets.add_version(workspace, "s", _table(make_csv(seed=3, temp=1000.0)))
    assert result.version.status == "quarantined"
    with pytest.raises(Conflict, match="quarantined"):
        datasets.load_table(workspace, result.version.uri)
    accepted = datasets.accept_version(workspace, result.version.uri, "sensor recalibrated")
    assert accepted.status == "ready"
    assert accepted.review["note"] == "sensor recalibrated"
    datasets.load_table(workspace, result.version.uri)
    with pytest.raises(Conflict, match="not quarantined"):
        datasets.accept_version(workspace, result.version.uri)


def test_schema_can_be_edited_as_yaml(workspace: Workspace, make_csv: Callable[..., Path]) -> None:
    datasets.add_version(workspace, "s", _table(make_csv()), label="label")
    text = datasets.get_schema(workspace, "s")
    assert "temp" in text
    loosened = text.replace("policy: reject", "policy: quarantine")
    datasets.set_schema(workspace, "s", loosened)
    assert datasets.get_dataset(workspace, "s").policy == "quarantine"
    with pytest.raises(ValidationFailed):
        datasets.set_schema(workspace, "s", "columns: [oops")
    assert datasets.set_policy(workspace, "s", "reject").policy == "reject"
    with pytest.raises(ValidationFailed, match="policy"):
        datasets.set_policy(workspace, "s", "ignore")


def test_relabel_records_who_changed_what_and_why(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    v1 = datasets.add_version(workspace, "s", _table(make_csv()), label="label", key="id").version
    _, table = datasets.load_table(workspace, v1.uri)
    labels = dict(
        zip(table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True)
    )
    flip = {"ok": "fault", "fault": "ok"}
    changes = {"r00001": flip[labels["r00001"]], "r00002": flip[labels["r00002"]]}
    bob = workspace.acting_as(Principal("bob", "editor"))
    v2 = datasets.relabel(bob, v1.uri, changes, "field technician review")
    assert v2.version == 2
    assert v2.parent == v1.uri
    assert v2.transformation == {
        "kind": "relabel",
        "changes": 2,
        "reason": "field technician review",
    }
    history = datasets.label_history(workspace, "s", "r00001")
    assert [(h.version, h.old_label, h.new_label, h.actor) for h in history] == [
        (2, labels["r00001"], changes["r00001"], "bob")
    ]
    with pytest.raises(ValidationFailed, match="not in"):
        datasets.relabel(workspace, v2.uri, {"nope": "ok"}, "x")
    with pytest.raises(ValidationFailed, match="reason"):
        datasets.relabel(workspace, v2.uri, changes, " ")
    with pytest.raises(ValidationFailed, match="nothing changes"):
        datasets.relabel(workspace, v2.uri, changes, "again")


def test_diff_reports_schema_rows_labels_and_shift(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    a = datasets.add_version(workspace, "s", _table(make_csv(rows=300)), label="label", key="id")
    datasets.set_policy(workspace, "s", "quarantine")
    shifted = _table(make_csv(rows=320, seed=0, name="b.csv"))
    temp = np.asarray(shifted.column("temp")) + 8.0
    shifted = shifted.set_column(1, "temp", pa.array(temp))
    b = datasets.add_version(workspace, "s", shifted)
    diff = datasets.diff_versions(workspace, a.version.uri, b.version.uri)
    assert diff.rows["by"] == "key:id"
    assert diff.rows["added"] == 20
    assert diff.rows["removed"] == 0
    assert diff.rows["changed"] == 300  # every temperature moved
    assert diff.columns["temp"]["psi"] > 0.5
    assert diff.columns["vibration"]["psi"] < 0.05
    assert sum(v["a"] for v in diff.labels.values()) == 300
    assert diff.schema_changes == {"added": [], "removed": [], "changed": []}


def test_splits_are_recorded_and_reproducible(
    workspace: Workspace, make_csv: Callable[..., Path]
) -> None:
    v = datasets.add_version(workspace, "s", _table(make_csv()), label="label").version
    info = datasets.create_split(
        workspace, v.uri, "holdout", {"method": "group", "group": "site", "test": 0.5, "seed": 3}
    )
    assert sum(info.counts.values()) == 200
    again, assignment = datasets.get_split(workspace, v.uri, "holdout")
    assert again.digest == info.digest
    _, table = datasets.load_table(workspace, v.uri)
    sites = np.asarray(table.column("site").to_pylist())
    for site in set(sites):
        assert len(set(assignment[sites == site].tolist())) == 1  # no site on both sides
    with pytest.raises(Conflict, match="already has a split"):
        datasets.create_split(workspace, v.uri, "holdout", {"method": "random"})
    folds = datasets.create_split(
        workspace, v.uri, "cv", {"method": "stratified", "k": 5}, kind="folds"
    )
    assert sorted(folds.counts) == ["0", "1", "2", "3", "4"]
    assert [s.name for s in datasets.list_splits(workspace, v.uri)] == ["cv", "holdout"]
    with pytest.raises(ValidationFailed, match="unknown split option"):
        datasets.create_split(workspace, v.uri, "x", {"method": "random", "shuffle": True})


def test_sensor_recordings_become_windows(
    workspace: Workspace, make_recordings: Callable[..., Path]
) -> None:
    read = read_paths([make_recordings()], label_from=datasets.parse_label_from("folder"))
    assert read.sensor is not None
    sensor = {
        "sample_rate": read.sensor.sample_rate,
        "axes": list(read.sensor.axes),
        "length_min": read.sensor.length_min,
        "length_max": read.sensor.length_max,
    }
    raw = datasets.add_version(workspace, "motion", read.table, label=read.label, sensor=sensor)
    assert raw.version.rows == 6
    windows = datasets.window(workspace, raw.version.uri, length_ms=500, stride_ms=250)
    assert windows.version.name == "motion-windows"
    assert windows.version.parent == raw.version.uri
    assert windows.version.transformation["kind"] == "window"
    assert windows.version.rows == 6 * 7  # 2 s recordings, 0.5 s windows every 0.25 s
    _, table = datasets.load_table(workspace, windows.version.uri)
    assert len(table.column("accx")[0].as_py()) == 50
    profile = datasets.get_profile(workspace, windows.version.uri)
    assert "accx" in profile.columns
