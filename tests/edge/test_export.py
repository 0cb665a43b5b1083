"""Edge export: quantize, check the drop, C + ONNX + footprints + manifest, stored on a version."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop import registry, tracking
from edgeloop.edge._export import MANIFEST, attach_edge_export, build_edge_export
from edgeloop.edge._quantize import QuantizationGateFailed
from edgeloop.edge._service import get_footprints
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.edge.trees import QuantizedTrees
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.registry import save_sklearn
from edgeloop.train import FeaturePipeline, FlattenBlock
from edgeloop.workspace import Workspace


@pytest.fixture(scope="module")
def digits() -> tuple[Any, ...]:
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return tuple(train_test_split(x, data.target, test_size=0.3, random_state=0))


@pytest.fixture(scope="module")
def mlp(digits: tuple[Any, ...]) -> Any:
    x_train, _, y_train, _ = digits
    model = Pipeline(
        [("scale", StandardScaler()), ("mlp", MLPClassifier((16,), max_iter=50, random_state=0))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 50 iterations are plenty here
        return model.fit(x_train, y_train)


@pytest.fixture(scope="module")
def network_export(mlp: Any, digits: tuple[Any, ...]) -> Any:
    x_train, x_test, _, y_test = digits
    return build_edge_export(
        mlp, X_calib=x_train, X_test=x_test, y_test=y_test, targets=["nano33ble", "rpi4"]
    )


def test_a_network_export_has_every_format_and_a_manifest_that_vouches_for_them(
    network_export: Any, digits: tuple[Any, ...]
) -> None:
    files, manifest = network_export.files, network_export.manifest
    assert network_export.kind == "int8"
    assert {
        "edge/int8/model.npz",
        "edge/c/model.c",
        "edge/c/model.h",
        "edge/onnx/model.onnx",
        "edge/onnx/model.int8.onnx",
        MANIFEST,
    } <= set(files)
    assert json.loads(files[MANIFEST]) == manifest
    assert MANIFEST not in manifest["files"]  # a manifest does not list itself
    for path, entry in manifest["files"].items():
        assert entry == {
            "sha256": hashlib.sha256(files[path]).hexdigest(),
            "size": len(files[path]),
        }
    assert manifest["formats"] == ["c", "onnx", "int8"]
    assert manifest["labels"] == [str(c) for c in range(10)]
    assert manifest["metrics"]["drop_points"] <= 1.0
    assert manifest["metrics"]["test_samples"] == len(digits[3])
    assert set(manifest["footprints"]) == {"nano33ble", "rpi4"}
    assert [fp.target for fp in network_export.footprints] == ["nano33ble", "rpi4"]
    nano = network_export.footprints[0]
    assert nano.method == "arm-none-eabi-gcc" and nano.flash_bytes > 1000 and nano.fits
    # Self-test vectors are what the stored int8 model computes, to the bit.
    qmodel = QuantizedModel.from_bytes(files["edge/int8/model.npz"])
    assert len(manifest["self_test"]) == 4
    for case in manifest["self_test"]:
        x = np.asarray([case["input"]], dtype=np.float32)
        assert qmodel.run_int8(qmodel.quantize_input(x))[0].tolist() == case["expected"]
        assert qmodel.predict(x) == [case["class"]]


def test_tree_ensembles_export_to_c_and_skip_onnx_targets(digits: tuple[Any, ...]) -> None:
    x_train, x_test, y_train, y_test = digits
    forest = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0)
    forest.fit(x_train, y_train)
    export = build_edge_export(
        forest, X_calib=x_train, X_test=x_test, y_test=y_test, targets=["cortex-m4f", "server"]
    )
    assert export.kind == "trees"
    assert "edge/trees/model.npz" in export.files
    assert not any(path.startswith("edge/onnx/") for path in export.files)
    assert [fp.target for fp in export.footprints] == ["cortex-m4f"]
    assert export.manifest["skipped_targets"] == {"server": "tree ensembles are exported to C only"}
    trees = QuantizedTrees.from_bytes(export.files["edge/trees/model.npz"])
    case = export.manifest["self_test"][0]
    assert trees.predict(np.asarray([case["input"]], dtype=np.float32)) == [case["class"]]


def test_bad_requests_are_refused_before_any_work(mlp: Any, digits: tuple[Any, ...]) -> None:
    x_train, x_test, _, y_test = digits
    with pytest.raises(QuantizationGateFailed, match="exceeds the bound"):
        build_edge_export(
            mlp, X_calib=x_train[:3], X_test=x_test, y_test=y_test, max_drop_points=-5.0
        )
    with pytest.raises(NotFound, match="nope"):
        build_edge_export(mlp, X_calib=x_train, X_test=x_test, y_test=y_test, targets=["nope"])
    with pytest.raises(ValidationFailed, match="at least one target"):
        build_edge_export(mlp, X_calib=x_train, X_test=x_test, y_test=y_test, targets=[])
    with pytest.raises(ValidationFailed, match="raw window"):
        build_edge_export(
            mlp,
            X_calib=x_train,
            X_test=x_test,
            y_test=y_test,
            features=FeaturePipeline(blocks=(FlattenBlock(),), axes=("x",)),
        )
    with pytest.raises(ValidationFailed, match="at least one sample"):
        build_edge_export(mlp, X_calib=x_train[:0], X_test=x_test, y_test=y_test)


def test_an_export_is_stored_on_its_model_version(
    workspace: Workspace, mlp: Any, network_export: Any, digits: tuple[Any, ...]
) -> None:
    run = tracking.create_run(workspace, "edge")
    for rel, data in save_sklearn(mlp, digits[0][:5]).items():
        tracking.put_artifact(workspace, run.id, f"model/{rel}", io.BytesIO(data))
    version = registry.create_model_version(workspace, "digits-edge", run_id=run.id)
    attach_edge_export(workspace, "digits-edge", version.version, network_export)
    stored = registry.model_version_file(workspace, "digits-edge", version.version, MANIFEST)
    manifest = json.loads(workspace.artifacts.get_bytes(stored.digest))
    assert (manifest["name"], manifest["version"]) == ("digits-edge", version.version)
    assert manifest["files"] == network_export.manifest["files"]
    records = get_footprints(workspace, "digits-edge", version.version)
    assert [r.footprint.target for r in records] == ["nano33ble", "rpi4"]
    # Exporting the same thing again is harmless; the version's files never change.
    attach_edge_export(workspace, "digits-edge", version.version, network_export)
