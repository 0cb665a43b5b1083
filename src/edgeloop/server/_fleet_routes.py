"""Fleet routes: the device protocol (docs/fleet-protocol.md) and the admin API for devices,
groups, enrollment tokens, releases and rollouts.

Device routes (``/devices/enroll``, ``/devices/{id}/token``, ``/device/...``) authenticate
the device themselves, whatever the server's auth setting: enrollment and token collection
need no token, the ``/device/...`` routes need the device's own token (a user token is
refused with 403) and reach only that device's data. Every other route is the usual user API
and refuses device tokens with 403.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from edgeloop.errors import PermissionDenied
from edgeloop.fleet import _devices, _groups, _reconciler, _releases, _rollouts
from edgeloop.fleet._checkin import LastSeenWriter
from edgeloop.fleet._entities import (
    CheckinReport,
    CheckinResult,
    DeviceInfo,
    DeviceTokenGrant,
    DeviceUpdateInfo,
    EnrollmentResult,
    EnrollmentTokenInfo,
    GroupInfo,
    ReconcileReport,
    ReleaseInfo,
    RolloutEventInfo,
    RolloutInfo,
    TelemetryReport,
)
from edgeloop.fleet._telemetry import record_telemetry
from edgeloop.fleet.bundle import pack_tar
from edgeloop.governance import device_principal, is_device_token
from edgeloop.pages import Page
from edgeloop.server._checkin_path import answer_checkin
from edgeloop.server._deps import as_role
from edgeloop.server._tracking_routes import blob_response
from edgeloop.tracking import ArtifactEntry
from edgeloop.workspace import Workspace

__all__ = ["device_router", "device_writers", "no_device_tokens", "router"]


def _refuse_device_tokens(request: Request) -> None:
    if is_device_token(_bearer(request)):
        raise PermissionDenied(
            "a device token may call only the /device/... endpoints of the fleet protocol",
            details={"token": "device"},
        )


no_device_tokens = Depends(_refuse_device_tokens)
"""Refuses device tokens (403) whatever the auth setting: every router but the device
protocol's is included with it."""
device_router = APIRouter(tags=["fleet: device protocol"])
router = APIRouter(tags=["fleet"], dependencies=[no_device_tokens])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))
admin = Depends(as_role("admin"))
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


# ---- bodies ---------------------------------------------------------------------------------


class _DeviceBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer agents may send more


class EnrollIn(_DeviceBody):
    id: str
    public_key: str
    enrollment_token: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    data_collection: bool = False
    """The device opts in to sending raw samples when asked (docs/fleet-protocol.md)."""


class TokenIn(_DeviceBody):
    timestamp: int
    signature: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonIn(_Body):
    reason: str = ""


class EnrollmentTokenIn(_Body):
    name: str = "enrollment"
    max_uses: int | None = None
    expires_in: str | int | None = None
    """A duration (``7d``, ``12h``) or milliseconds."""


class GroupIn(_Body):
    name: str
    members: list[str] | None = None
    query: str | None = None
    description: str = ""


class ReleaseIn(_Body):
    model: str
    version: int | str
    target: str


class RolloutIn(_Body):
    release: str
    group: str
    waves: str | list[float] = "1,10,50,100"
    bake: str | int = "10m"
    max_failure: str | float = "5%"
    min_success: str | float = "95%"
    health: str | list[dict[str, Any]] | None = None
    on_failure: str = "rollback"
    approve_each_wave: bool = False
    offline_timeout: str | int = "30m"
    start: bool = True


# ---- device authentication --------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class DeviceCaller:
    def __init__(self, ws: Workspace, device_id: str, seen: LastSeenWriter | None) -> None:
        self.ws, self.device_id, self.seen = ws, device_id, seen


def _device(request: Request) -> DeviceCaller:
    ws: Workspace = request.app.state.workspace
    device_id = _devices.authenticate_device(ws, _bearer(request))
    seen = getattr(request.app.state, "last_seen", None)
    return DeviceCaller(ws.acting_as(device_principal(device_id)), device_id, seen)


@asynccontextmanager
async def device_writers(app: FastAPI) -> AsyncIterator[None]:
    """For the app's lifetime: the write-behind of devices' ``last_seen`` (flushed every
    second, and once more at shutdown)."""
    app.state.last_seen = LastSeenWriter(app.state.workspace).start()
    try:
        yield
    finally:
        writer, app.state.last_seen = app.state.last_seen, None
        await run_in_threadpool(writer.close)


device = Depends(_device)


# ---- the device protocol ------------------------------------------------------------------------


@device_router.post("/devices/enroll", status_code=201, response_model_exclude_none=True)
def enroll(body: EnrollIn, request: Request) -> EnrollmentResult:
    """Enroll a device (no auth): pending, or accepted with a pre-shared enrollment token."""
    ws: Workspace = request.app.state.workspace
    return _devices.enroll_device(
        ws,
        body.id,
        body.public_key,
        body.attributes,
        body.enrollment_token,
        data_collection=body.data_collection,
    )


@device_router.post("/devices/{device_id}/token")
def collect_token(device_id: str, body: TokenIn, request: Request) -> DeviceTokenGrant:
    """Collect (rotate) the device token, signing ``{id}:{timestamp}`` with the device key."""
    ws: Workspace = request.app.state.workspace
    return _devices.collect_device_token(ws, device_id, body.timestamp, body.signature)


@device_router.post("/device/checkin", response_model=CheckinResult)
async def checkin(body: CheckinReport, request: Request) -> Response:
    """Heartbeat, inventory, update report and assignment poll.

    Well-formed check-ins are answered by ``_checkin_path.CheckinPath`` before routing; this
    route answers the others (and documents the call)."""
    data = await run_in_threadpool(
        answer_checkin,
        request.app.state.workspace,
        _bearer(request),
        body,
        getattr(request.app.state, "last_seen", None),
    )
    return Response(data, media_type="application/json")


@device_router.post("/device/telemetry", status_code=202)
def telemetry(body: TelemetryReport, caller: DeviceCaller = device) -> dict[str, bool]:
    return {"stored": record_telemetry(caller.ws, caller.device_id, body)}


@device_router.get("/device/releases/{release_id}/manifest.json")
def device_manifest(release_id: str, caller: DeviceCaller = device) -> Response:
    data = _releases.bundle_manifest(caller.ws, release_id, device_id=caller.device_id)
    return Response(data, media_type="application/json")


@device_router.get("/device/releases/{release_id}/manifest.sig")
def device_signature(release_id: str, caller: DeviceCaller = device) -> Response:
    data = _releases.bundle_signature(caller.ws, release_id, device_id=caller.device_id)
    return Response(data, media_type="application/octet-stream")


@device_router.get("/device/releases/{release_id}/files/{path:path}")
def device_file(
    release_id: str, path: str, request: Request, caller: DeviceCaller = device
) -> Response:
    """One bundle file; ``Range: bytes=N-`` answers 206 so a device resumes a download."""
    entry = _releases.bundle_file(caller.ws, release_id, path, device_id=caller.device_id)
    return _file_response(caller.ws, entry, request.headers.get("range"))


_UNSATISFIABLE = (-1, -1)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``bytes=`` range; None to ignore the header (malformed, or
    several ranges: the whole file is sent); ``_UNSATISFIABLE`` when it is outside the file."""
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size - 1) if suffix and size else _UNSATISFIABLE
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size:
        return _UNSATISFIABLE
    if last < first:
        return None
    return first, min(last, size - 1)


def _file_response(ws: Workspace, entry: ArtifactEntry, header: str | None) -> Response:
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{entry.digest}"'}
    wanted = _byte_range(header, entry.size) if header else None
    if wanted == _UNSATISFIABLE:
        return JSONResponse(
            {
                "error": {
                    "code": "range_not_satisfiable",
                    "message": f"{header!r} is outside the file's {entry.size} bytes",
                    "details": {"size": entry.size},
                }
            },
            status_code=416,
            headers={"Content-Range": f"bytes */{entry.size}"},
        )
    if wanted is None:
        response: StreamingResponse = blob_response(ws, entry)
        response.headers.update(headers)
        return response
    first, last = wanted
    data = ws.artifacts.get_bytes(entry.digest)[first : last + 1]
    headers["Content-Range"] = f"bytes {first}-{last}/{entry.size}"
    return Response(data, status_code=206, media_type="application/octet-stream", headers=headers)


# ---- devices and enrollment tokens (users) ----------------------------------------------------


@router.get("/devices")
def list_devices(
    status: str | None = None,
    target: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    ws: Workspace = viewer,
) -> Page[DeviceInfo]:
    return _devices.list_devices(ws, status=status, target=target, cursor=cursor, limit=limit)


@router.get("/devices/{device_id}")
def get_device(device_id: str, ws: Workspace = viewer) -> DeviceInfo:
    return _devices.get_device(ws, device_id)


@router.get("/devices/{device_id}/updates")
def device_updates(
    device_id: str, limit: int = 20, ws: Workspace = viewer
) -> list[DeviceUpdateInfo]:
    return _devices.list_device_updates(ws, device_id, limit)


@router.post("/devices/{device_id}/accept")
def accept_device(device_id: str, body: ReasonIn, ws: Workspace = admin) -> DeviceInfo:
    return _devices.accept_device(ws, device_id, body.reason)


@router.post("/devices/{device_id}/reject")
def reject_device(device_id: str, body: ReasonIn, ws: Workspace = admin) -> DeviceInfo:
    return _devices.reject_device(ws, device_id, body.reason)


@router.delete("/devices/{device_id}")
def remove_device(device_id: str, ws: Workspace = admin) -> DeviceInfo:
    """Remove a device (it may then enroll again, e.g. with a new key)."""
    return _devices.remove_device(ws, device_id)


@router.post("/fleet/enrollment-tokens", status_code=201)
def create_enrollment_token(body: EnrollmentTokenIn, ws: Workspace = admin) -> dict[str, Any]:
    expires = None
    if body.expires_in is not None:
        expires = _rollouts.parse_duration(body.expires_in, "expires_in")
    info, token = _devices.create_enrollment_token(
        ws, body.name, max_uses=body.max_uses, expires_in_ms=expires
    )
    return {"info": info.model_dump(), "token": token}


@router.get("/fleet/enrollment-tokens")
def list_enrollment_tokens(ws: Workspace = admin) -> list[EnrollmentTokenInfo]:
    return _devices.list_enrollment_tokens(ws)


@router.delete("/fleet/enrollment-tokens/{token_id}")
def revoke_enrollment_token(token_id: str, ws: Workspace = admin) -> EnrollmentTokenInfo:
    return _devices.revoke_enrollment_token(ws, token_id)


# ---- groups ---------------------------------------------------------------------------------


@router.post("/device-groups", status_code=201)
def create_group(body: GroupIn, ws: Workspace = editor) -> GroupInfo:
    return _groups.create_group(
        ws, body.name, members=body.members, query=body.query, description=body.description
    )


@router.get("/device-groups")
def list_groups(ws: Workspace = viewer) -> list[GroupInfo]:
    return _groups.list_groups(ws)


@router.get("/device-groups/{name}")
def get_group(name: str, ws: Workspace = viewer) -> GroupInfo:
    return _groups.get_group(ws, name)


@router.delete("/device-groups/{name}")
def delete_group(name: str, ws: Workspace = editor) -> GroupInfo:
    return _groups.delete_group(ws, name)


# ---- releases -------------------------------------------------------------------------------


@router.post("/releases", status_code=201)
def create_release(body: ReleaseIn, ws: Workspace = editor) -> ReleaseInfo:
    return _releases.create_release(ws, body.model, body.version, body.target)


@router.get("/releases")
def list_releases(
    model: str | None = None, cursor: str | None = None, limit: int = 100, ws: Workspace = viewer
) -> Page[ReleaseInfo]:
    return _releases.list_releases(ws, model=model, cursor=cursor, limit=limit)


@router.get("/releases/{release_id}")
def get_release(release_id: str, ws: Workspace = viewer) -> ReleaseInfo:
    return _releases.get_release(ws, release_id)


@router.get("/releases/{release_id}/manifest.json")
def release_manifest(release_id: str, ws: Workspace = viewer) -> Response:
    return Response(_releases.bundle_manifest(ws, release_id), media_type="application/json")


@router.get("/releases/{release_id}/manifest.sig")
def release_signature(release_id: str, ws: Workspace = viewer) -> Response:
    data = _releases.bundle_signature(ws, release_id)
    return Response(data, media_type="application/octet-stream")


@router.get("/releases/{release_id}/bundle.tar")
def release_tar(release_id: str, ws: Workspace = viewer) -> Response:
    """The whole signed bundle as a tar (for firmware tooling and offline installs)."""
    data = pack_tar(_releases.load_bundle(ws, release_id))
    return Response(
        data,
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{release_id}.tar"'},
    )


@router.get("/releases/{release_id}/files/{path:path}")
def release_file(release_id: str, path: str, request: Request, ws: Workspace = viewer) -> Response:
    entry = _releases.bundle_file(ws, release_id, path)
    return _file_response(ws, entry, request.headers.get("range"))


# ---- rollouts -------------------------------------------------------------------------------


@router.post("/rollouts", status_code=201)
def create_rollout(body: RolloutIn, ws: Workspace = editor) -> RolloutInfo:
    return _rollouts.create_rollout(
        ws,
        body.release,
        body.group,
        waves=body.waves,
        bake=body.bake,
        max_failure=body.max_failure,
        min_success=body.min_success,
        health=body.health,
        on_failure=body.on_failure,
        approve_each_wave=body.approve_each_wave,
        offline_timeout=body.offline_timeout,
        start=body.start,
    )


@router.get("/rollouts")
def list_rollouts(
    state: str | None = None, cursor: str | None = None, limit: int = 100, ws: Workspace = viewer
) -> Page[RolloutInfo]:
    return _rollouts.list_rollouts(ws, state=state, cursor=cursor, limit=limit)


@router.get("/rollouts/{rollout_id}")
def get_rollout(rollout_id: str, ws: Workspace = viewer) -> RolloutInfo:
    return _rollouts.get_rollout(ws, rollout_id)


@router.get("/rollouts/{rollout_id}/events")
def rollout_events(rollout_id: str, ws: Workspace = viewer) -> list[RolloutEventInfo]:
    return _rollouts.list_rollout_events(ws, rollout_id)


@router.get("/rollouts/{rollout_id}/devices")
def rollout_devices(
    rollout_id: str, state: str | None = None, ws: Workspace = viewer
) -> list[DeviceUpdateInfo]:
    return _rollouts.list_rollout_devices(ws, rollout_id, state=state)


_ACTIONS = {
    "start": _rollouts.start_rollout,
    "approve": _rollouts.approve_rollout,
    "pause": _rollouts.pause_rollout,
    "resume": _rollouts.resume_rollout,
    "abort": _rollouts.abort_rollout,
    "rollback": _rollouts.rollback_rollout,
}


def _action_route(name: str) -> None:
    action = _ACTIONS[name]

    def route(rollout_id: str, body: ReasonIn, ws: Workspace = editor) -> RolloutInfo:
        return action(ws, rollout_id, body.reason)

    route.__name__ = f"{name}_rollout"
    route.__doc__ = (action.__doc__ or "").split("\n")[0]
    router.post(f"/rollouts/{{rollout_id}}/{name}")(route)


for _name in _ACTIONS:
    _action_route(_name)


@router.post("/fleet/reconcile")
def reconcile(ws: Workspace = editor) -> ReconcileReport:
    """One reconciler pass now (the server also runs one every few seconds)."""
    return _reconciler.reconcile_once(ws, actor=f"reconcile:{ws.principal.name}")
