"""Releases on SQLite and PostgreSQL: a model version's edge export, signed for a target."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from edgeloop import registry, tracking
from edgeloop.edge import attach_edge_export, build_edge_export
from edgeloop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edgeloop.fleet import _releases
from edgeloop.fleet._keys import KEY_ENV, KEY_FILE
from edgeloop.fleet._signing import fleet_public_key
from edgeloop.fleet.bundle import (
    load_public_key,
    pack_tar,
    private_key_b64,
    run_self_test,
    unpack_tar,
    verify_bundle,
    verify_manifest,
)
from edgeloop.workspace import Workspace
from tests.fleet._fleet import T0, register_version


def _exported(ws: Workspace, model: Any, name: str) -> int:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    model.fit(x, y)
    run = tracking.create_run(ws, "fleet")
    tracking.put_artifact(ws, run.id, "model/m.bin", io.BytesIO(b"m"))
    version = registry.create_model_version(ws, name, run_id=run.id).version
    export = build_edge_export(
        model, X_calib=x[:40], X_test=x[40:], y_test=y[40:], targets=["rpi4"]
    )
    attach_edge_export(ws, name, version, export)
    return version


def _bundle(ws: Workspace, release_id: str) -> dict[str, Any]:
    bundle = _releases.load_bundle(ws, release_id)
    manifest = verify_bundle(bundle, load_public_key(fleet_public_key(ws)))
    if manifest["runtime"] != "c":
        run_self_test(manifest, bundle.files)
    return manifest


def test_a_linux_target_gets_the_int8_model_and_the_onnx_file(workspace: Workspace) -> None:
    version = _exported(workspace, MLPClassifier((8,), max_iter=2000, random_state=0), "mlp")
    release = _releases.create_release(workspace, "mlp", version, "rpi4", now=T0)
    assert release.id.startswith("rel_") and release.runtime == "int8"
    assert sorted(release.files) == ["model.int8.npz", "model.onnx", "monitoring/reference.json"]
    manifest = _bundle(workspace, release.id)
    assert manifest["release"] == release.id and manifest["model_version"] == version
    assert manifest["target"] == "rpi4" and manifest["created_at"] == T0
    assert manifest["footprint"]["target"] == "rpi4"
    assert len(manifest["self_test"]) == 4 and manifest["labels"] == ["0", "1"]
    assert manifest["lineage"]["model_uri"] == f"models:/mlp/{version}"
    raw = _releases.bundle_manifest(workspace, release.id)
    signature = _releases.bundle_signature(workspace, release.id)
    assert len(signature) == 64
    verify_manifest(raw, signature, load_public_key(fleet_public_key(workspace)))
    assert release.manifest_digest == hashlib.sha256(raw).hexdigest()
    assert _releases.get_release(workspace, release.id) == release
    assert [r.id for r in _releases.list_releases(workspace, model="mlp").items] == [release.id]


def test_tree_models_get_the_trees_runtime(workspace: Workspace) -> None:
    version = _exported(workspace, DecisionTreeClassifier(max_depth=3), "tree")
    release = _releases.create_release(workspace, "tree", version, "rpi4")
    assert (release.runtime, sorted(release.files)) == (
        "trees",
        ["model.trees.npz", "monitoring/reference.json"],
    )
    _bundle(workspace, release.id)


def test_microcontrollers_get_the_c_sources(workspace: Workspace) -> None:
    version = register_version(workspace)
    release = _releases.create_release(workspace, "pump", version, "nano33ble")
    assert (release.runtime, sorted(release.files)) == ("c", ["c/model.c", "c/model.h"])
    manifest = _bundle(workspace, release.id)
    assert manifest["self_test"] and manifest["footprint"]["target"] == "nano33ble"
    tar = pack_tar(_releases.load_bundle(workspace, release.id))
    assert unpack_tar(tar, max_bytes=1 << 20).manifest == _releases.bundle_manifest(
        workspace, release.id
    )


def test_what_cannot_be_released_says_why(workspace: Workspace) -> None:
    bare = register_version(workspace, edge=False)
    with pytest.raises(ValidationFailed, match=r"no edge export.*run the edge export step"):
        _releases.create_release(workspace, "pump", bare, "rpi4")
    version = register_version(workspace, seed=2)
    with pytest.raises(NotFound, match="no target 'toaster'"):
        _releases.create_release(workspace, "pump", version, "toaster")
    with pytest.raises(NotFound):
        _releases.create_release(workspace, "pump", 99, "rpi4")
    with pytest.raises(ValidationFailed, match="version"):
        _releases.create_release(workspace, "pump", "x", "rpi4")
    first = _releases.create_release(workspace, "pump", version, "rpi4")
    with pytest.raises(Conflict, match=first.id):
        _releases.create_release(workspace, "pump", version, "rpi4")
    too_big = register_version(workspace, seed=3, fits=False)
    with pytest.raises(ValidationFailed, match="does not fit"):
        _releases.create_release(workspace, "pump", too_big, "rpi4")
    with pytest.raises(NotFound, match="no file"):
        _releases.bundle_file(workspace, first.id, "nope.bin")
    with pytest.raises(PermissionDenied):  # not assigned to this device
        _releases.bundle_manifest(workspace, first.id, device_id="d1")


def test_the_signing_key_is_private_or_comes_from_the_environment(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = fleet_public_key(workspace)
    path = workspace.settings.home / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert fleet_public_key(workspace) == public  # the same key every time
    key = Ed25519PrivateKey.generate()
    monkeypatch.setenv(KEY_ENV, private_key_b64(key))
    assert fleet_public_key(workspace) != public
    version = register_version(workspace)
    release = _releases.create_release(workspace, "pump", version, "rpi4")
    verify_manifest(
        _releases.bundle_manifest(workspace, release.id),
        _releases.bundle_signature(workspace, release.id),
        key.public_key(),
    )
