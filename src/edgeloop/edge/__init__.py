"""Edge: board targets, int8 quantization, C and ONNX export, footprint per board, and
constraint-aware tuning.

:mod:`edgeloop.edge.runtime` (the int8 model and its numpy executor) imports only numpy so a
device can run it; this package's ``__init__`` imports nothing else for the same reason.
"""
