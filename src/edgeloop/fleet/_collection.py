"""Data collection: raw samples from the devices that opted in, as a new dataset version.

:func:`request_collection` picks opted-in devices deterministically (a stable hash of the
collection id and the device id, optionally among a model's devices, a group or tags) and
asks each for ``samples_per_device`` raw samples. A chosen device finds the request in its
check-in answer and uploads rows with ``POST /device/samples`` (:func:`upload_samples`:
only for a request addressed to it, validated against the dataset's schema, idempotent per
upload id). :func:`close_collection` (see ``_collection_close``) turns the uploads into a new
version of the dataset, child of its latest version.

Only devices that opted in at enrollment are ever asked; an admin may turn a device's data
collection off (:func:`disable_data_collection`), never on: consent stays with the device.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from edgeloop.datasets import DatasetSchema, get_version, schema_from_yaml
from edgeloop.datasets import get_schema as get_dataset_schema
from edgeloop.datasets._canonical import canonical_parquet
from edgeloop.errors import Conflict, NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from edgeloop.fleet._collection_entities import (
    COLLECTION_STATES,
    MAX_ROWS_PER_UPLOAD,
    CollectionDeviceInfo,
    CollectionInfo,
    CollectionRequest,
    SamplesUpload,
    UploadResult,
)
from edgeloop.fleet._collection_rows import (
    check_rows,
    decode_schema,
    encode_schema,
    labelled_count,
    layout_for,
    rows_to_table,
)
from edgeloop.fleet._devices import device_info
from edgeloop.fleet._entities import DeviceInfo
from edgeloop.fleet._groups import group_devices
from edgeloop.fleet._rollouts import parse_duration
from edgeloop.governance import require
from edgeloop.pages import Page, check_choice, check_limit, decode_cursor, next_cursor
from edgeloop.store import (
    Collection,
    CollectionDevice,
    CollectionStore,
    CollectionUpload,
    DeviceStore,
)
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "MAX_DEVICES",
    "MAX_SAMPLES_PER_DEVICE",
    "UPLOAD_URL",
    "choice_order",
    "collection_for",
    "collection_info",
    "disable_data_collection",
    "get_collection",
    "list_collections",
    "request_collection",
    "upload_samples",
]

MAX_DEVICES = 100_000
MAX_SAMPLES_PER_DEVICE = 10_000
UPLOAD_URL = "/api/v1/device/samples"
DEFAULT_EXPIRES_IN = "24h"


def _choice_key(collection_id: str, device_id: str) -> str:
    return hashlib.sha256(f"{collection_id}:{device_id}".encode()).hexdigest()


def collection_info(
    store: CollectionStore, row: Collection, *, with_devices: bool = False
) -> CollectionInfo:
    chosen, done = store.counts(row.id)
    devices = None
    uploaded = row.rows
    if with_devices or row.state != "closed":
        rows = store.devices(row.id)
        if row.state != "closed":
            uploaded = sum(d.uploaded for d in rows)
        if with_devices:
            devices = [
                CollectionDeviceInfo(
                    device=d.device_id, uploaded=d.uploaded, done=d.done, updated_at=d.updated_at
                )
                for d in rows
            ]
    return CollectionInfo(
        id=row.id,
        dataset=row.dataset,
        state=row.state,
        state_reason=row.state_reason,
        devices_requested=row.devices_requested,
        samples_per_device=row.samples_per_device,
        model=row.model,
        group=row.group_name,
        tags={str(k): str(v) for k, v in (row.tags or {}).items()},
        reason=row.reason,
        base_version=row.base_version,
        deadline=row.deadline,
        created_at=row.created_at,
        created_by=row.created_by,
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        version=row.version,
        parent=row.parent,
        rows=uploaded,
        chosen=chosen,
        done=done,
        devices=devices,
    )


def _check_counts(devices: int, samples_per_device: int) -> None:
    for field, value, top in (
        ("devices", devices, MAX_DEVICES),
        ("samples_per_device", samples_per_device, MAX_SAMPLES_PER_DEVICE),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ValidationFailed(
                f"{field} must be a whole number from 1 to {top:,}, got {value!r}",
                details={"field": field},
            )


def _check_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationFailed("tags must be an object of name -> value", details={"field": "tags"})
    return {str(k): str(v) for k, v in tags.items()}


def _has_tags(attributes: Mapping[str, object], wanted: Mapping[str, str]) -> bool:
    tags = attributes.get("tags")
    if not isinstance(tags, Mapping):
        return False
    return all(k in tags and str(tags[k]) == v for k, v in wanted.items())


def _choose(
    s: Session,
    collection_id: str,
    *,
    devices: int,
    model: str | None,
    group: str | None,
    tags: Mapping[str, str],
) -> list[str]:
    store = CollectionStore(s)
    candidates = store.opted_in()
    if group is not None:
        row = DeviceStore(s).group(group)
        members = {d.id for d in group_devices(s, row)}
        candidates = [c for c in candidates if c[0] in members]
    if tags:
        candidates = [c for c in candidates if _has_tags(c[2], tags)]
    if model is not None:
        models = store.release_models([c[3] for c in candidates if c[3]])
        candidates = [c for c in candidates if c[3] and models.get(c[3]) == model]
    ordered = sorted((c[0] for c in candidates), key=lambda d: _choice_key(collection_id, d))
    return ordered[:devices]


def request_collection(
    ws: Workspace,
    *,
    dataset: str,
    devices: int,
    samples_per_device: int,
    model: str | None = None,
    group: str | None = None,
    tags: Mapping[str, str] | None = None,
    reason: str = "",
    actor: str | None = None,
    now: int | None = None,
    expires_in: str | int = DEFAULT_EXPIRES_IN,
) -> CollectionInfo:
    """Ask up to ``devices`` opted-in devices (of ``model``'s current release, of ``group``,
    with all ``tags``, when given) for ``samples_per_device`` raw samples each, for
    ``dataset``. The request expires after ``expires_in`` (then it closes with what came).
    :class:`ValidationFailed` when no opted-in device matches. Editors and admins."""
    require(ws.principal, "editor")
    _check_counts(devices, samples_per_device)
    wanted_tags = _check_tags(tags)
    window = parse_duration(expires_in, "expires_in")
    if window <= 0:
        raise ValidationFailed("expires_in must be positive", details={"field": "expires_in"})
    version = get_version(ws, dataset)  # NotFound / ValidationFailed name the dataset
    schema: DatasetSchema = schema_from_yaml(get_dataset_schema(ws, dataset))
    blob = ws.artifacts.get_bytes(version.digest)
    arrow_schema = pq.ParquetFile(pa.BufferReader(blob)).schema_arrow
    at = now if now is not None else now_ms()
    collection_id = f"col_{secrets.token_hex(8)}"
    with ws.db.write() as s:
        chosen = _choose(
            s, collection_id, devices=devices, model=model, group=group, tags=wanted_tags
        )
        if not chosen:
            filters = [f for f in (model and f"model {model}", group and f"group {group}") if f]
            filters += [f"tags.{k}={v}" for k, v in wanted_tags.items()]
            raise ValidationFailed(
                "no accepted device that opted in to data collection matches"
                + (f" ({', '.join(filters)})" if filters else "")
                + ": devices opt in at enrollment (edgeloop-agent --collect-data)",
                details={"field": "devices"},
            )
        row = Collection(
            id=collection_id,
            dataset=version.name,
            state="open",
            state_reason="",
            devices_requested=devices,
            samples_per_device=samples_per_device,
            model=model,
            group_name=group,
            tags=wanted_tags,
            reason=reason,
            layout=layout_for(schema, arrow_schema, version.sensor),
            arrow_schema=encode_schema(arrow_schema),
            data_schema=schema.model_dump(mode="json"),
            base_version=version.version,
            deadline=at + window,
            created_at=at,
            created_by=actor or ws.principal.name,
            closed_at=None,
            closed_by=None,
            version=None,
            parent=None,
            rows=0,
        )
        store = CollectionStore(s)
        store.add(row, chosen, at)
        return collection_info(store, row)


def get_collection(ws: Workspace, collection_id: str) -> CollectionInfo:
    """The collection with each chosen device's progress."""
    with ws.db.read() as s:
        store = CollectionStore(s)
        return collection_info(store, store.get(collection_id), with_devices=True)


def list_collections(
    ws: Workspace,
    *,
    state: str | None = None,
    dataset: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[CollectionInfo]:
    """Collections, newest first."""
    check_choice(state, COLLECTION_STATES, "state")
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        store = CollectionStore(s)
        rows = store.page(offset, limit + 1, state=state, dataset=dataset)
        items = [collection_info(store, r) for r in rows[:limit]]
    return Page[CollectionInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def collection_for(s: Session, device_id: str, at: int) -> CollectionRequest | None:
    """The request a device's check-in answer carries: its oldest open collection it has not
    finished (None for a device that did not opt in, or turned it off). One query on the
    ``(device_id, done)`` index."""
    found = CollectionStore(s).pending_for_device(device_id)
    if found is None:
        return None
    row, cd = found
    if at >= row.deadline:
        return None
    return CollectionRequest(
        id=row.id,
        dataset=row.dataset,
        samples=max(0, row.samples_per_device - cd.uploaded),
        uploaded=cd.uploaded,
        upload_url=UPLOAD_URL,
        max_rows_per_upload=MAX_ROWS_PER_UPLOAD,
        deadline=row.deadline,
        layout=dict(row.layout or {}),
    )


def _result(row: Collection, cd: CollectionDevice, accepted: int, dup: bool) -> UploadResult:
    return UploadResult(
        collection=row.id,
        accepted=accepted,
        duplicate=dup,
        uploaded=cd.uploaded,
        remaining=max(0, row.samples_per_device - cd.uploaded),
        done=cd.done,
    )


def _check_upload(
    row: Collection | None, cd: CollectionDevice | None, device_id: str, upload: SamplesUpload
) -> tuple[Collection, CollectionDevice]:
    if row is None:
        raise NotFound(
            f"collection {upload.collection!r} does not exist",
            details={"field": "collection"},
        )
    if cd is None:
        raise PermissionDenied(
            f"collection {row.id} is not addressed to device {device_id!r}: upload only for "
            "the collection your check-in answer names",
            details={"field": "collection"},
        )
    return row, cd


def _check_room(row: Collection, cd: CollectionDevice, rows: int, consent: bool) -> None:
    if not consent:
        raise PermissionDenied(
            "data collection is turned off for this device: it sends no samples",
            details={"field": "collection"},
        )
    if row.state != "open":
        raise Conflict(
            f"collection {row.id} is {row.state}: it takes no more samples",
            details={"state": row.state},
        )
    if cd.done and rows:
        raise Conflict(f"this device already finished collection {row.id}")
    if rows > row.samples_per_device - cd.uploaded:
        raise PayloadTooLarge(
            f"collection {row.id} wants {row.samples_per_device - cd.uploaded} more row(s) "
            f"from this device, the upload has {rows}",
            details={"field": "rows", "remaining": row.samples_per_device - cd.uploaded},
        )


def upload_samples(
    ws: Workspace, device_id: str, upload: SamplesUpload, *, now: int | None = None
) -> UploadResult:
    """Store a device's rows for a collection addressed to it (idempotent per upload id)."""
    if len(upload.rows) > MAX_ROWS_PER_UPLOAD:
        raise PayloadTooLarge(
            f"an upload carries at most {MAX_ROWS_PER_UPLOAD} rows, this one {len(upload.rows)}: "
            "send them in several uploads",
            details={"field": "rows", "limit": MAX_ROWS_PER_UPLOAD},
        )
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        store = CollectionStore(s)
        row, cd = _check_upload(
            store.find(upload.collection),
            store.device(upload.collection, device_id),
            device_id,
            upload,
        )
        earlier = store.upload(row.id, device_id, upload.upload_id)
        if earlier is not None:
            return _result(row, cd, 0, True)
        consent = DeviceStore(s).get(device_id).data_collection
        _check_room(row, cd, len(upload.rows), consent)
        arrow_schema, data_schema = decode_schema(row.arrow_schema), dict(row.data_schema)
        label = row.layout.get("label") if isinstance(row.layout, dict) else None
    digest, size, labelled = "", 0, 0
    if upload.rows:
        table = rows_to_table(upload.rows, arrow_schema, row.dataset)
        check_rows(table, DatasetSchema.model_validate(data_schema), row.dataset)
        labelled = labelled_count(table, label)
        data, _ = canonical_parquet(table)
        blob = ws.artifacts.put_bytes(data)
        digest, size = blob.digest, blob.size
    with ws.db.write() as s:
        store = CollectionStore(s)
        row, cd = _check_upload(
            store.find(upload.collection, for_update=True),
            store.device(upload.collection, device_id, for_update=True),
            device_id,
            upload,
        )
        if store.upload(row.id, device_id, upload.upload_id) is not None:
            return _result(row, cd, 0, True)
        _check_room(row, cd, len(upload.rows), DeviceStore(s).get(device_id).data_collection)
        store.add_upload(
            CollectionUpload(
                collection_id=row.id,
                device_id=device_id,
                upload_id=upload.upload_id,
                rows=len(upload.rows),
                labelled=labelled,
                digest=digest,
                size=size,
                done=upload.done,
                received_at=at,
            )
        )
        cd.uploaded += len(upload.rows)
        cd.done = cd.done or upload.done or cd.uploaded >= row.samples_per_device
        cd.updated_at = at
        return _result(row, cd, len(upload.rows), False)


def disable_data_collection(ws: Workspace, device_id: str) -> DeviceInfo:
    """Turn data collection off for a device: it is asked for nothing more and its uploads
    are refused; its open requests count it as finished. Only the device can opt in again
    (by enrolling anew). Admins only."""
    require(ws.principal, "admin")
    at = now_ms()
    with ws.db.write() as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        device.data_collection = False
        store = CollectionStore(s)
        for collection_id in store.ids_in_states(("open",)):
            cd = store.device(collection_id, device_id, for_update=True)
            if cd is not None and not cd.done:
                cd.done, cd.updated_at = True, at
        return device_info(device)


def choice_order(collection_id: str, device_ids: Sequence[str]) -> list[str]:
    """The devices in the order a collection picks them (for tests and audits)."""
    return sorted(device_ids, key=lambda d: _choice_key(collection_id, d))
