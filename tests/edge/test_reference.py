"""The edge export writes the model version's monitoring reference: the calibration
features and the exported model's class probabilities on them; the server reads it back."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from edgeloop import registry, tracking
from edgeloop.edge import attach_edge_export, build_edge_export, load_reference
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.errors import NotFound
from edgeloop.monitoring import Reference, probabilities
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.workspace import Workspace

X, Y = load_iris(return_X_y=True)
X = X.astype(np.float32)


def test_a_network_export_carries_its_reference(make_workspace) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((16,), max_iter=2000, random_state=0).fit(X, Y)
    export = build_edge_export(
        model, X_calib=X, X_test=X, y_test=Y, targets=["rpi4"], max_drop_points=5.0
    )
    reference = Reference.from_json(export.files[REFERENCE_PATH])
    assert REFERENCE_PATH in export.manifest["files"]
    assert reference.rows == len(X) and reference.feature_names == ["f0", "f1", "f2", "f3"]
    assert reference.labels == ["0", "1", "2"] and reference.scores == "logits"
    qmodel = QuantizedModel.from_bytes(export.files["edge/int8/model.npz"])
    proba = probabilities(qmodel.scores(X), "logits")
    assert reference.prediction is not None
    assert (
        reference.prediction.counts.tolist()
        == np.bincount(proba.argmax(axis=1), minlength=3).tolist()
    )
    assert reference.features["f2"].summary.min == pytest.approx(float(X[:, 2].min()))

    ws: Workspace = make_workspace()
    run = tracking.create_run(ws, "edge")
    tracking.put_artifact(ws, run.id, "model/model.bin", io.BytesIO(b"m"))
    version = registry.create_model_version(ws, "iris", run_id=run.id).version
    with pytest.raises(NotFound, match="no reference profile"):
        load_reference(ws, "iris", version)
    attach_edge_export(ws, "iris", version, export)
    assert load_reference(ws, "iris", version) == reference


def test_a_forest_reference_uses_its_probabilities() -> None:
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, Y)
    export = build_edge_export(forest, X_calib=X, X_test=X, y_test=Y, targets=["nano33ble"])
    reference = Reference.from_json(export.files[REFERENCE_PATH])
    assert reference.scores == "probabilities"
    assert reference.prediction is not None and reference.prediction.count == len(X)
    assert 0.5 < reference.prediction.mean_confidence <= 1.0
