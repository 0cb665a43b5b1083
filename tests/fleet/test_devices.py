"""Devices on SQLite and PostgreSQL: enrollment, acceptance, device tokens, pre-shared
enrollment tokens, groups and telemetry."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from edgeloop import governance
from edgeloop.errors import (
    Conflict,
    FilterSyntaxError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from edgeloop.fleet import _devices, _groups, _telemetry
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.fleet._signing import signing_key
from edgeloop.fleet.bundle import public_key_b64
from edgeloop.store import DeviceStore, DeviceTelemetry
from edgeloop.workspace import Principal, Workspace
from tests.fleet._fleet import T0, FakeDevice, enrolled


def test_a_device_stays_pending_until_an_admin_accepts_it(workspace: Workspace) -> None:
    dev = FakeDevice("pump-0001", tags={"line": "b"})
    result = _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes(), now=T0)
    assert (result.status, result.device_token, result.fleet_public_key) == ("pending", None, None)
    with pytest.raises(PermissionDenied, match="must accept it"):
        _devices.collect_device_token(workspace, dev.id, T0, dev.sign(T0), now=T0)
    info = _devices.accept_device(workspace, dev.id, "checked the serial")
    assert (info.status, info.status_reason, info.tags) == (
        "accepted",
        "checked the serial",
        {"line": "b"},
    )
    assert str(info.accepted_by).startswith("local:")
    grant = _devices.collect_device_token(workspace, dev.id, T0 + 1, dev.sign(T0 + 1), now=T0)
    assert grant.device_token.startswith("eld_" + governance.device_token_id(dev.id) + "_")
    assert grant.fleet_public_key == public_key_b64(signing_key(workspace))
    assert _devices.authenticate_device(workspace, grant.device_token) == dev.id


def test_token_collection_checks_signature_clock_and_replays(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("d1"))
    other = FakeDevice("d1")  # same id, another key
    with pytest.raises(Unauthenticated, match="does not verify"):
        _devices.collect_device_token(workspace, dev.id, T0 + 5, other.sign(T0 + 5), now=T0)
    with pytest.raises(Unauthenticated, match="does not verify"):
        _devices.collect_device_token(workspace, dev.id, T0 + 5, "not base64!", now=T0)
    late = T0 + 6 * 60 * 1000
    with pytest.raises(Unauthenticated, match="server's clock"):
        _devices.collect_device_token(workspace, dev.id, late, dev.sign(late), now=T0)
    with pytest.raises(Unauthenticated, match="not newer"):  # replay of enrolled()'s request
        _devices.collect_device_token(workspace, dev.id, T0, dev.sign(T0), now=T0)
    with pytest.raises(NotFound):
        _devices.collect_device_token(workspace, "ghost", T0, dev.sign(T0), now=T0)
    old = dev.token
    grant = _devices.collect_device_token(workspace, dev.id, T0 + 9, dev.sign(T0 + 9), now=T0)
    assert _devices.authenticate_device(workspace, grant.device_token) == dev.id
    with pytest.raises(Unauthenticated, match="replaced or revoked"):  # rotated
        _devices.authenticate_device(workspace, old)


def test_device_tokens_and_user_tokens_do_not_mix(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("d1"))
    with pytest.raises(PermissionDenied, match="only the /device/"):
        governance.authenticate(workspace, dev.token)
    _, user_token = governance.create_token(workspace, "ops", "admin")
    with pytest.raises(PermissionDenied, match="not a user token"):
        _devices.authenticate_device(workspace, user_token)
    with pytest.raises(Unauthenticated):
        _devices.authenticate_device(workspace, None)
    with pytest.raises(Unauthenticated, match="malformed"):
        _devices.authenticate_device(workspace, "eld_nothex_x")
    _devices.reject_device(workspace, dev.id, "stolen")
    with pytest.raises(Unauthenticated):
        _devices.authenticate_device(workspace, dev.token)
    with pytest.raises(PermissionDenied, match="rejected"):
        _devices.collect_device_token(workspace, dev.id, T0 + 2, dev.sign(T0 + 2), now=T0)


def test_enrolling_again_is_idempotent_and_another_key_conflicts(workspace: Workspace) -> None:
    dev = FakeDevice("d1")
    _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes(), now=T0)
    again = _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes(), now=T0)
    assert again.status == "pending"
    with pytest.raises(Conflict, match="another public key"):
        _devices.enroll_device(workspace, dev.id, FakeDevice("x").public_key, dev.attributes())
    _devices.accept_device(workspace, dev.id)
    first = _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes(), now=T0)
    assert first.status == "accepted" and first.device_token  # not collected yet: handed out
    second = _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes(), now=T0)
    assert second.status == "accepted" and second.device_token is None


def test_enrollment_tokens_accept_at_once_within_their_limits(workspace: Workspace) -> None:
    info, token = _devices.create_enrollment_token(workspace, "plant-3", max_uses=2)
    assert token.startswith(f"ele_{info.id}_")
    a, b, c = FakeDevice("a"), FakeDevice("b"), FakeDevice("c")
    result = _devices.enroll_device(workspace, a.id, a.public_key, a.attributes(), token)
    assert result.status == "accepted" and result.device_token and result.fleet_public_key
    assert _devices.authenticate_device(workspace, result.device_token) == "a"
    assert _devices.get_device(workspace, "a").accepted_by == f"enrollment-token:{info.id}"
    _devices.enroll_device(workspace, b.id, b.public_key, b.attributes(), token)
    with pytest.raises(Unauthenticated, match="limit"):
        _devices.enroll_device(workspace, c.id, c.public_key, c.attributes(), token)
    with pytest.raises(NotFound):
        _devices.get_device(workspace, "c")  # nothing half written
    _, other = _devices.create_enrollment_token(workspace, "x", expires_in_ms=1000)
    with pytest.raises(Unauthenticated, match="expired"):
        _devices.enroll_device(workspace, c.id, c.public_key, c.attributes(), other, now=T0 * 2)
    _devices.revoke_enrollment_token(workspace, info.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        _devices.enroll_device(workspace, c.id, c.public_key, c.attributes(), token)
    with pytest.raises(Unauthenticated, match="malformed"):
        _devices.enroll_device(workspace, c.id, c.public_key, c.attributes(), "ele_x")
    assert [t.uses for t in _devices.list_enrollment_tokens(workspace)] == [2, 0]
    viewer = workspace.acting_as(Principal("token:v", "viewer"))
    with pytest.raises(PermissionDenied):
        _devices.create_enrollment_token(viewer, "nope")
    with pytest.raises(PermissionDenied):
        _devices.accept_device(viewer, "a")


def test_bad_enrollments_name_the_field(workspace: Workspace) -> None:
    dev = FakeDevice("d1")
    with pytest.raises(ValidationFailed, match="device id"):
        _devices.enroll_device(workspace, "../etc", dev.public_key, dev.attributes())
    with pytest.raises(ValidationFailed, match="public_key"):
        _devices.enroll_device(workspace, dev.id, "AAAA", dev.attributes())
    with pytest.raises(ValidationFailed, match=r"attributes\.target"):
        _devices.enroll_device(workspace, dev.id, dev.public_key, {"site": "x"})
    with pytest.raises(ValidationFailed, match="tag name"):
        _devices.enroll_device(
            workspace, dev.id, dev.public_key, {"target": "rpi4", "tags": {"a b": "c"}}
        )
    assert _devices.list_devices(workspace).items == []


def test_inventory_lists_and_filters(workspace: Workspace) -> None:
    for i, target in enumerate(("rpi4", "rpi4", "nano33ble")):
        enrolled(workspace, FakeDevice(f"d{i}", target=target))
    dev = FakeDevice("pending-one", target="esp-eye")
    _devices.enroll_device(workspace, dev.id, dev.public_key, dev.attributes())
    assert [d.id for d in _devices.list_devices(workspace, target="rpi4").items] == ["d0", "d1"]
    assert [d.id for d in _devices.list_devices(workspace, status="pending").items] == [dev.id]
    page = _devices.list_devices(workspace, limit=2)
    assert len(page.items) == 2 and page.next_cursor
    rest = _devices.list_devices(workspace, cursor=page.next_cursor, limit=2)
    assert [d.id for d in rest.items] == ["d2", "pending-one"]
    with pytest.raises(ValidationFailed, match="status"):
        _devices.list_devices(workspace, status="nope")


# ---- groups ---------------------------------------------------------------------------------


def test_group_queries_parse_with_positions() -> None:
    terms = _groups.parse_query("target=nano33ble and site='plant 3' AND tags.line=b")
    assert [str(t) for t in terms] == ["target=nano33ble", "site=plant 3", "tags.line=b"]
    with pytest.raises(FilterSyntaxError, match="unknown key 'color'") as info:
        _groups.parse_query("target=rpi4 and color=red")
    assert info.value.position == 16
    with pytest.raises(FilterSyntaxError, match="expected 'and'") as info:
        _groups.parse_query("target=rpi4 or site=x")
    assert info.value.position == 12
    with pytest.raises(FilterSyntaxError, match="expected key=value"):
        _groups.parse_query("target=")
    with pytest.raises(ValidationFailed, match="empty"):
        _groups.parse_query("  ")


def test_groups_hold_accepted_devices_by_query_or_list(workspace: Workspace) -> None:
    specs = [
        ("a", "nano33ble", "plant-3", {"line": "b"}),
        ("b", "nano33ble", "plant-3", {"line": "c"}),
        ("c", "nano33ble", "plant-4", {"line": "b"}),
        ("d", "rpi4", "plant-3", {"line": "b"}),
    ]
    for device_id, target, site, tags in specs:
        enrolled(workspace, FakeDevice(device_id, target=target, site=site, tags=tags))
    pending = FakeDevice("e", target="nano33ble")
    _devices.enroll_device(workspace, pending.id, pending.public_key, pending.attributes())
    group = _groups.create_group(workspace, "p3-nano", query="target=nano33ble and site=plant-3")
    assert group.devices == ["a", "b"]
    assert _groups.create_group(workspace, "line-b", query="tags.line=b").devices == ["a", "c", "d"]
    assert _groups.create_group(workspace, "plants", query="site=plant-*").devices == [
        "a",
        "b",
        "c",
        "d",
    ]
    static = _groups.create_group(workspace, "two", members=["d", "e", "a"])
    assert static.devices == ["a", "d"]  # e is pending
    with pytest.raises(ValidationFailed, match="not enrolled: ghost"):
        _groups.create_group(workspace, "bad", members=["a", "ghost"])
    with pytest.raises(ValidationFailed, match="either"):
        _groups.create_group(workspace, "bad", members=["a"], query="id=a")
    with pytest.raises(Conflict):
        _groups.create_group(workspace, "two", members=["a"])
    assert [g.name for g in _groups.list_groups(workspace)] == [
        "line-b",
        "p3-nano",
        "plants",
        "two",
    ]
    _groups.delete_group(workspace, "plants")
    with pytest.raises(NotFound):
        _groups.get_group(workspace, "plants")


# ---- telemetry --------------------------------------------------------------------------------


def _window(start: int, *, inferences: int, errors: int, counts: list[int]) -> TelemetryReport:
    return TelemetryReport.model_validate(
        {
            "window_start": start,
            "window_end": start + 60_000,
            "release": "rel_x",
            "inference_count": inferences,
            "error_count": errors,
            "latency_ms": {"edges": [1, 5, 10], "counts": counts},
            "latency_p95_ms": 4.0,
        }
    )


def test_telemetry_is_stored_once_and_merged_into_health_figures(workspace: Workspace) -> None:
    dev = enrolled(workspace, FakeDevice("d1"))
    first = _window(T0, inferences=100, errors=1, counts=[90, 10, 0, 0])
    assert _telemetry.record_telemetry(workspace, dev.id, first, now=T0 + 60_000)
    assert not _telemetry.record_telemetry(workspace, dev.id, first, now=T0 + 61_000)
    second = _window(T0 + 60_000, inferences=100, errors=3, counts=[0, 80, 15, 5])
    assert _telemetry.record_telemetry(workspace, dev.id, second, now=T0 + 120_000)
    health = _devices.get_device(workspace, dev.id).health
    assert health["error_rate"] == 0.03 and health["window_end"] == T0 + 120_000
    with workspace.db.read() as s:
        rows = list(s.scalars(select(DeviceTelemetry)))
        assert DeviceStore(s).get(dev.id).last_seen == T0 + 120_000
    figures = _telemetry.health_figures(rows)
    assert figures["error_rate"] == pytest.approx(4 / 200)
    # merged: 90, 90, 15, 5 of 200 -> the 190th inference is in the (5, 10] bin
    assert figures["latency_p95_ms"] == pytest.approx(5 + 5 * (190 - 180) / 15, abs=1e-3)
    with pytest.raises(ValidationFailed, match="one bin more"):
        _telemetry.record_telemetry(
            workspace, dev.id, _window(T0, inferences=1, errors=0, counts=[1])
        )
    with pytest.raises(ValidationFailed, match="error_count"):
        _telemetry.record_telemetry(
            workspace, dev.id, _window(T0, inferences=1, errors=2, counts=[1, 0, 0, 0])
        )
