"""Closing a collection: its uploads become a new version of the dataset.

The close runs in three steps so that nothing is half written and no upload is lost:

1. one transaction moves the collection to ``closing`` (uploads are refused from then on);
2. outside any transaction, the uploads (in a fixed order) are appended to the rows of the
   dataset's latest version and stored through the datasets service, which validates,
   profiles and allocates the version (source ``collection:<id>``, parent that version);
3. one transaction records the version and moves the collection to ``closed``.

A close that stops between the steps is finished by the next one (the reconciler retries
``closing`` collections); two closers build the same table, so the datasets service's
digest check gives them the same version. A close the data cannot pass (the dataset's
expectations reject it) leaves the collection ``failed`` with the reason, and no version;
closing it again retries (e.g. after the schema was relaxed).

Rows without a label are kept when the dataset's label column is nullable; otherwise they
are left out, and the close's reason says how many.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from edgeloop.datasets import add_version, load_table, read_parquet_bytes, schema_from_yaml
from edgeloop.datasets import get_schema as get_dataset_schema
from edgeloop.errors import EdgeloopError, ValidationFailed
from edgeloop.fleet._collection import collection_info
from edgeloop.fleet._collection_entities import CollectionInfo
from edgeloop.store import CollectionStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["close_collection", "close_due_collections"]

log = logging.getLogger("edgeloop.fleet")


@dataclass(frozen=True)
class _Built:
    version: int | None
    parent: str | None
    rows: int
    reason: str


def _begin(ws: Workspace, collection_id: str) -> CollectionInfo | None:
    """Move the collection to ``closing``; its info if it is closed already."""
    with ws.db.write() as s:
        store = CollectionStore(s)
        row = store.get(collection_id, for_update=True)
        if row.state == "closed":
            return collection_info(store, row)
        row.state = "closing"
        return None


def _uploaded(ws: Workspace, collection_id: str) -> tuple[list[pa.Table], int, str]:
    with ws.db.read() as s:
        store = CollectionStore(s)
        row = store.get(collection_id)
        uploads = [(u.device_id, u.digest) for u in store.uploads(collection_id) if u.rows]
        reason = row.reason
    tables = [read_parquet_bytes(ws.artifacts.get_bytes(digest)) for _, digest in uploads]
    return tables, len({d for d, _ in uploads}), reason


def _build(ws: Workspace, collection_id: str, dataset: str) -> _Built:
    tables, devices, why = _uploaded(ws, collection_id)
    if not tables:
        return _Built(None, None, 0, "no samples were uploaded: no version was made")
    parent, base = load_table(ws, dataset)
    try:
        new = pa.concat_tables([t.select(base.column_names).cast(base.schema) for t in tables])
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise ValidationFailed(
            f"the uploads no longer fit {parent.uri} (its columns changed since the request): {exc}"
        ) from exc
    uploaded, dropped = new.num_rows, 0
    label = parent.label
    if label and label in new.column_names and new.column(label).null_count:
        schema = schema_from_yaml(get_dataset_schema(ws, dataset))
        column = schema.column(label)
        if column is not None and not column.nullable:
            new = new.filter(pc.is_valid(new.column(label)))
            dropped = uploaded - new.num_rows
    note = (
        f"; {dropped} row(s) without a label were left out (the dataset's label is not nullable)"
        if dropped
        else ""
    )
    if new.num_rows == 0:
        return _Built(None, None, 0, f"no labelled samples were uploaded{note}")
    result = add_version(
        ws,
        dataset,
        pa.concat_tables([base, new]),
        label=parent.label,
        key=parent.key,
        sensor=parent.sensor or None,
        source={
            "collection": f"collection:{collection_id}",
            "devices": devices,
            "rows": new.num_rows,
            "reason": why,
        },
        parent=parent.uri,
        transformation={
            "kind": "collection",
            "collection": collection_id,
            "rows_added": new.num_rows,
            "rows_without_label_dropped": dropped,
            "devices": devices,
        },
    )
    return _Built(
        result.version.version,
        parent.uri,
        new.num_rows,
        f"{new.num_rows} row(s) from {devices} device(s) added to {result.version.uri}{note}",
    )


def _finish(
    ws: Workspace, collection_id: str, built: _Built, actor: str, at: int
) -> CollectionInfo:
    with ws.db.write() as s:
        store = CollectionStore(s)
        row = store.get(collection_id, for_update=True)
        if row.state != "closed":
            row.state, row.state_reason = "closed", built.reason
            row.version, row.parent, row.rows = built.version, built.parent, built.rows
            row.closed_at, row.closed_by = at, actor
        return collection_info(store, row)


def _fail(ws: Workspace, collection_id: str, reason: str) -> None:
    with ws.db.write() as s:
        row = CollectionStore(s).get(collection_id, for_update=True)
        if row.state != "closed":
            row.state, row.state_reason = "failed", reason[:4000]


def close_collection(
    ws: Workspace, collection_id: str, *, actor: str | None = None, now: int | None = None
) -> CollectionInfo:
    """Turn the collection's uploads into a new version of its dataset (child of the latest
    version, source ``collection:<id>``); idempotent: a closed collection is returned as it
    is. A collection whose rows the dataset rejects is left ``failed`` (with the reason) and
    the error is raised; nothing else is written."""
    done = _begin(ws, collection_id)
    if done is not None:
        return done
    with ws.db.read() as s:
        dataset = CollectionStore(s).get(collection_id).dataset
    try:
        built = _build(ws, collection_id, dataset)
    except EdgeloopError as exc:
        _fail(ws, collection_id, f"the close failed: {exc.message}")
        raise
    return _finish(
        ws, collection_id, built, actor or ws.principal.name, now if now is not None else now_ms()
    )


def close_due_collections(
    ws: Workspace, *, now: int | None = None, actor: str = "reconciler"
) -> list[CollectionInfo]:
    """Close every collection whose chosen devices all finished, whose deadline passed, or
    whose close was interrupted; what it closed. A failing close is logged and left
    ``failed`` (it is not retried automatically). The server's reconciler runs this."""
    at = now if now is not None else now_ms()
    due: list[str] = []
    with ws.db.read() as s:
        store = CollectionStore(s)
        for collection_id in store.ids_in_states(("open", "closing")):
            row = store.get(collection_id)
            chosen, finished = store.counts(collection_id)
            if row.state == "closing" or at >= row.deadline or finished >= chosen:
                due.append(collection_id)
    closed: list[CollectionInfo] = []
    for collection_id in due:
        try:
            closed.append(close_collection(ws, collection_id, actor=actor, now=at))
        except EdgeloopError as exc:
            log.warning("collection %s could not be closed: %s", collection_id, exc.message)
    return closed
