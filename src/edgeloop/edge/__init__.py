"""Edge: board targets, int8 quantization, C and ONNX export, footprint per board, and
constraint-aware tuning.

Names load on first use: a device that imports :mod:`edgeloop.edge.runtime` (the int8 model
and its numpy executor) or :mod:`edgeloop.edge.trees` pays for numpy only.

>>> from edgeloop import edge
>>> export = edge.build_edge_export(model, X_calib=x_train, X_test=x_test, y_test=y_test,
...                                 targets=["nano33ble", "rpi4"])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.edge._cexport import CExport, export_c
    from edgeloop.edge._cnn import Conv1DClassifier
    from edgeloop.edge._ctrees import export_trees_c
    from edgeloop.edge._export import (
        DEFAULT_TARGETS,
        EdgeExport,
        attach_edge_export,
        build_edge_export,
    )
    from edgeloop.edge._footprint import Footprint, footprint_table, measure_c, measure_onnx
    from edgeloop.edge._onnx import export_onnx_float, export_onnx_int8
    from edgeloop.edge._pareto import TunePoint, pareto_front
    from edgeloop.edge._quantize import (
        QuantizationGateFailed,
        check_accuracy_drop,
        compare,
        quantize,
    )
    from edgeloop.edge._reference import load_reference
    from edgeloop.edge._service import FootprintRecord, get_footprints, set_footprints
    from edgeloop.edge._tune import NoFeasiblePoint, TuneResult, tune
    from edgeloop.edge.runtime import QuantizedModel, QuantParams
    from edgeloop.edge.targets import Target, get_target, load_catalog
    from edgeloop.edge.trees import QuantizedTrees, quantize_trees

__all__ = [
    "DEFAULT_TARGETS",
    "CExport",
    "Conv1DClassifier",
    "EdgeExport",
    "Footprint",
    "FootprintRecord",
    "NoFeasiblePoint",
    "QuantParams",
    "QuantizationGateFailed",
    "QuantizedModel",
    "QuantizedTrees",
    "Target",
    "TunePoint",
    "TuneResult",
    "attach_edge_export",
    "build_edge_export",
    "check_accuracy_drop",
    "compare",
    "export_c",
    "export_onnx_float",
    "export_onnx_int8",
    "export_trees_c",
    "footprint_table",
    "get_footprints",
    "get_target",
    "load_catalog",
    "load_reference",
    "measure_c",
    "measure_onnx",
    "pareto_front",
    "quantize",
    "quantize_trees",
    "set_footprints",
    "tune",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._cexport": ("CExport", "export_c"),
        "._cnn": ("Conv1DClassifier",),
        "._ctrees": ("export_trees_c",),
        "._export": ("DEFAULT_TARGETS", "EdgeExport", "attach_edge_export", "build_edge_export"),
        "._footprint": ("Footprint", "footprint_table", "measure_c", "measure_onnx"),
        "._onnx": ("export_onnx_float", "export_onnx_int8"),
        "._quantize": ("QuantizationGateFailed", "check_accuracy_drop", "compare", "quantize"),
        "._reference": ("load_reference",),
        "._service": ("FootprintRecord", "get_footprints", "set_footprints"),
        "._pareto": ("TunePoint", "pareto_front"),
        "._tune": ("NoFeasiblePoint", "TuneResult", "tune"),
        ".runtime": ("QuantParams", "QuantizedModel"),
        ".targets": ("Target", "get_target", "load_catalog"),
        ".trees": ("QuantizedTrees", "quantize_trees"),
    },
)
