"""Releases: a model version for one target, as a bundle signed with the fleet key.

The bundle is built from the version's edge export (``edge/manifest.json`` and its files):
targets deployed with ONNX (Linux boards) get runtime ``int8`` with ``model.int8.npz`` (the
agent's numpy executor) plus ``model.onnx`` when the export has one, or runtime ``trees``
with ``model.trees.npz`` for tree ensembles, both with the version's monitoring reference
``monitoring/reference.json`` when it has one; microcontroller targets (``deploy: c``) get
runtime ``c`` with the generated C sources under ``c/``. The export's self-test vectors, its
labels, input signature, preprocessing and metrics, and the target's footprint go into the
manifest, and so under the signature.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from edgeloop.edge.targets import get_target
from edgeloop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edgeloop.fleet._entities import ReleaseInfo
from edgeloop.fleet._signing import signing_key
from edgeloop.fleet.bundle import (
    MANIFEST,
    Bundle,
    BundleRejected,
    Runtime,
    build_bundle,
    run_self_test,
    verify_bundle,
)
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.pages import Page, check_limit, decode_cursor, next_cursor
from edgeloop.registry import get_model_version, model_version_files, parse_version
from edgeloop.store import Release, ReleaseStore, RolloutStore
from edgeloop.tracking import ArtifactEntry
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "EDGE_MANIFEST",
    "MAX_BUNDLE_BYTES",
    "bundle_file",
    "bundle_manifest",
    "bundle_signature",
    "create_release",
    "get_release",
    "list_releases",
    "load_bundle",
    "release_info",
]

EDGE_MANIFEST = "edge/manifest.json"
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""The largest bundle (manifest and files) devices are told to accept."""
_ONNX_FILES = {  # runtime -> (edge export path, bundle path)
    "int8": ("edge/int8/model.npz", "model.int8.npz"),
    "trees": ("edge/trees/model.npz", "model.trees.npz"),
}
_ONNX_MODEL = ("edge/onnx/model.onnx", "model.onnx")
_C_PREFIX = "edge/c/"


def release_info(row: Release) -> ReleaseInfo:
    return ReleaseInfo(
        id=row.id,
        model=row.model,
        model_version=row.model_version,
        target=row.target,
        runtime=row.runtime,
        manifest_digest=row.manifest_digest,
        size=row.size,
        files={p: {"sha256": f["digest"], "size": f["size"]} for p, f in row.files.items()},
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _edge_manifest(ws: Workspace, uri: str, entries: Mapping[str, ArtifactEntry]) -> dict[str, Any]:
    entry = entries.get(EDGE_MANIFEST)
    if entry is None:
        raise ValidationFailed(
            f"{uri} has no edge export ({EDGE_MANIFEST}): run the edge export step first "
            "(the pipeline's edge export, or edgeloop.edge.attach_edge_export), then create "
            "the release",
            details={"model": uri, "missing": EDGE_MANIFEST},
        )
    try:
        manifest = json.loads(ws.artifacts.get_bytes(entry.digest))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{uri}'s {EDGE_MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ValidationFailed(f"{uri}'s {EDGE_MANIFEST} does not hold a JSON object")
    return manifest


def _pick_files(
    uri: str, deploy: str, target: str, entries: Mapping[str, ArtifactEntry]
) -> tuple[Runtime, dict[str, ArtifactEntry]]:
    """The runtime and the bundle's files (bundle path -> stored entry) for ``deploy``."""
    if deploy == "c":
        files = {
            path[len("edge/") :]: entry
            for path, entry in entries.items()
            if path.startswith(_C_PREFIX)
        }
        if not files:
            raise ValidationFailed(
                f"{uri}'s edge export has no C sources ({_C_PREFIX}*) for microcontroller "
                f"target {target!r}: export it again with a network or tree model",
                details={"model": uri, "target": target},
            )
        return "c", files
    for runtime, (source, name) in _ONNX_FILES.items():
        if source in entries:
            files = {name: entries[source]}
            if runtime == "int8" and _ONNX_MODEL[0] in entries:
                files[_ONNX_MODEL[1]] = entries[_ONNX_MODEL[0]]
            if REFERENCE_PATH in entries:  # the agent's monitoring windows are binned on it
                files[REFERENCE_PATH] = entries[REFERENCE_PATH]
            return runtime, files  # type: ignore[return-value]
    raise ValidationFailed(
        f"{uri}'s edge export has neither {_ONNX_FILES['int8'][0]} nor "
        f"{_ONNX_FILES['trees'][0]}: the agent on {target!r} needs one; export it again",
        details={"model": uri, "target": target},
    )


def create_release(
    ws: Workspace, model: str, version: int | str, target: str, *, now: int | None = None
) -> ReleaseInfo:
    """Build and sign the bundle of ``models:/model/version`` for ``target`` and store it.

    Raises ValidationFailed for a version without an edge export or a target it does not
    fit, NotFound for an unknown model, version or target, Conflict if the release exists.
    """
    number = parse_version(version)
    uri = f"models:/{model}/{number}"
    board = get_target(target)
    mv = get_model_version(ws, model, number)
    with ws.db.read() as s:
        existing = ReleaseStore(s).for_version(model, number, target)
    if existing is not None:
        raise Conflict(
            f"{uri} already has release {existing.id} for target {target!r}",
            details={"release": existing.id},
        )
    entries = {e.path: e for e in model_version_files(ws, model, number)}
    edge = _edge_manifest(ws, uri, entries)
    runtime, picked = _pick_files(uri, board.deploy, target, entries)
    footprint = (edge.get("footprints") or {}).get(target) or {}
    if isinstance(footprint, Mapping) and footprint.get("fits") is False:
        raise ValidationFailed(
            f"{uri} does not fit on {target!r} (see edgeloop models footprint {model}/{number}):"
            " release a smaller model for this target",
            details={"model": uri, "target": target, "footprint": dict(footprint)},
        )
    files = {path: ws.artifacts.get_bytes(entry.digest) for path, entry in picked.items()}
    at = now if now is not None else now_ms()
    release_id = f"rel_{secrets.token_hex(8)}"
    key = signing_key(ws)
    lineage = {
        "model_uri": uri,
        "source_run_id": mv.source_run_id,
        "edge_manifest_sha256": entries[EDGE_MANIFEST].digest,
        "registry": dict(mv.lineage),
    }
    try:
        bundle = build_bundle(
            release=release_id,
            name=model,
            model_version=int(edge.get("version") or number),
            target=target,
            runtime=runtime,
            files=files,
            signing_key=key,
            created_at=at,
            input=edge.get("input") or {},
            preprocessing=edge.get("preprocessing"),
            labels=[str(label) for label in edge.get("labels") or []],
            metrics=edge.get("metrics") or {},
            footprint=dict(footprint) if isinstance(footprint, Mapping) else {},
            lineage=lineage,
            self_test=list(edge.get("self_test") or []),
        )
        verify_bundle(bundle, key.public_key())
        if runtime in ("int8", "trees"):
            run_self_test(bundle.manifest_dict(), bundle.files)
    except BundleRejected as exc:
        raise ValidationFailed(
            f"the bundle of {uri} for {target!r} does not check out: {exc.message}",
            details={"model": uri, "target": target, **exc.details},
        ) from exc
    if bundle.size > MAX_BUNDLE_BYTES:
        raise ValidationFailed(
            f"the bundle of {uri} for {target!r} has {bundle.size} bytes, over the "
            f"{MAX_BUNDLE_BYTES} devices accept: release a smaller model",
            details={"model": uri, "target": target, "size": bundle.size},
        )
    manifest_blob = ws.artifacts.put_bytes(bundle.manifest)
    row = Release(
        id=release_id,
        model=model,
        model_version=number,
        target=target,
        runtime=runtime,
        manifest_digest=manifest_blob.digest,
        manifest_size=manifest_blob.size,
        signature=base64.b64encode(bundle.signature).decode("ascii"),
        files={p: {"digest": e.digest, "size": e.size} for p, e in sorted(picked.items())},
        size=bundle.size,
        created_at=at,
        created_by=ws.principal.name,
    )
    with ws.db.write() as s:
        ReleaseStore(s).add(row)
        return release_info(row)


def get_release(ws: Workspace, release_id: str) -> ReleaseInfo:
    with ws.db.read() as s:
        return release_info(ReleaseStore(s).get(release_id))


def list_releases(
    ws: Workspace, *, model: str | None = None, cursor: str | None = None, limit: int = 100
) -> Page[ReleaseInfo]:
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        rows = ReleaseStore(s).page(offset, limit + 1, model=model)
        items = [release_info(r) for r in rows[:limit]]
    return Page[ReleaseInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def _release_for(ws: Workspace, release_id: str, device_id: str | None) -> Release:
    """The release; for a device, only one that was assigned to it (else 403)."""
    with ws.db.read() as s:
        row = ReleaseStore(s).find(release_id)
        if device_id is not None and (
            row is None or not RolloutStore(s).can_fetch(device_id, release_id)
        ):
            raise PermissionDenied(
                f"release {release_id!r} is not assigned to device {device_id!r}",
                details={"release": release_id},
            )
        if row is None:
            raise NotFound(
                f"release {release_id!r} does not exist", details={"release": release_id}
            )
        return row


def bundle_manifest(ws: Workspace, release_id: str, *, device_id: str | None = None) -> bytes:
    """The manifest bytes exactly as signed."""
    row = _release_for(ws, release_id, device_id)
    return ws.artifacts.get_bytes(row.manifest_digest)


def bundle_signature(ws: Workspace, release_id: str, *, device_id: str | None = None) -> bytes:
    """The raw 64-byte Ed25519 signature of the manifest."""
    return base64.b64decode(_release_for(ws, release_id, device_id).signature)


def bundle_file(
    ws: Workspace, release_id: str, path: str, *, device_id: str | None = None
) -> ArtifactEntry:
    """The stored blob of one bundle file (read it with ``ws.artifacts``)."""
    row = _release_for(ws, release_id, device_id)
    entry = row.files.get(path)
    if entry is None or path == MANIFEST:
        raise NotFound(
            f"release {release_id} has no file {path!r}",
            details={"release": release_id, "path": path},
        )
    return ArtifactEntry(path=path, digest=entry["digest"], size=int(entry["size"]))


def load_bundle(ws: Workspace, release_id: str) -> Bundle:
    """The whole bundle (manifest, signature, files), e.g. to pack it as a tar."""
    row = _release_for(ws, release_id, None)
    return Bundle(
        manifest=ws.artifacts.get_bytes(row.manifest_digest),
        signature=base64.b64decode(row.signature),
        files={p: ws.artifacts.get_bytes(f["digest"]) for p, f in row.files.items()},
    )
