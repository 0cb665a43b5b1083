"""Export a trained model for the edge: int8 (or quantized trees), C, ONNX, footprints, manifest.

:func:`build_edge_export` is pure: it quantizes with a calibration split, checks the float
versus int8 accuracy on the test split against a bound, generates the C library (with the
feature block when the device computes features from raw windows) and the ONNX files, measures
the footprint on every requested target, and writes the manifest (the file list with SHA-256,
formats, input signature, preprocessing, labels, metrics, footprints and self-test vectors)
and the monitoring reference ``monitoring/reference.json`` (the calibration features and the
exported model's class probabilities on them: devices bin their monitoring windows on its
edges). :func:`attach_edge_export` stores it on a registered model version: the files under
``edge/`` and ``monitoring/``, and the footprints, one per target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgeloop.edge._cexport import export_c
from edgeloop.edge._ctrees import export_trees_c
from edgeloop.edge._footprint import Footprint, measure_c, measure_onnx
from edgeloop.edge._onnx import export_onnx_float, export_onnx_int8
from edgeloop.edge._quantize import check_accuracy_drop, compare, quantize
from edgeloop.edge._service import set_footprints
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.edge.targets import Target, get_target, load_catalog
from edgeloop.edge.trees import QuantizedTrees, quantize_trees
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference, build_reference
from edgeloop.monitoring.window import probabilities
from edgeloop.registry import attach_files
from edgeloop.tracking import ArtifactEntry
from edgeloop.train import FeaturePipeline
from edgeloop.workspace import Workspace

__all__ = [
    "DEFAULT_TARGETS",
    "MANIFEST",
    "EdgeExport",
    "attach_edge_export",
    "build_edge_export",
    "monitoring_reference",
]

MANIFEST = "edge/manifest.json"
MANIFEST_FORMAT = "edgeloop-edge/1"
DEFAULT_TARGETS = ("nano33ble", "cortex-m4f", "cortex-m0plus", "rpi4")
_TREE_KINDS = ("Forest", "Trees", "Tree", "Boosting")


@dataclass(frozen=True)
class EdgeExport:
    """What :func:`build_edge_export` made: ``files`` (paths under ``edge/``, the manifest
    included, and the monitoring reference ``monitoring/reference.json``), the ``manifest``,
    the float-vs-int8 ``accuracy`` report and ``footprints``."""

    kind: Literal["int8", "trees"]
    files: dict[str, bytes]
    manifest: dict[str, Any]
    accuracy: dict[str, Any]
    footprints: list[Footprint] = field(default_factory=list)

    def with_identity(self, name: str, version: int) -> EdgeExport:
        """The same export with the model's name and version written into the manifest."""
        manifest = {**self.manifest, "name": name, "version": version}
        files = {**self.files, MANIFEST: _manifest_bytes(manifest)}
        return EdgeExport(self.kind, files, manifest, self.accuracy, list(self.footprints))


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _is_trees(model: object) -> bool:
    estimator = model
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        estimator = steps[-1][1]
    return any(kind in type(estimator).__name__ for kind in _TREE_KINDS)


def _as_array(name: str, value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim < 2 or array.shape[0] < 1:
        raise ValidationFailed(f"{name} must hold at least one sample, got shape {array.shape}")
    return array


def _targets(targets: Sequence[str], catalog: Mapping[str, Target] | None) -> list[Target]:
    if not targets:
        raise ValidationFailed("name at least one target (edgeloop targets list)")
    known = catalog if catalog is not None else load_catalog()
    return [get_target(t, known) for t in dict.fromkeys(targets)]


def build_edge_export(
    model: Any,
    *,
    X_calib: npt.ArrayLike,
    X_test: npt.ArrayLike,
    y_test: npt.ArrayLike,
    targets: Sequence[str] = DEFAULT_TARGETS,
    features: FeaturePipeline | Mapping[str, Any] | None = None,
    window: tuple[int, int] | None = None,
    max_drop_points: float = 1.0,
    self_tests: int = 4,
    arduino: bool = False,
    catalog: Mapping[str, Target] | None = None,
) -> EdgeExport:
    """Quantize ``model`` (an MLP, logistic regression, 1-D CNN or tree ensemble, optionally
    behind a StandardScaler), check the accuracy drop, export C and ONNX and measure
    ``targets``. ``features`` (a FeaturePipeline or its ``to_dict()``) and ``window``
    ``(n_samples, n_axes)`` compile the feature block into the C library, so a device feeds
    raw windows; the model's inputs are then that pipeline's features."""
    x_calib, x_test = _as_array("X_calib", X_calib), _as_array("X_test", X_test)
    pipeline = FeaturePipeline.from_dict(features) if isinstance(features, Mapping) else features
    if pipeline is not None and window is None:
        raise ValidationFailed("a feature pipeline needs the raw window (n_samples, n_axes)")
    boards = _targets(targets, catalog)
    files: dict[str, bytes] = {}
    qmodel: QuantizedModel | QuantizedTrees
    if _is_trees(model):
        kind: Literal["int8", "trees"] = "trees"
        qmodel = quantize_trees(model, x_calib)
        accuracy = compare(model, qmodel, x_test, y_test)
        check_accuracy_drop(accuracy, max_drop_points)
        files["edge/trees/model.npz"] = qmodel.to_bytes()
        c_files = export_trees_c(qmodel)
        operations: dict[str, int] = dict(qmodel.operations())
        arena, feature_bytes = qmodel.arena_bytes(), 0
        onnx_float: bytes | None = None
        if pipeline is not None:
            raise ValidationFailed(
                "tree exports take feature vectors: compute features on the device with the "
                "C feature block of a network export, or drop the feature pipeline"
            )
    else:
        kind = "int8"
        qmodel = quantize(model, x_calib)
        accuracy = compare(model, qmodel, x_test, y_test)
        check_accuracy_drop(accuracy, max_drop_points)
        files["edge/int8/model.npz"] = qmodel.to_bytes()
        export = export_c(qmodel, pipeline, window=window)
        c_files, operations = export.files, dict(export.operations)
        arena, feature_bytes = export.arena_bytes, export.feature_buffer_bytes
        if arduino:
            library = export_c(qmodel, pipeline, window=window, layout="arduino")
            files.update({f"edge/arduino/{k}": v for k, v in library.files.items()})
        onnx_float = export_onnx_float(model, input_shape=qmodel.input_shape)
        files["edge/onnx/model.onnx"] = onnx_float
        files["edge/onnx/model.int8.onnx"] = export_onnx_int8(qmodel)
    files.update({f"edge/c/{k}": v for k, v in c_files.items()})
    footprints: list[Footprint] = []
    skipped: dict[str, str] = {}
    for board in boards:
        if board.deploy == "c":
            footprints.append(
                measure_c(
                    c_files,
                    board,
                    operations=operations,
                    arena_bytes=int(arena),
                    feature_buffer_bytes=int(feature_bytes),
                )
            )
        elif onnx_float is not None:
            shape = list(qmodel.input_shape) if isinstance(qmodel, QuantizedModel) else []
            footprints.append(measure_onnx(onnx_float, board, input_shape=shape))
        else:
            skipped[board.id] = "tree ensembles are exported to C only"
    files[REFERENCE_PATH] = monitoring_reference(qmodel, x_calib, pipeline).to_json()
    manifest = _manifest(
        kind, qmodel, files, accuracy, footprints, pipeline, window, x_test, self_tests
    )
    if skipped:
        manifest["skipped_targets"] = skipped
    files[MANIFEST] = _manifest_bytes(manifest)
    return EdgeExport(kind, files, manifest, dict(accuracy), footprints)


def monitoring_reference(
    qmodel: QuantizedModel | QuantizedTrees,
    x: npt.NDArray[np.float64],
    pipeline: FeaturePipeline | None = None,
) -> Reference:
    """The monitoring reference of an exported model: its calibration features (the model's
    inputs, after the feature block; one feature per axis for a model fed windows) and the
    class probabilities the exported model gives them, made from its scores the way the
    device makes them (``monitoring/reference.json``)."""
    shape = tuple(qmodel.input_shape)
    if len(shape) > 1:  # windows (length, axes): flattened or not, one feature per axis
        x = x.reshape(x.shape[0], *shape)
        names = list(pipeline.axes) if pipeline is not None else []
        names = names if len(names) == shape[-1] else [f"axis{i}" for i in range(shape[-1])]
    else:
        names = pipeline.feature_names() if pipeline is not None else []
        names = names if len(names) == x.shape[1] else [f"f{i}" for i in range(x.shape[1])]
    sample = x.astype(np.float32)
    scores_kind: Literal["logits", "probabilities"] = "logits"
    if isinstance(qmodel, QuantizedTrees) and qmodel.kind in ("forest", "tree"):
        scores_kind = "probabilities"
    proba = probabilities(qmodel.scores(sample), scores_kind)
    labels = [str(label) for label in qmodel.labels]
    return build_reference(x, names, labels=labels, proba=proba, scores=scores_kind)


def _self_tests(
    qmodel: QuantizedModel | QuantizedTrees, x: npt.NDArray[np.float64], count: int
) -> list[dict[str, Any]]:
    """Inputs (feature vectors) with the reference executor's exact outputs."""
    sample = x[: max(0, count)].astype(np.float32)
    if isinstance(qmodel, QuantizedModel):
        outputs = qmodel.run_int8(qmodel.quantize_input(sample)).astype(int).tolist()
    else:
        outputs = qmodel.int_scores(sample).astype(int).tolist()
    classes = qmodel.predict(sample)
    return [
        {"input": row.tolist(), "expected": out, "class": label}
        for row, out, label in zip(sample, outputs, classes, strict=True)
    ]


def _manifest(
    kind: str,
    qmodel: QuantizedModel | QuantizedTrees,
    files: Mapping[str, bytes],
    accuracy: Mapping[str, Any],
    footprints: Sequence[Footprint],
    pipeline: FeaturePipeline | None,
    window: tuple[int, int] | None,
    x_test: npt.NDArray[np.float64],
    self_tests: int,
) -> dict[str, Any]:
    n_features = int(x_test.shape[1]) if x_test.ndim == 2 else list(x_test.shape[1:])
    formats = ["c", "onnx", "int8"] if kind == "int8" else ["c", "trees"]
    return {
        "format": MANIFEST_FORMAT,
        "name": "",
        "version": 0,
        "kind": kind,
        "formats": formats,
        "input": {
            "features": n_features,
            "dtype": "float32",
            "feature_names": pipeline.feature_names() if pipeline is not None else [],
            "window": list(window) if window is not None else None,
            "axes": list(pipeline.axes) if pipeline is not None else [],
        },
        "preprocessing": pipeline.to_dict() if pipeline is not None else None,
        "labels": list(qmodel.labels),
        "files": {
            path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        },
        "metrics": {
            "float_accuracy": accuracy["float_accuracy"],
            "int8_accuracy": accuracy["int8_accuracy"],
            "drop_points": accuracy["drop_points"],
            "agreement": accuracy["agreement"],
            "test_samples": accuracy["n"],
        },
        "footprints": {fp.target: fp.to_dict() for fp in footprints},
        "self_test": _self_tests(qmodel, x_test, self_tests),
    }


def attach_edge_export(
    ws: Workspace, name: str, version: int, export: EdgeExport
) -> list[ArtifactEntry]:
    """Store ``export`` on model version ``name``/``version``: its files under ``edge/``
    (with the version in the manifest) and its footprints."""
    named = export.with_identity(name, version)
    entries = attach_files(ws, name, version, named.files)
    if named.footprints:
        set_footprints(ws, name, version, named.footprints)
    return entries
