"""Devices: enrollment, acceptance, device tokens, pre-shared enrollment tokens, inventory.

A device enrolls with its id, attributes and Ed25519 public key and stays ``pending`` until
an admin accepts it, unless it presents a valid pre-shared enrollment token. An accepted
device collects a device token by signing ``"{id}:{timestamp}"`` with its key; the token is
good only on the ``/device/...`` endpoints, for that device (docs/fleet-protocol.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import weakref
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from edgeloop.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from edgeloop.fleet._entities import (
    DeviceInfo,
    DeviceTokenGrant,
    DeviceUpdateInfo,
    EnrollmentResult,
    EnrollmentTokenInfo,
)
from edgeloop.fleet._signing import fleet_public_key
from edgeloop.fleet.bundle import load_public_key
from edgeloop.governance import (
    check_device_secret,
    is_device_token,
    new_device_token,
    parse_device_token,
    require,
)
from edgeloop.governance._device_tokens import DeviceTokenCache
from edgeloop.pages import Page, check_choice, check_limit, decode_cursor, next_cursor
from edgeloop.store import Database, Device, DeviceStore, EnrollmentToken, RolloutStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "JITTER_S",
    "POLL_INTERVAL_S",
    "TOKEN_CLOCK_SKEW_MS",
    "accept_device",
    "authenticate_device",
    "check_device_id",
    "collect_device_token",
    "create_enrollment_token",
    "device_info",
    "enroll_device",
    "get_device",
    "list_device_updates",
    "list_devices",
    "list_enrollment_tokens",
    "reject_device",
    "remove_device",
    "revoke_enrollment_token",
    "token_cache",
    "update_info",
]

POLL_INTERVAL_S = 30
JITTER_S = 5
TOKEN_CLOCK_SKEW_MS = 5 * 60 * 1000
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_ENROLLMENT_TOKEN = re.compile(r"^ele_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,128})$")
_MAX_ATTRIBUTES_BYTES = 16 * 1024
_TOKEN_CACHES: weakref.WeakKeyDictionary[Database, DeviceTokenCache] = weakref.WeakKeyDictionary()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---- validation --------------------------------------------------------------------------------


def check_device_id(device_id: object) -> str:
    if not isinstance(device_id, str) or not _DEVICE_ID.match(device_id):
        raise ValidationFailed(
            f"device id {device_id!r} is not allowed: use 1-128 letters, digits, '.', '_', ':' "
            "or '-', starting with a letter or digit",
            details={"field": "id"},
        )
    return device_id


def _scalar(field: str, value: object, limit: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValidationFailed(
            f"attributes.{field} must be a string, got {type(value).__name__}",
            details={"field": f"attributes.{field}"},
        )
    text = str(value)
    if len(text) > limit:
        raise ValidationFailed(
            f"attributes.{field} is longer than {limit} characters",
            details={"field": f"attributes.{field}"},
        )
    return text


def _check_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes with ``target`` (required), ``firmware``, ``site`` and ``tags`` checked;
    other keys are kept as they are."""
    if not isinstance(attributes, Mapping):
        raise ValidationFailed(
            'attributes must be an object with at least \'target\' (e.g. {"target": "rpi4"})',
            details={"field": "attributes"},
        )
    out: dict[str, Any] = dict(attributes)
    target = attributes.get("target")
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ValidationFailed(
            f"attributes.target {target!r} is not a target id: name the device's board, e.g. "
            "rpi4 or nano33ble (edgeloop targets list)",
            details={"field": "attributes.target"},
        )
    for field, limit in (("firmware", 64), ("site", 128)):
        if attributes.get(field) is not None:
            out[field] = _scalar(field, attributes[field], limit)
    tags = attributes.get("tags")
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise ValidationFailed(
                "attributes.tags must be an object of name -> value",
                details={"field": "attributes.tags"},
            )
        checked: dict[str, str] = {}
        for key, value in tags.items():
            if not isinstance(key, str) or not _TAG_KEY.match(key):
                raise ValidationFailed(
                    f"tag name {key!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-'",
                    details={"field": "attributes.tags"},
                )
            checked[key] = _scalar(f"tags.{key}", value, 256)
        out["tags"] = checked
    if len(json.dumps(out, default=str)) > _MAX_ATTRIBUTES_BYTES:
        raise ValidationFailed(
            f"attributes are larger than {_MAX_ATTRIBUTES_BYTES} bytes as JSON",
            details={"field": "attributes"},
        )
    return out


# ---- conversions -------------------------------------------------------------------------------


def device_info(row: Device) -> DeviceInfo:
    attributes = dict(row.attributes or {})
    site = attributes.get("site")
    return DeviceInfo(
        id=row.id,
        status=row.status,
        status_reason=row.status_reason,
        target=row.target,
        firmware=row.firmware,
        site=None if site is None else str(site),
        tags={str(k): str(v) for k, v in (attributes.get("tags") or {}).items()},
        attributes=attributes,
        public_key=row.public_key,
        has_token=row.token_hash is not None,
        slots=dict(row.slots or {}),
        active_slot=row.active_slot,
        current_release=row.current_release,
        last_seen=row.last_seen,
        health=dict(row.health or {}),
        enrolled_at=row.enrolled_at,
        enrolled_by=row.enrolled_by,
        accepted_at=row.accepted_at,
        accepted_by=row.accepted_by,
        data_collection=bool(row.data_collection),
    )


def _token_info(row: EnrollmentToken) -> EnrollmentTokenInfo:
    return EnrollmentTokenInfo(
        id=row.id,
        name=row.name,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


def update_info(row: Any) -> DeviceUpdateInfo:
    return DeviceUpdateInfo(
        rollout=row.rollout_id,
        device=row.device_id,
        wave=row.wave,
        release=row.release_id,
        previous_release=row.previous_release,
        state=row.state,
        reason=row.reason,
        rollback=row.rollback,
        offline=row.offline,
        bytes_downloaded=row.bytes_downloaded,
        bytes_saved=row.bytes_saved,
        assigned_at=row.assigned_at,
        updated_at=row.updated_at,
    )


# ---- enrollment tokens -------------------------------------------------------------------------


def create_enrollment_token(
    ws: Workspace,
    name: str = "enrollment",
    *,
    max_uses: int | None = None,
    expires_in_ms: int | None = None,
) -> tuple[EnrollmentTokenInfo, str]:
    """A pre-shared token (``ele_…``) with which devices are accepted as they enroll; the
    text is returned once and never shown again. Admins only."""
    require(ws.principal, "admin")
    if not name or len(name) > 128:
        raise ValidationFailed("enrollment token name must be 1-128 characters")
    if max_uses is not None and max_uses < 1:
        raise ValidationFailed(f"max_uses must be 1 or more, got {max_uses}")
    if expires_in_ms is not None and expires_in_ms < 1:
        raise ValidationFailed(f"the expiry must be in the future, got {expires_in_ms} ms")
    at = now_ms()
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = EnrollmentToken(
        id=token_id,
        name=name,
        secret_hash=_hash(secret),
        max_uses=max_uses,
        uses=0,
        expires_at=None if expires_in_ms is None else at + expires_in_ms,
        created_at=at,
        created_by=ws.principal.name,
        revoked_at=None,
    )
    with ws.db.write() as s:
        DeviceStore(s).add_enrollment_token(row)
        return _token_info(row), f"ele_{token_id}_{secret}"


def list_enrollment_tokens(ws: Workspace) -> list[EnrollmentTokenInfo]:
    require(ws.principal, "admin")
    with ws.db.read() as s:
        return [_token_info(t) for t in DeviceStore(s).enrollment_tokens()]


def revoke_enrollment_token(ws: Workspace, token_id: str) -> EnrollmentTokenInfo:
    require(ws.principal, "admin")
    with ws.db.write() as s:
        row = DeviceStore(s).enrollment_token(token_id, for_update=True)
        if row is None:
            raise NotFound(f"enrollment token {token_id!r} does not exist")
        if row.revoked_at is None:
            row.revoked_at = now_ms()
        return _token_info(row)


def _use_enrollment_token(store: DeviceStore, text: str, now: int) -> EnrollmentToken:
    match = _ENROLLMENT_TOKEN.match(text)
    if match is None:
        raise Unauthenticated(
            "the enrollment token is malformed: it should look like ele_<id>_<secret> "
            "(edgeloop devices enrollment-token create)"
        )
    row = store.enrollment_token(match[1], for_update=True)
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(match[2])):
        raise Unauthenticated("the enrollment token is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated("the enrollment token has been revoked")
    if row.expires_at is not None and now >= row.expires_at:
        raise Unauthenticated("the enrollment token has expired")
    if row.max_uses is not None and row.uses >= row.max_uses:
        raise Unauthenticated(f"the enrollment token has been used {row.uses} times, its limit")
    row.uses += 1
    return row


# ---- enrollment and device tokens --------------------------------------------------------------


def _issue_token(device: Device) -> str:
    token = new_device_token(device.id)
    device.token_id, device.token_hash = token.token_id, token.secret_hash
    return token.text


def enroll_device(
    ws: Workspace,
    device_id: str,
    public_key: str,
    attributes: Mapping[str, Any] | None,
    enrollment_token: str | None = None,
    *,
    now: int | None = None,
    data_collection: bool = False,
) -> EnrollmentResult:
    """Enroll a device (no auth): ``pending``, or ``accepted`` with its token when it brings
    a valid pre-shared enrollment token. Enrolling again with the same key changes nothing
    (a token is handed out again only while the device has not collected one) except that
    ``data_collection=False`` withdraws an earlier opt-in; another key for the same id is a
    :class:`Conflict`. ``data_collection``: the device opts in to sending raw samples."""
    check_device_id(device_id)
    load_public_key(public_key)  # ValidationFailed naming public_key
    attrs = _check_attributes(attributes)
    fleet_key = fleet_public_key(ws)  # before any write: a key problem changes nothing
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        store = DeviceStore(s)
        device = store.find(device_id, for_update=True)
        token_text: str | None = None
        if device is not None:
            if not hmac.compare_digest(device.public_key, public_key):
                raise Conflict(
                    f"device {device_id!r} is enrolled with another public key: keep the "
                    "device's key, or ask an admin to remove the old enrollment",
                    details={"device": device_id},
                )
            if device.status == "pending" and enrollment_token:
                used = _use_enrollment_token(store, enrollment_token, at)
                device.status, device.accepted_at = "accepted", at
                device.accepted_by = f"enrollment-token:{used.id}"
            device.last_seen = at
            if not data_collection:
                device.data_collection = False
            if device.status == "accepted" and device.token_hash is None:
                token_text = _issue_token(device)
        else:
            status, accepted_by = "pending", None
            if enrollment_token:
                used = _use_enrollment_token(store, enrollment_token, at)
                status, accepted_by = "accepted", f"enrollment-token:{used.id}"
            device = Device(
                id=device_id,
                public_key=public_key,
                status=status,
                status_reason="",
                target=attrs["target"],
                attributes=attrs,
                firmware=str(attrs.get("firmware", "")),
                token_id=None,
                token_hash=None,
                token_signed_at=None,
                slots={},
                active_slot=None,
                current_release=None,
                last_seen=at,
                health={},
                enrolled_at=at,
                enrolled_by=f"device:{device_id}",
                accepted_at=at if status == "accepted" else None,
                accepted_by=accepted_by,
                data_collection=bool(data_collection),
            )
            if status == "accepted":
                token_text = _issue_token(device)
            store.add(device)
        status = device.status
    result = EnrollmentResult(status=status, poll_interval_s=POLL_INTERVAL_S)
    if status == "accepted":
        result.fleet_public_key = fleet_key
        result.device_token = token_text
    return result


def collect_device_token(
    ws: Workspace, device_id: str, timestamp: int, signature: str, *, now: int | None = None
) -> DeviceTokenGrant:
    """A fresh device token for an accepted device that signed ``"{id}:{timestamp}"`` with
    its key; the previous token stops working. Unauthenticated for a bad signature, a
    timestamp more than 5 minutes off or one already used; PermissionDenied while pending
    or rejected."""
    check_device_id(device_id)
    fleet_key = fleet_public_key(ws)
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        try:
            raw = base64.b64decode(signature, validate=True)
            load_public_key(device.public_key).verify(raw, f"{device_id}:{timestamp}".encode())
        except (InvalidSignature, binascii.Error, ValueError, TypeError) as exc:
            raise Unauthenticated(
                f"the signature does not verify with device {device_id!r}'s public key: sign "
                "'{id}:{timestamp}' with the key the device enrolled with"
            ) from exc
        if abs(timestamp - at) > TOKEN_CLOCK_SKEW_MS:
            raise Unauthenticated(
                f"the timestamp is {abs(timestamp - at) // 1000} s away from the server's "
                "clock (5 minutes allowed): set the device's clock"
            )
        if device.token_signed_at is not None and timestamp <= device.token_signed_at:
            raise Unauthenticated(
                "this signed timestamp is not newer than the last one used: sign the current time"
            )
        if device.status != "accepted":
            raise PermissionDenied(
                f"device {device_id!r} is {device.status}: "
                + (
                    "an admin must accept it first (edgeloop devices accept ID)"
                    if device.status == "pending"
                    else "it was rejected"
                ),
                details={"status": device.status},
            )
        text = _issue_token(device)
        device.token_signed_at = timestamp
        device.last_seen = at
    token_cache(ws).forget(device_id)
    return DeviceTokenGrant(
        device_token=text, fleet_public_key=fleet_key, poll_interval_s=POLL_INTERVAL_S
    )


def token_cache(ws: Workspace) -> DeviceTokenCache:
    """This process's cache of verified device tokens for the workspace's database."""
    cache = _TOKEN_CACHES.get(ws.db)
    if cache is None:
        cache = _TOKEN_CACHES.setdefault(ws.db, DeviceTokenCache())
    return cache


def authenticate_device(ws: Workspace, token: str | None) -> str:
    """The id of the accepted device a device token stands for.

    Unauthenticated for no token or an unknown one; PermissionDenied for a user token (the
    ``/device/...`` endpoints take device tokens only) or a device no longer accepted.
    A verified token is trusted for ``DEVICE_TOKEN_CACHE_S`` (5 s) without asking the
    database again: replacing a device's token, rejecting or removing the device takes
    effect at once in this process and within that bound in other server processes."""
    if not token:
        raise Unauthenticated("send the device token: 'Authorization: Bearer eld_…'")
    if not is_device_token(token):
        raise PermissionDenied(
            "the /device/... endpoints take a device token (eld_…), not a user token",
            details={"token": "user"},
        )
    parsed = parse_device_token(token)
    if parsed is None:
        raise Unauthenticated("the device token is malformed: it should look like eld_<id>_<…>")
    token_id, secret_hash = parsed
    cache = token_cache(ws)
    cached = cache.get(token_id, secret_hash)
    if cached is not None:
        return cached
    with ws.db.read() as s:
        for device_id, stored_hash, status in DeviceStore(s).token_owners(token_id):
            if check_device_secret(stored_hash, secret_hash):
                if status != "accepted":
                    raise PermissionDenied(f"device {device_id!r} is {status}")
                cache.put(token_id, secret_hash, device_id)
                return device_id
    raise Unauthenticated(
        "the device token is not valid (it was replaced or revoked): collect a new one"
    )


# ---- acceptance and inventory ------------------------------------------------------------------


def accept_device(ws: Workspace, device_id: str, reason: str = "") -> DeviceInfo:
    """Accept a pending (or rejected) device; it can then collect its token. Admins only."""
    require(ws.principal, "admin")
    with ws.db.write() as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        if device.status != "accepted":
            device.status, device.status_reason = "accepted", reason
            device.accepted_at, device.accepted_by = now_ms(), ws.principal.name
        return device_info(device)


def reject_device(ws: Workspace, device_id: str, reason: str = "") -> DeviceInfo:
    """Reject a device: its token stops working and it gets no assignment. Admins only."""
    require(ws.principal, "admin")
    with ws.db.write() as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        device.status, device.status_reason = "rejected", reason
        device.token_id = device.token_hash = None
        info = device_info(device)
    token_cache(ws).forget(device_id)
    return info


def remove_device(ws: Workspace, device_id: str) -> DeviceInfo:
    """Remove a device with its updates and telemetry (e.g. to let it enroll again with a
    new key). Refused while a rollout that is not finished holds it. Admins only."""
    require(ws.principal, "admin")
    with ws.db.write() as s:
        store = DeviceStore(s)
        device = store.get(device_id, for_update=True)
        busy = RolloutStore(s).busy_devices(None, [device_id])
        if busy:
            raise Conflict(
                f"device {device_id!r} is in a rollout that has not finished with it: abort or "
                "roll back that rollout first",
                details={"device": device_id},
            )
        info = device_info(device)
        store.delete(device)
    token_cache(ws).forget(device_id)
    return info


def list_devices(
    ws: Workspace,
    *,
    status: str | None = None,
    target: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[DeviceInfo]:
    check_choice(status, ("pending", "accepted", "rejected"), "status")
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        rows = DeviceStore(s).page(offset, limit + 1, status=status, target=target)
        items = [device_info(r) for r in rows[:limit]]
    return Page[DeviceInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def get_device(ws: Workspace, device_id: str) -> DeviceInfo:
    with ws.db.read() as s:
        return device_info(DeviceStore(s).get(device_id))


def list_device_updates(ws: Workspace, device_id: str, limit: int = 20) -> list[DeviceUpdateInfo]:
    """The device's newest updates, newest first."""
    with ws.db.read() as s:
        DeviceStore(s).get(device_id)
        return [update_info(du) for du, _ in RolloutStore(s).device_updates(device_id, limit)]
