"""Data collection routes: the device upload (``POST /device/samples``, device token) and
the admin API for collection requests (``/collections``) and a device's consent."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from edgeloop.errors import PermissionDenied
from edgeloop.fleet import _collection, _collection_close
from edgeloop.fleet._collection_entities import CollectionInfo, SamplesUpload, UploadResult
from edgeloop.fleet._entities import DeviceInfo
from edgeloop.pages import Page
from edgeloop.server._deps import as_role
from edgeloop.server._fleet_routes import DeviceCaller, device
from edgeloop.workspace import Workspace

__all__ = ["device_router", "router"]

device_router = APIRouter(tags=["fleet: device protocol"])
router = APIRouter(tags=["data collection"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))
admin = Depends(as_role("admin"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionIn(_Body):
    dataset: str
    devices: int
    samples_per_device: int
    model: str | None = None
    group: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    expires_in: str | int = "24h"
    """A duration (``24h``, ``30m``) or milliseconds."""


class ConsentIn(_Body):
    enabled: bool


@device_router.post("/device/samples")
def upload_samples(body: SamplesUpload, caller: DeviceCaller = device) -> UploadResult:
    """Rows for a collection addressed to this device (idempotent per ``upload_id``)."""
    return _collection.upload_samples(caller.ws, caller.device_id, body)


@router.post("/collections", status_code=201)
def request_collection(body: CollectionIn, ws: Workspace = editor) -> CollectionInfo:
    """Ask opted-in devices for raw samples; they become a new version of the dataset."""
    return _collection.request_collection(
        ws,
        dataset=body.dataset,
        devices=body.devices,
        samples_per_device=body.samples_per_device,
        model=body.model,
        group=body.group,
        tags=body.tags or None,
        reason=body.reason,
        expires_in=body.expires_in,
    )


@router.get("/collections")
def list_collections(
    state: str | None = None,
    dataset: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    ws: Workspace = viewer,
) -> Page[CollectionInfo]:
    return _collection.list_collections(
        ws, state=state, dataset=dataset, cursor=cursor, limit=limit
    )


@router.get("/collections/{collection_id}")
def get_collection(collection_id: str, ws: Workspace = viewer) -> CollectionInfo:
    return _collection.get_collection(ws, collection_id)


@router.post("/collections/{collection_id}/close")
def close_collection(collection_id: str, ws: Workspace = editor) -> CollectionInfo:
    """Turn the uploads into a new dataset version now (idempotent)."""
    return _collection_close.close_collection(ws, collection_id)


@router.post("/devices/{device_id}/data-collection")
def set_data_collection(device_id: str, body: ConsentIn, ws: Workspace = admin) -> DeviceInfo:
    """Turn a device's data collection off; only the device itself can opt in."""
    if body.enabled:
        raise PermissionDenied(
            "only the device can opt in to data collection (at enrollment, edgeloop-agent "
            '--collect-data); an admin may only turn it off: send {"enabled": false}',
            details={"field": "enabled"},
        )
    return _collection.disable_data_collection(ws, device_id)
