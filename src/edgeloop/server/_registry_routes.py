"""Routes for registered models, versions, files and aliases."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from edgeloop import registry
from edgeloop.pages import Page
from edgeloop.registry import AliasChange, ModelVersion, RegisteredModel
from edgeloop.server._deps import as_role
from edgeloop.server._schemas import AliasIn, ModelIn, VersionIn
from edgeloop.server._tracking_routes import blob_response
from edgeloop.tracking import ArtifactEntry
from edgeloop.workspace import Workspace

router = APIRouter(tags=["registry"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


@router.post("/models", status_code=201)
def create_model(body: ModelIn, ws: Workspace = editor) -> RegisteredModel:
    return registry.create_model(ws, body.name, body.description)


@router.get("/models")
def list_models(
    cursor: str | None = None, limit: int = 100, ws: Workspace = viewer
) -> Page[RegisteredModel]:
    return registry.list_models(ws, cursor, limit)


@router.get("/models/{name}")
def get_model(name: str, ws: Workspace = viewer) -> RegisteredModel:
    return registry.get_model(ws, name)


@router.post("/models/{name}/versions", status_code=201)
def create_version(name: str, body: VersionIn, ws: Workspace = editor) -> ModelVersion:
    return registry.create_model_version(
        ws,
        name,
        run_id=body.run_id,
        path=body.path,
        description=body.description,
        tags=body.tags,
    )


@router.get("/models/{name}/versions")
def list_versions(name: str, ws: Workspace = viewer) -> list[ModelVersion]:
    return registry.list_model_versions(ws, name)


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: str, ws: Workspace = viewer) -> ModelVersion:
    return registry.get_model_version(ws, name, version)


@router.get("/models/{name}/versions/{version}/files")
def list_files(name: str, version: str, ws: Workspace = viewer) -> list[ArtifactEntry]:
    return registry.model_version_files(ws, name, version)


@router.get("/models/{name}/versions/{version}/files/{path:path}")
def get_file(name: str, version: str, path: str, ws: Workspace = viewer) -> StreamingResponse:
    return blob_response(ws, registry.model_version_file(ws, name, version, path))


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasIn, ws: Workspace = editor) -> AliasChange:
    return registry.set_alias(ws, name, alias, body.version, body.reason)


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, reason: str = "", ws: Workspace = editor) -> AliasChange:
    return registry.delete_alias(ws, name, alias, reason)


@router.get("/models/{name}/alias-history")
def alias_history(name: str, alias: str | None = None, ws: Workspace = viewer) -> list[AliasChange]:
    return registry.alias_history(ws, name, alias)


@router.get("/resolve")
def resolve(uri: str, ws: Workspace = viewer) -> ModelVersion:
    return registry.resolve_model_uri(ws, uri)
