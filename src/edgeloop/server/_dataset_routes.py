"""Routes for datasets, versions, schemas, labels, splits and windows."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from edgeloop import datasets
from edgeloop.datasets import (
    AddResult,
    DatasetDiff,
    DatasetInfo,
    DatasetVersionInfo,
    LabelChangeInfo,
    SplitInfo,
)
from edgeloop.errors import ValidationFailed
from edgeloop.pages import Page
from edgeloop.server._deps import as_role
from edgeloop.workspace import Workspace

router = APIRouter(tags=["datasets"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteIn(_Body):
    note: str = ""


class PolicyIn(_Body):
    policy: str


class DiffIn(_Body):
    a: str
    b: str
    key: str | None = None


class RelabelIn(_Body):
    changes: dict[str, str]
    reason: str


class SplitIn(_Body):
    name: str
    kind: str = "split"
    spec: dict[str, Any] = Field(default_factory=dict)


class WindowIn(_Body):
    length_ms: float
    stride_ms: float
    into: str | None = None
    pad: str = "drop"


def _ref(name: str, version: str) -> str:
    return f"datasets:/{name}@{version}"


def _meta(meta: str) -> dict[str, Any]:
    if not meta:
        return {}
    try:
        value = json.loads(meta)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"meta must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise ValidationFailed("meta must be a JSON object with sensor and source")
    return value


@router.post("/datasets/{name}/versions")
async def add_version(
    name: str,
    request: Request,
    response: Response,
    label: str | None = None,
    key: str | None = None,
    policy: str | None = None,
    meta: str = "",
    ws: Workspace = editor,
) -> AddResult:
    """Add Parquet bytes (the request body) as the next version of the dataset."""
    extra = _meta(meta)
    data = await request.body()
    result: AddResult = await run_in_threadpool(
        lambda: datasets.add_version(
            ws,
            name,
            data,
            label=label,
            key=key,
            policy=policy,
            sensor=extra.get("sensor"),
            source=extra.get("source"),
        )
    )
    response.status_code = 201 if result.created else 200
    return result


@router.get("/datasets")
def list_datasets(
    cursor: str | None = None, limit: int = 100, ws: Workspace = viewer
) -> Page[DatasetInfo]:
    return datasets.list_datasets(ws, cursor, limit)


@router.post("/datasets/diff")
def diff(body: DiffIn, ws: Workspace = viewer) -> DatasetDiff:
    return datasets.diff_versions(ws, body.a, body.b, body.key)


@router.get("/datasets/{name}")
def get_dataset(name: str, ws: Workspace = viewer) -> DatasetInfo:
    return datasets.get_dataset(ws, name)


@router.get("/datasets/{name}/versions")
def list_versions(name: str, ws: Workspace = viewer) -> list[DatasetVersionInfo]:
    return datasets.list_versions(ws, name)


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: str, ws: Workspace = viewer) -> DatasetVersionInfo:
    return datasets.get_version(ws, _ref(name, version))


@router.get("/datasets/{name}/versions/{version}/data")
def download(
    name: str, version: str, allow_quarantined: bool = False, ws: Workspace = viewer
) -> Response:
    info = datasets.get_version(ws, _ref(name, version))
    datasets.check_loadable(info, allow_quarantined=allow_quarantined)
    return Response(
        ws.artifacts.get_bytes(info.digest),
        media_type="application/vnd.apache.parquet",
        headers={"ETag": f'"{info.digest}"'},
    )


@router.get("/datasets/{name}/versions/{version}/profile")
def profile(name: str, version: str, ws: Workspace = viewer) -> dict[str, Any]:
    return datasets.get_profile(ws, _ref(name, version)).to_dict()


@router.post("/datasets/{name}/versions/{version}/accept")
def accept(name: str, version: str, body: NoteIn, ws: Workspace = editor) -> DatasetVersionInfo:
    return datasets.accept_version(ws, _ref(name, version), body.note)


@router.get("/datasets/{name}/schema")
def get_schema(name: str, ws: Workspace = viewer) -> Response:
    return Response(datasets.get_schema(ws, name), media_type="application/yaml")


@router.put("/datasets/{name}/schema")
async def set_schema(name: str, request: Request, ws: Workspace = editor) -> Response:
    text = (await request.body()).decode("utf-8", errors="replace")
    await run_in_threadpool(datasets.set_schema, ws, name, text)
    return Response(datasets.get_schema(ws, name), media_type="application/yaml")


@router.put("/datasets/{name}/policy")
def set_policy(name: str, body: PolicyIn, ws: Workspace = editor) -> DatasetInfo:
    return datasets.set_policy(ws, name, body.policy)


@router.post("/datasets/{name}/versions/{version}/relabel", status_code=201)
def relabel(name: str, version: str, body: RelabelIn, ws: Workspace = editor) -> DatasetVersionInfo:
    return datasets.relabel(ws, _ref(name, version), body.changes, body.reason)


@router.get("/datasets/{name}/label-history")
def label_history(name: str, sample: str, ws: Workspace = viewer) -> list[LabelChangeInfo]:
    return datasets.label_history(ws, name, sample)


@router.post("/datasets/{name}/versions/{version}/splits", status_code=201)
def create_split(name: str, version: str, body: SplitIn, ws: Workspace = editor) -> SplitInfo:
    return datasets.create_split(ws, _ref(name, version), body.name, body.spec, kind=body.kind)


@router.get("/datasets/{name}/versions/{version}/splits")
def list_splits(name: str, version: str, ws: Workspace = viewer) -> list[SplitInfo]:
    return datasets.list_splits(ws, _ref(name, version))


@router.get("/datasets/{name}/versions/{version}/splits/{split}")
def get_split(name: str, version: str, split: str, ws: Workspace = viewer) -> Response:
    """The split's description in the ``X-Edgeloop-Split`` header, its assignment (NumPy
    ``.npy``, one entry per row) as the body."""
    info, assignment = datasets.get_split(ws, _ref(name, version), split)
    buffer = io.BytesIO()
    np.save(buffer, assignment, allow_pickle=False)
    return Response(
        buffer.getvalue(),
        media_type="application/octet-stream",
        headers={"X-Edgeloop-Split": info.model_dump_json()},
    )


@router.post("/datasets/{name}/versions/{version}/windows")
def window(
    name: str, version: str, body: WindowIn, response: Response, ws: Workspace = editor
) -> AddResult:
    result = datasets.window(
        ws,
        _ref(name, version),
        length_ms=body.length_ms,
        stride_ms=body.stride_ms,
        into=body.into,
        pad=body.pad,
    )
    response.status_code = 201 if result.created else 200
    return result
