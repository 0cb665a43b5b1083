"""The int8 model and its numpy reference executor (TFLite int8 arithmetic).

This module imports only numpy and the standard library: the device agent runs it.

Quantization scheme
-------------------
* Weights: per-output-channel symmetric int8 (zero point 0), ``w_real = scale[o] * w_q``.
* Activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``.
* Bias: int32, ``bias_q[o] = round(b[o] / (input_scale * weight_scale[o]))``.
* Requantization: ``acc * input_scale * weight_scale[o] / output_scale`` is applied with a
  32-bit fixed-point multiplier ``M`` (Q0.31) and a power-of-two ``shift`` (gemmlowp's
  ``MultiplyByQuantizedMultiplier``): ``q = zp_out + RDBPOT(SRDHM(acc << left, M), right)``
  where ``left = max(shift, 0)``, ``right = max(-shift, 0)``; ``acc << left`` saturates to
  int32; the result is clamped to [-128, 127], or to [zp_out, 127] after a ReLU.

The input window is standardised and quantized in float32 with exactly these operations, in
this order, so C code doing the same single-precision operations gets the same bytes::

    z = (x - mean) * inv_std             # float32, elementwise
    q = clip(floor(z * inv_scale + 0.5) + zero_point, -128, 127)   # NaN is refused

Layouts: a dense layer maps ``(n_in,) -> (n_out,)`` with weights ``[n_out, n_in]``; a 1-D
convolution maps ``(length, channels)`` (channels last) to ``(out_length, filters)`` with
weights ``[filters, kernel, channels]``, "valid" padding; max pooling works on the time axis;
flatten is a reshape of the channels-last buffer. The executor runs a batch: the first axis of
every array is the sample.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "INT8_MAX",
    "INT8_MIN",
    "Conv1D",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPool1D",
    "QuantParams",
    "QuantizedModel",
    "describe",
    "multiply_by_quantized_multiplier",
    "quantize_multiplier",
    "requant_params",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
]

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FORMAT = "edgeloop-int8/1"

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


# ---- fixed-point arithmetic (gemmlowp), vectorised, exact in int64 -------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` as ``(M, shift)`` with ``real ≈ M * 2**(shift - 31)``, M a positive int32."""
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"a requantization multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)  # real = mantissa * 2**shift, mantissa in [0.5, 1)
    m = round(mantissa * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:  # too small to represent: the product is always zero
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantization multiplier {real} is too large")
    return int(m), int(shift)


def saturating_rounding_doubling_high_mul(a: npt.ArrayLike, b: npt.ArrayLike) -> I64:
    """gemmlowp SRDHM on int32 values held in int64: ``round(a * b / 2**31)``, C semantics
    (division truncating toward zero after a ±2**30 nudge)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    t = ab + nudge
    res = np.where(t >= 0, t >> 31, -((-t) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), res)


def rounding_divide_by_pot(x: npt.ArrayLike, exponent: npt.ArrayLike) -> I64:
    """gemmlowp RoundingDivideByPOT: ``x / 2**exponent`` rounded half away from zero."""
    v: I64 = np.asarray(x, dtype=np.int64)
    e: I64 = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = v & mask
    threshold = (mask >> 1) + (v < 0).astype(np.int64)
    result: I64 = (v >> e) + (remainder > threshold).astype(np.int64)
    return result


def multiply_by_quantized_multiplier(
    acc: npt.ArrayLike, multiplier: npt.ArrayLike, shift: npt.ArrayLike
) -> I64:
    """``acc * M * 2**(shift - 31)`` rounded, as TFLite's ``MultiplyByQuantizedMultiplier``
    with the left shift saturating to int32."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = np.clip(np.asarray(acc, dtype=np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


# ---- the model --------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantParams:
    """``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"a quantization scale must be finite and > 0, got {self.scale}")
        if not INT8_MIN <= self.zero_point <= INT8_MAX:
            raise ValueError(f"an int8 zero point must be in [-128, 127], got {self.zero_point}")

    @classmethod
    def for_range(cls, low: float, high: float) -> QuantParams:
        """Asymmetric int8 parameters covering [low, high] (widened to include 0)."""
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        if high - low < 1e-12:
            high = low + 1e-6
        scale = (high - low) / 255.0
        zero_point = round(INT8_MIN - low / scale)
        return cls(float(np.float32(scale)), max(INT8_MIN, min(INT8_MAX, zero_point)))


def _requantize_layer(acc: I64, multiplier: I32, shift: I32, output: QuantParams, relu: bool) -> I8:
    q = multiply_by_quantized_multiplier(acc, multiplier, shift) + output.zero_point
    low = output.zero_point if relu else INT8_MIN
    return np.clip(q, low, INT8_MAX).astype(np.int8)


@dataclass(frozen=True)
class Dense:
    """Fully connected: ``(n_in,) -> (n_out,)``; ``weights[n_out, n_in]`` int8."""

    weights: I8
    bias: I32
    multiplier: I32
    shift: I32
    weight_scales: F32
    output: QuantParams
    relu: bool = False
    kind: Literal["dense"] = field(default="dense", init=False)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if shape != (self.weights.shape[1],):
            raise ValueError(f"dense layer expects ({self.weights.shape[1]},), got {shape}")
        return (int(self.weights.shape[0]),)

    def macs(self, shape: tuple[int, ...]) -> int:
        return int(self.weights.size)

    def run(self, q: I8, input_zero_point: int) -> I8:
        x = q.astype(np.int64) - input_zero_point  # (batch, n_in)
        acc = x @ self.weights.astype(np.int64).T + self.bias.astype(np.int64)
        return _requantize_layer(acc, self.multiplier, self.shift, self.output, self.relu)


@dataclass(frozen=True)
class Conv1D:
    """1-D convolution, "valid" padding: ``(length, channels) -> (out_length, filters)``;
    ``weights[filters, kernel, channels]`` int8."""

    weights: I8
    bias: I32
    multiplier: I32
    shift: I32
    weight_scales: F32
    output: QuantParams
    stride: int = 1
    relu: bool = True
    kind: Literal["conv1d"] = field(default="conv1d", init=False)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        filters, kernel, channels = self.weights.shape
        if len(shape) != 2 or shape[1] != channels or shape[0] < kernel:
            raise ValueError(f"conv1d expects (length >= {kernel}, {channels}), got {shape}")
        return ((shape[0] - kernel) // self.stride + 1, int(filters))

    def macs(self, shape: tuple[int, ...]) -> int:
        out_len, _ = self.output_shape(shape)
        return int(out_len * self.weights.size)

    def run(self, q: I8, input_zero_point: int) -> I8:
        filters, kernel, channels = self.weights.shape
        batch, length, _ = q.shape
        out_len = (length - kernel) // self.stride + 1
        x = q.astype(np.int64) - input_zero_point
        idx = np.arange(out_len)[:, None] * self.stride + np.arange(kernel)[None, :]
        patches = x[:, idx, :].reshape(batch, out_len, kernel * channels)
        w = self.weights.astype(np.int64).reshape(filters, kernel * channels)
        acc = patches @ w.T + self.bias.astype(np.int64)
        return _requantize_layer(acc, self.multiplier, self.shift, self.output, self.relu)


@dataclass(frozen=True)
class MaxPool1D:
    """Max pooling along time: ``(length, channels) -> ((length - size) // stride + 1, ch)``."""

    size: int
    stride: int
    kind: Literal["maxpool1d"] = field(default="maxpool1d", init=False)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 2 or shape[0] < self.size:
            raise ValueError(f"maxpool1d({self.size}) expects (length >= size, ch), got {shape}")
        return ((shape[0] - self.size) // self.stride + 1, shape[1])

    def macs(self, shape: tuple[int, ...]) -> int:
        return 0  # comparisons, not MACs: counted by QuantizedModel.operations

    def run(self, q: I8, input_zero_point: int) -> I8:
        length = q.shape[1]
        out_len = (length - self.size) // self.stride + 1
        idx = np.arange(out_len)[:, None] * self.stride + np.arange(self.size)[None, :]
        return np.asarray(q[:, idx, :].max(axis=2), dtype=np.int8)


@dataclass(frozen=True)
class Flatten:
    """Reshape of the channels-last buffer to a vector (no data movement in C)."""

    kind: Literal["flatten"] = field(default="flatten", init=False)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(shape)),)

    def macs(self, shape: tuple[int, ...]) -> int:
        return 0

    def run(self, q: I8, input_zero_point: int) -> I8:
        return q.reshape(q.shape[0], -1)


Layer = Dense | Conv1D | MaxPool1D | Flatten


@dataclass(frozen=True)
class QuantizedModel:
    """An int8 classifier: float input standardised and quantized, then int8 layers.

    ``labels`` name the output units. A single output unit is a binary classifier (a logit:
    class ``labels[1]`` when the dequantized score is > 0, ``labels[0]`` otherwise).
    """

    input_shape: tuple[int, ...]
    mean: F32
    inv_std: F32
    input: QuantParams
    layers: tuple[Layer, ...]
    labels: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = self.shapes()  # validates the chain
        if self.mean.dtype != np.float32 or self.inv_std.dtype != np.float32:
            raise ValueError("mean and inv_std must be float32 (the C code computes in float32)")
        for layer in self.layers:
            if isinstance(layer, Dense | Conv1D) and (
                layer.weights.dtype != np.int8
                or layer.bias.dtype != np.int32
                or layer.multiplier.dtype != np.int32
                or layer.shift.dtype != np.int32
            ):
                raise ValueError("weights must be int8; bias, multiplier and shift int32")
            if isinstance(layer, Dense | Conv1D) and not (
                layer.bias.shape
                == layer.multiplier.shape
                == layer.shift.shape
                == (layer.weights.shape[0],)
            ):
                raise ValueError("bias, multiplier and shift need one value per output channel")
            if (
                isinstance(layer, Dense | Conv1D)
                and layer.shift.size
                and not (int(layer.shift.min()) >= -31 and int(layer.shift.max()) <= 30)
            ):
                raise ValueError("requantization shifts must lie in [-31, 30]")
            if isinstance(layer, Conv1D | MaxPool1D) and (
                layer.stride < 1 or (isinstance(layer, MaxPool1D) and layer.size < 1)
            ):
                raise ValueError(f"{layer.kind}: stride and size must be >= 1")
        if self.mean.shape != tuple(self.input_shape) or self.inv_std.shape != self.mean.shape:
            raise ValueError("mean and inv_std must have the input shape")
        units = shapes[-1]
        if len(units) != 1 or (
            units[0] != len(self.labels) and not (units[0] == 1 and len(self.labels) == 2)
        ):
            raise ValueError(f"the output {units} does not match {len(self.labels)} labels")

    # shapes, sizes, costs ------------------------------------------------------------------

    def shapes(self) -> list[tuple[int, ...]]:
        """The input shape, then every layer's output shape."""
        shapes = [tuple(self.input_shape)]
        for layer in self.layers:
            shapes.append(layer.output_shape(shapes[-1]))
        return shapes

    @property
    def output(self) -> QuantParams:
        for layer in reversed(self.layers):
            if isinstance(layer, Dense | Conv1D):
                return layer.output
        return self.input

    def arena_bytes(self) -> int:
        """The static int8 arena: the largest input + output pair of consecutive buffers."""
        sizes = [int(np.prod(s)) for s in self.shapes()]
        return max(a + b for a, b in itertools.pairwise(sizes)) if len(sizes) > 1 else 0

    def weight_bytes(self) -> int:
        total = 0
        for layer in self.layers:
            if isinstance(layer, Dense | Conv1D):
                total += layer.weights.nbytes + 4 * (layer.bias.size * 3)  # bias, M, shift
        return total + 8 * int(np.prod(self.input_shape))  # mean, inv_std (float32)

    def operations(self) -> dict[str, int]:
        """Counted operations per inference, for latency estimates: ``mac`` (int8 multiply-
        accumulates), ``requant`` (fixed-point rescales, each with its clamp), ``compare``
        (max-pooling comparisons), ``quantize`` (float input values standardised and quantized)."""
        ops = {"mac": 0, "requant": 0, "compare": 0, "quantize": int(np.prod(self.input_shape))}
        shape = tuple(self.input_shape)
        for layer in self.layers:
            out = layer.output_shape(shape)
            if isinstance(layer, Dense | Conv1D):
                ops["mac"] += layer.macs(shape)
                ops["requant"] += int(np.prod(out))
            elif isinstance(layer, MaxPool1D):
                ops["compare"] += int(np.prod(out)) * layer.size
            shape = out
        return ops

    # execution --------------------------------------------------------------------------

    def quantize_input(self, x: npt.ArrayLike) -> I8:
        """Float samples ``(batch, *input_shape)`` to int8, exactly as the C code does it."""
        xf = np.asarray(x, dtype=np.float32)
        if xf.shape[1:] != tuple(self.input_shape):
            raise ValueError(f"expected samples of shape {self.input_shape}, got {xf.shape[1:]}")
        if np.isnan(xf).any():
            raise ValueError("the input contains NaN")
        with np.errstate(over="ignore", invalid="ignore"):  # ±inf saturates, as in C
            z = (xf - self.mean) * self.inv_std
            inv_scale = np.float32(1.0) / np.float32(self.input.scale)
            q = np.floor(z * inv_scale + np.float32(0.5)) + np.float32(self.input.zero_point)
        return np.asarray(np.clip(q, INT8_MIN, INT8_MAX), dtype=np.int8)

    def run_int8(self, q: npt.ArrayLike) -> I8:
        """Int8 input ``(batch, *input_shape)`` to int8 output scores ``(batch, units)``."""
        h = np.asarray(q, dtype=np.int8)
        zero_point = self.input.zero_point
        for layer in self.layers:
            h = layer.run(h, zero_point)
            if isinstance(layer, Dense | Conv1D):
                zero_point = layer.output.zero_point
        return h

    def scores(self, x: npt.ArrayLike) -> F32:
        """Dequantized output scores of float samples."""
        out = self.run_int8(self.quantize_input(x)).astype(np.float32)
        return (out - np.float32(self.output.zero_point)) * np.float32(self.output.scale)

    def predict_index(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        s = self.scores(x)
        if s.shape[1] == 1:
            return (s[:, 0] > 0).astype(np.int64)
        return np.asarray(np.argmax(s, axis=1), dtype=np.int64)

    def predict(self, x: npt.ArrayLike) -> list[str]:
        return [self.labels[i] for i in self.predict_index(x)]

    # serialisation: one .npz holding a JSON header and the arrays ----------------------------

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"mean": self.mean, "inv_std": self.inv_std}
        layers: list[dict[str, Any]] = []
        for i, layer in enumerate(self.layers):
            entry: dict[str, Any] = {"kind": layer.kind}
            if isinstance(layer, Dense | Conv1D):
                for name in ("weights", "bias", "multiplier", "shift", "weight_scales"):
                    arrays[f"{i}.{name}"] = getattr(layer, name)
                entry.update(output=[layer.output.scale, layer.output.zero_point], relu=layer.relu)
                if isinstance(layer, Conv1D):
                    entry["stride"] = layer.stride
            elif isinstance(layer, MaxPool1D):
                entry.update(size=layer.size, stride=layer.stride)
            layers.append(entry)
        header = {
            "format": FORMAT,
            "input_shape": list(self.input_shape),
            "input": [self.input.scale, self.input.zero_point],
            "labels": list(self.labels),
            "layers": layers,
            "meta": dict(self.meta),
        }
        arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantizedModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
        if header.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} model: format {header.get('format')!r}")
        layers: list[Layer] = []
        for i, entry in enumerate(header["layers"]):
            kind = entry["kind"]
            if kind in ("dense", "conv1d"):
                common: dict[str, Any] = {
                    "weights": arrays[f"{i}.weights"].astype(np.int8),
                    "bias": arrays[f"{i}.bias"].astype(np.int32),
                    "multiplier": arrays[f"{i}.multiplier"].astype(np.int32),
                    "shift": arrays[f"{i}.shift"].astype(np.int32),
                    "weight_scales": arrays[f"{i}.weight_scales"].astype(np.float32),
                    "output": QuantParams(float(entry["output"][0]), int(entry["output"][1])),
                    "relu": bool(entry["relu"]),
                }
                if kind == "dense":
                    layers.append(Dense(**common))
                else:
                    layers.append(Conv1D(stride=int(entry["stride"]), **common))
            elif kind == "maxpool1d":
                layers.append(MaxPool1D(int(entry["size"]), int(entry["stride"])))
            elif kind == "flatten":
                layers.append(Flatten())
            else:
                raise ValueError(f"unknown layer kind {kind!r}")
        return cls(
            input_shape=tuple(int(d) for d in header["input_shape"]),
            mean=arrays["mean"].astype(np.float32),
            inv_std=arrays["inv_std"].astype(np.float32),
            input=QuantParams(float(header["input"][0]), int(header["input"][1])),
            layers=tuple(layers),
            labels=tuple(str(label) for label in header["labels"]),
            meta=header.get("meta", {}),
        )


def requant_params(
    input_scale: float, weight_scales: Sequence[float] | F32, output_scale: float
) -> tuple[I32, I32]:
    """Per-channel ``(multiplier, shift)`` for ``input_scale * weight_scale / output_scale``."""
    pairs = [quantize_multiplier(input_scale * float(w) / output_scale) for w in weight_scales]
    return (
        np.array([m for m, _ in pairs], dtype=np.int32),
        np.array([s for _, s in pairs], dtype=np.int32),
    )


def describe(model: QuantizedModel) -> Mapping[str, Any]:
    """A JSON-able summary: shapes, operations, arena and weight sizes."""
    return {
        "input_shape": list(model.input_shape),
        "layers": [layer.kind for layer in model.layers],
        "shapes": [list(s) for s in model.shapes()],
        "operations": model.operations(),
        "arena_bytes": model.arena_bytes(),
        "weight_bytes": model.weight_bytes(),
        "labels": list(model.labels),
    }
