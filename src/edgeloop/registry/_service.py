"""Model registry: models, numbered versions, aliases with their full history.

Each function is one transaction on the workspace's database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.pages import Page, check_limit, decode_cursor, next_cursor
from edgeloop.registry._entities import AliasChange, ModelVersion, RegisteredModel
from edgeloop.registry._formats import MODEL_META
from edgeloop.store import AliasEvent, ModelStore, RunStore
from edgeloop.store import Model as ModelRow
from edgeloop.store import ModelVersion as ModelVersionRow
from edgeloop.tracking import ArtifactEntry, check_artifact_path, check_name
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "alias_history",
    "create_model",
    "create_model_version",
    "delete_alias",
    "get_model",
    "get_model_version",
    "list_model_versions",
    "list_models",
    "model_version_file",
    "model_version_files",
    "parse_model_uri",
    "resolve_model_uri",
    "set_alias",
]

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")


def _check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest":
        raise ValidationFailed(
            f"alias {alias!r} is not allowed: use 1-128 letters, digits, '_' or '-', starting "
            "with a letter ('latest' is reserved)",
            details={"field": "alias"},
        )
    return alias


def _model(store: ModelStore, row: ModelRow) -> RegisteredModel:
    return RegisteredModel(
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        latest_version=store.latest_version(row.id),
        aliases=store.aliases(row.id),
    )


def _version(model: ModelRow, row: ModelVersionRow, aliases: dict[str, int]) -> ModelVersion:
    return ModelVersion(
        name=model.name,
        version=row.version,
        status=row.status,
        source_run_id=row.source_run_id,
        source_path=row.source_path,
        flavor=row.flavor,
        signature=dict(row.signature or {}),
        metrics=dict(row.metrics or {}),
        tags=dict(row.tags or {}),
        lineage=dict(row.lineage or {}),
        description=row.description,
        aliases=sorted(a for a, v in aliases.items() if v == row.version),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def create_model(ws: Workspace, name: str, description: str = "") -> RegisteredModel:
    check_name("model", name)
    with ws.db.write() as s:
        store = ModelStore(s)
        at = now_ms()
        row = store.add(
            name=name,
            description=description,
            created_at=at,
            updated_at=at,
            created_by=ws.principal.name,
        )
        return _model(store, row)


def get_model(ws: Workspace, name: str) -> RegisteredModel:
    with ws.db.read() as s:
        store = ModelStore(s)
        return _model(store, store.get(name))


def list_models(
    ws: Workspace, cursor: str | None = None, limit: int = 100
) -> Page[RegisteredModel]:
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        store = ModelStore(s)
        rows = store.page(offset, limit + 1)
        items = [_model(store, r) for r in rows[:limit]]
    return Page[RegisteredModel](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def create_model_version(
    ws: Workspace,
    name: str,
    *,
    run_id: str,
    path: str = "model",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Register the files under ``path`` of run ``run_id`` as the next version of ``name``.

    The model is created if it does not exist. Files are not copied: the version points at
    the same content-addressed blobs as the run.
    """
    check_name("model", name)
    check_artifact_path(path)
    with ws.db.write() as s:
        store, runs = ModelStore(s), RunStore(s)
        run = runs.get(run_id)
        entries = runs.artifacts(run_id, path)
        base = path.rstrip("/")
        files = [
            (a.path[len(base) + 1 :] or a.path.rsplit("/", 1)[-1], a.digest, a.size)
            for a in entries
        ]
        if not files:
            raise ValidationFailed(
                f"run {run_id} has no artifacts under {path!r}; log the model first "
                "(edgeloop.log_model) or name the right path",
                details={"run_id": run_id, "path": path},
            )
        meta = _read_meta(ws, files)
        at = now_ms()
        model = store.find(name, for_update=True)
        if model is None:
            try:
                model = store.add(
                    name=name,
                    description="",
                    created_at=at,
                    updated_at=at,
                    created_by=ws.principal.name,
                )
            except Conflict:  # created and committed concurrently: lock that row instead
                model = store.get(name, for_update=True)
        details = runs.details([run_id])[0]
        row = ModelVersionRow(
            model_id=model.id,
            version=store.next_version(model.id),
            status="ready",
            source_run_id=run_id,
            source_path=path,
            flavor=str(meta.get("flavor", "")),
            signature=dict(meta.get("signature") or {}),
            metrics=dict(details.metrics),
            tags=dict(tags or {}),
            lineage={
                "run_id": run_id,
                "experiment_id": run.experiment_id,
                "inputs": list(details.inputs),
                **(run.lineage or {}),
            },
            description=description,
            created_at=at,
            created_by=ws.principal.name,
        )
        store.add_version(row, files)
        model.updated_at = at
        return _version(model, row, store.aliases(model.id))


def _read_meta(ws: Workspace, files: list[tuple[str, str, int]]) -> dict[str, Any]:
    for rel, digest, _size in files:
        if rel == MODEL_META:
            try:
                meta = json.loads(ws.artifacts.get_bytes(digest))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValidationFailed(f"{MODEL_META} is not valid JSON") from exc
            return meta if isinstance(meta, dict) else {}
    return {}


def parse_version(text: str | int) -> int:
    """A version number from user input: an integer of 1 or more."""
    try:
        number = int(text)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"version {text!r} is not a number") from exc
    if number < 1:
        raise ValidationFailed(f"version must be 1 or more, got {number}")
    return number


def get_model_version(ws: Workspace, name: str, version: int | str) -> ModelVersion:
    number = parse_version(version)
    with ws.db.read() as s:
        store = ModelStore(s)
        model = store.get(name)
        return _version(model, store.version(model, number), store.aliases(model.id))


def list_model_versions(ws: Workspace, name: str) -> list[ModelVersion]:
    with ws.db.read() as s:
        store = ModelStore(s)
        model = store.get(name)
        aliases = store.aliases(model.id)
        return [_version(model, v, aliases) for v in store.versions(model.id)]


def model_version_files(ws: Workspace, name: str, version: int | str) -> list[ArtifactEntry]:
    number = parse_version(version)
    with ws.db.read() as s:
        store = ModelStore(s)
        mv = store.version(store.get(name), number)
        return [
            ArtifactEntry(path=f.path, digest=f.digest, size=f.size) for f in store.files(mv.id)
        ]


def attach_files(
    ws: Workspace, name: str, version: int | str, files: Mapping[str, bytes]
) -> list[ArtifactEntry]:
    """Add derived files (exports, bundles) to a version: new paths only, or the same bytes.

    The blobs are stored first; the rows are added in one transaction, so a failure leaves
    the version as it was (an unreferenced blob at most).
    """
    number = parse_version(version)
    for path in files:
        check_artifact_path(path)
    stored = [(path, ws.artifacts.put_bytes(data)) for path, data in sorted(files.items())]
    with ws.db.write() as s:
        store = ModelStore(s)
        mv = store.version(store.get(name), number)
        store.add_files(mv.id, [(path, info.digest, info.size) for path, info in stored])
    return [ArtifactEntry(path=path, digest=info.digest, size=info.size) for path, info in stored]


def model_version_file(ws: Workspace, name: str, version: int | str, path: str) -> ArtifactEntry:
    """The entry of one file of a version; read its bytes with ``ws.artifacts``."""
    for entry in model_version_files(ws, name, version):
        if entry.path == path:
            return entry
    raise NotFound(f"models:/{name}/{version} has no file {path!r}", details={"path": path})


def set_alias(
    ws: Workspace, name: str, alias: str, version: int | str, reason: str = ""
) -> AliasChange:
    """Point ``alias`` at ``version`` (creating or moving it); the move is kept in history."""
    _check_alias(alias)
    number = parse_version(version)
    with ws.db.write() as s:
        store = ModelStore(s)
        model = store.get(name, for_update=True)
        store.version(model, number)
        current = store.alias(model.id, alias)
        before = current.version if current else None
        at = now_ms()
        store.set_alias(model.id, alias, number, ws.principal.name, at)
        event = AliasEvent(
            model_id=model.id,
            alias=alias,
            from_version=before,
            to_version=number,
            actor=ws.principal.name,
            at=at,
            reason=reason,
        )
        store.record_alias_event(event)
        model.updated_at = at
        return _change(model, event)


def delete_alias(ws: Workspace, name: str, alias: str, reason: str = "") -> AliasChange:
    _check_alias(alias)
    with ws.db.write() as s:
        store = ModelStore(s)
        model = store.get(name, for_update=True)
        current = store.alias(model.id, alias)
        if current is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}", details={"alias": alias})
        at = now_ms()
        event = AliasEvent(
            model_id=model.id,
            alias=alias,
            from_version=current.version,
            to_version=None,
            actor=ws.principal.name,
            at=at,
            reason=reason,
        )
        store.delete_alias(model.id, alias)
        store.record_alias_event(event)
        model.updated_at = at
        return _change(model, event)


def _change(model: ModelRow, e: AliasEvent) -> AliasChange:
    return AliasChange(
        model=model.name,
        alias=e.alias,
        from_version=e.from_version,
        to_version=e.to_version,
        actor=e.actor,
        at=e.at,
        reason=e.reason,
    )


def alias_history(ws: Workspace, name: str, alias: str | None = None) -> list[AliasChange]:
    with ws.db.read() as s:
        store = ModelStore(s)
        model = store.get(name)
        return [_change(model, e) for e in store.alias_events(model.id, alias)]


def parse_model_uri(uri: str) -> tuple[str, str | None, int | None]:
    """``models:/name@alias`` → (name, alias, None); ``models:/name/3`` → (name, None, 3);
    ``models:/name/latest`` → (name, None, None)."""
    match = _URI.match(uri or "")
    if not match:
        raise ValidationFailed(
            f"model URI {uri!r} is not valid; use models:/NAME@ALIAS, models:/NAME/VERSION or "
            "models:/NAME/latest"
        )
    name, alias, version = match["name"], match["alias"], match["version"]
    if alias is not None:
        return name, alias, None
    if version == "latest":
        return name, None, None
    return name, None, parse_version(version)


def resolve_model_uri(ws: Workspace, uri: str) -> ModelVersion:
    name, alias, number = parse_model_uri(uri)
    with ws.db.read() as s:
        store = ModelStore(s)
        model = store.get(name)
        aliases = store.aliases(model.id)
        if alias is not None:
            if alias not in aliases:
                raise NotFound(
                    f"model {name!r} has no alias {alias!r}; it has: "
                    f"{', '.join(sorted(aliases)) or 'none'}",
                    details={"alias": alias},
                )
            number = aliases[alias]
        elif number is None:
            number = store.latest_version(model.id)
            if number is None:
                raise NotFound(f"model {name!r} has no versions yet")
        return _version(model, store.version(model, number), aliases)
