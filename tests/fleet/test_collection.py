"""Data collection, as services: opt-in at enrollment, deterministic choice of opted-in
devices, the request in the check-in answer, validated idempotent uploads, and the close
into a new dataset version (also automatic, and never half written)."""

from __future__ import annotations

import pytest

from edgeloop import datasets, fleet
from edgeloop.errors import (
    Conflict,
    DataRejected,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from edgeloop.fleet import _collection, _groups
from edgeloop.fleet._collection_entities import SamplesUpload, UploadResult
from edgeloop.workspace import Principal, Workspace
from tests.fleet._collect import add_windows, enroll, rows
from tests.fleet._fleet import T0, FakeDevice


def _upload(
    ws: Workspace,
    device: str,
    collection: str,
    n: int,
    key: str,
    *,
    done: bool = False,
    label: str | None = "normal",
    seed: int = 1,
) -> UploadResult:
    data = rows(n, device, label=label, seed=seed)
    body = SamplesUpload(collection=collection, upload_id=key, rows=data, done=done)
    return fleet.upload_samples(ws, device, body, now=T0)


def _fleet(ws: Workspace) -> list[FakeDevice]:
    return [enroll(ws, f"dev-{i}", opt_in=i % 4 != 3, tags={"line": "ab"[i % 2]}) for i in range(8)]


def test_opt_in_is_recorded_and_only_an_admin_turns_it_off(workspace: Workspace) -> None:
    enroll(workspace, "yes", opt_in=True)
    enroll(workspace, "no", opt_in=False)
    assert fleet.get_device(workspace, "yes").data_collection is True
    assert fleet.get_device(workspace, "no").data_collection is False
    listed = {d.id: d.data_collection for d in fleet.list_devices(workspace).items}
    assert listed == {"yes": True, "no": False}
    info = fleet.disable_data_collection(workspace, "yes")
    assert info.data_collection is False
    editor = workspace.acting_as(Principal(name="ed", role="editor"))
    with pytest.raises(PermissionDenied):
        fleet.disable_data_collection(editor, "no")


def test_request_chooses_opted_in_devices_deterministically(workspace: Workspace) -> None:
    add_windows(workspace)
    _fleet(workspace)
    opted = [f"dev-{i}" for i in range(8) if i % 4 != 3]
    info = fleet.request_collection(
        workspace, dataset="vib-windows", devices=3, samples_per_device=4, now=T0
    )
    assert info.state == "open" and info.chosen == 3 and info.base_version == 1
    chosen = [d.device for d in fleet.get_collection(workspace, info.id).devices or []]
    assert sorted(chosen) == sorted(_collection.choice_order(info.id, opted)[:3])
    by_tag = fleet.request_collection(
        workspace, dataset="vib-windows", devices=10, samples_per_device=1, tags={"line": "b"}
    )
    devices = {d.device for d in fleet.get_collection(workspace, by_tag.id).devices or []}
    assert devices == {"dev-1", "dev-5"}  # line b; dev-3 and dev-7 did not opt in
    _groups.create_group(workspace, "two", members=["dev-0", "dev-3"])
    in_group = fleet.request_collection(
        workspace, dataset="vib-windows", devices=5, samples_per_device=1, group="two"
    )
    assert [d.device for d in fleet.get_collection(workspace, in_group.id).devices or []] == [
        "dev-0"
    ]
    with pytest.raises(ValidationFailed, match="opted in") as err:
        fleet.request_collection(
            workspace, dataset="vib-windows", devices=1, samples_per_device=1, model="nope"
        )
    assert err.value.details == {"field": "devices"}
    with pytest.raises(ValidationFailed, match="samples_per_device"):
        fleet.request_collection(workspace, dataset="vib-windows", devices=1, samples_per_device=0)
    with pytest.raises(NotFound):
        fleet.request_collection(workspace, dataset="missing", devices=1, samples_per_device=1)


def test_the_check_in_carries_the_request_to_chosen_devices_only(workspace: Workspace) -> None:
    add_windows(workspace)
    devices = _fleet(workspace)
    info = fleet.request_collection(
        workspace, dataset="vib-windows", devices=2, samples_per_device=5, now=T0
    )
    chosen = {d.device for d in fleet.get_collection(workspace, info.id).devices or []}
    for device in devices:
        answer = device.checkin(workspace, now=T0 + 1)
        if device.id in chosen:
            assert answer.collection is not None and answer.collection.id == info.id
            assert answer.collection.samples == 5
            layout = answer.collection.layout
            assert layout["inputs"] == {
                "kind": "axes",
                "columns": ["acc_x", "acc_y", "acc_z"],
                "length": 8,
            }
            assert layout["label"] == "label" and layout["id_column"] == "sample_id"
            assert layout["values"] == {"window": 0, "start_ms": 0.0}
        else:
            assert answer.collection is None
            assert "collection" not in answer.model_dump()
    first = sorted(chosen)[0]
    fleet.disable_data_collection(workspace, first)
    assert (
        next(d for d in devices if d.id == first).checkin(workspace, now=T0 + 2).collection is None
    )
    assert fleet.get_collection(workspace, info.id).done == 1  # counted as finished


def test_uploads_are_checked_and_idempotent(workspace: Workspace) -> None:
    add_windows(workspace)
    _fleet(workspace)
    info = fleet.request_collection(
        workspace, dataset="vib-windows", devices=2, samples_per_device=4, now=T0
    )
    a, b = [d.device for d in fleet.get_collection(workspace, info.id).devices or []]
    first = _upload(workspace, a, info.id, 3, "k1")
    assert (first.accepted, first.uploaded, first.remaining, first.done) == (3, 3, 1, False)
    again = _upload(workspace, a, info.id, 3, "k1")
    assert again.duplicate and again.accepted == 0 and again.uploaded == 3
    outsider = next(f"dev-{i}" for i in range(8) if f"dev-{i}" not in (a, b))
    with pytest.raises(PermissionDenied, match="not addressed"):
        _upload(workspace, outsider, info.id, 1, "k1")
    with pytest.raises(PayloadTooLarge, match="1 more row"):
        _upload(workspace, a, info.id, 2, "k2")
    bad = SamplesUpload(
        collection=info.id, upload_id="k3", rows=[{**rows(1, b)[0], "acc_x": [1.0]}]
    )
    with pytest.raises(ValidationFailed, match="exactly 8 numbers") as err:
        fleet.upload_samples(workspace, b, bad, now=T0)
    assert err.value.details["field"] == "rows[0].acc_x"
    odd = SamplesUpload(
        collection=info.id, upload_id="k4", rows=[{**rows(1, b)[0], "label": "odd"}]
    )
    with pytest.raises(ValidationFailed, match="label_set") as err:
        fleet.upload_samples(workspace, b, odd, now=T0)
    assert err.value.details["field"] == "rows[0].label"
    extra = SamplesUpload(collection=info.id, upload_id="k5", rows=[{**rows(1, b)[0], "rpm": 1}])
    with pytest.raises(ValidationFailed, match="rpm") as err:
        fleet.upload_samples(workspace, b, extra, now=T0)
    assert err.value.details["field"] == "rows[0].rpm"
    with pytest.raises(PayloadTooLarge, match="at most 500"):
        fleet.upload_samples(
            workspace, b, SamplesUpload(collection=info.id, upload_id="k6", rows=[{}] * 501)
        )
    assert fleet.get_collection(workspace, info.id).rows == 3  # refused uploads left nothing
    fleet.close_collection(workspace, info.id)
    with pytest.raises(Conflict, match="closed"):
        _upload(workspace, b, info.id, 1, "k7")


def test_close_makes_a_child_version_once(workspace: Workspace) -> None:
    parent = add_windows(workspace)
    _fleet(workspace)
    info = fleet.request_collection(
        workspace, dataset="vib-windows", devices=3, samples_per_device=4, reason="drift", now=T0
    )
    a, b, c = [d.device for d in fleet.get_collection(workspace, info.id).devices or []]
    _upload(workspace, a, info.id, 4, "x")
    _upload(workspace, b, info.id, 2, "x", seed=2)
    _upload(workspace, b, info.id, 1, "y", label=None, done=True)  # no local label
    assert fleet.close_due_collections(workspace, now=T0 + 1) == []  # c has not answered
    closed = fleet.close_collection(workspace, info.id, now=T0 + 2)
    assert closed.state == "closed" and closed.version == 2 and closed.parent == parent
    assert closed.rows == 6 and "1 row(s) without a label were left out" in closed.state_reason
    assert fleet.close_collection(workspace, info.id) == closed  # idempotent
    version, table = datasets.load_table(workspace, "vib-windows")
    assert version.version == 2 and version.rows == 26 and version.parent == parent
    assert version.source["collection"] == f"collection:{info.id}"
    assert version.transformation["kind"] == "collection"
    added = table.slice(20).column("sample_id").to_pylist()
    assert sorted(added) == sorted([f"{a}/{i}" for i in range(4)] + [f"{b}/{i}" for i in range(2)])
    assert [v.version for v in datasets.list_versions(workspace, "vib-windows")] == [1, 2]
    assert c  # chosen, never answered: the close does not wait for it


def test_collections_close_when_all_are_done_or_the_deadline_passes(workspace: Workspace) -> None:
    add_windows(workspace)
    _fleet(workspace)
    full = fleet.request_collection(
        workspace, dataset="vib-windows", devices=2, samples_per_device=2, now=T0
    )
    late = fleet.request_collection(
        workspace, dataset="vib-windows", devices=2, samples_per_device=2, now=T0, expires_in="1h"
    )
    for d in fleet.get_collection(workspace, full.id).devices or []:
        _upload(workspace, d.device, full.id, 2, "all")
    closed = fleet.close_due_collections(workspace, now=T0 + 1)
    assert [c.id for c in closed] == [full.id] and closed[0].version == 2
    assert fleet.get_collection(workspace, late.id).state == "open"
    expired = fleet.close_due_collections(workspace, now=T0 + 3_600_000)
    assert [(c.id, c.state, c.version) for c in expired] == [(late.id, "closed", None)]
    assert "no samples" in expired[0].state_reason
    assert {c.id for c in fleet.list_collections(workspace, state="closed").items} == {
        late.id,
        full.id,
    }


def test_a_close_the_dataset_rejects_writes_no_version(workspace: Workspace) -> None:
    add_windows(workspace)
    _fleet(workspace)
    info = fleet.request_collection(
        workspace, dataset="vib-windows", devices=1, samples_per_device=2, now=T0
    )
    device = (fleet.get_collection(workspace, info.id).devices or [])[0].device
    _upload(workspace, device, info.id, 2, "x")
    schema = datasets.get_schema(workspace, "vib-windows")
    datasets.set_schema(
        workspace, "vib-windows", schema.replace("row_count_min: null", "row_count_min: 1000")
    )
    with pytest.raises(DataRejected, match="row_count_min"):
        fleet.close_collection(workspace, info.id)
    failed = fleet.get_collection(workspace, info.id)
    assert failed.state == "failed" and "row_count_min" in failed.state_reason
    assert [v.version for v in datasets.list_versions(workspace, "vib-windows")] == [1]
    datasets.set_schema(workspace, "vib-windows", schema)
    assert fleet.close_collection(workspace, info.id).version == 2  # a retry succeeds
