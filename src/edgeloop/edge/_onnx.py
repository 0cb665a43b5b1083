"""ONNX export, built with :mod:`onnx.helper`: float classifiers, and the int8 model as QDQ.

Both exports give one input ``input`` (float32, ``[N, *input_shape]``, the batch size free)
and one output ``scores`` (float32, ``[N, units]``), opset :data:`OPSET` with IR version
:data:`IR_VERSION` (onnxruntime 1.17 or later), pass ``onnx.checker.check_model``
with ``full_check`` and carry metadata props ``producer`` (``edgeloop``), ``labels`` (a
JSON list, in score order), ``source`` and ``outputs``.

:func:`export_onnx_float` writes a fitted scikit-learn ``MLPClassifier`` (hidden activation
relu, identity, tanh or logistic), ``LogisticRegression`` (binary or multiclass), either in a
``Pipeline`` after a ``StandardScaler``, or an :class:`~edgeloop.edge._cnn.Conv1DClassifier`
(read by duck typing: ``conv_weights_[filters, kernel, channels]``, ``conv_bias_``,
``dense_weights_`` ``[n_out, n_in]`` and ``dense_biases_``, ``mean_``, ``std_``,
``pool_size``). ``scores`` are ``predict_proba``, in float32 arithmetic where scikit-learn
uses float64: within 1e-5 of it (about 1e-6 on the digits test set).

:func:`export_onnx_int8` writes a :class:`~edgeloop.edge.runtime.QuantizedModel` as a QDQ
graph: the float input is standardised (``Sub``, ``Mul``) and quantized
(``QuantizeLinear``); every dense or conv layer dequantizes its int8 weights per output
channel (``DequantizeLinear`` on axis 0) and its int32 bias with scale ``s_in * s_w``, runs
the float ``Gemm`` or ``Conv`` (1-D, NCW: ``Transpose`` nodes move between the runtime's
channels-last layout and ONNX's channels-first), an optional ``Relu``, then
``QuantizeLinear``/``DequantizeLinear`` with the layer's output parameters; max pooling
and flatten work on dequantized values. ``scores`` has the meaning of
:meth:`QuantizedModel.scores` (one unit: a binary logit).

Tolerance of the int8 export: onnxruntime does not run the TFLite integer pipeline of
:mod:`edgeloop.edge.runtime`, so it is not bit-exact with ``qmodel.scores``. Its
``QuantizeLinear`` divides by the scale and rounds half to even, where the runtime
multiplies by the float32 reciprocal and rounds half up; each layer's requantization is
float arithmetic (dequantized weights and float32 accumulation, or onnxruntime's fused
QLinear kernels with a float multiplier), where the runtime uses gemmlowp's fixed-point
multiplier and rounding. These differ only where the exact value lies within float
rounding of a rounding boundary; such a value lands one step away and can move the next
layers' values (measured: 92-99% of the values exact, the rest one step off, a handful
two). The tests hold it to: ``|onnx - qmodel.scores| <= 1`` output quantization step on
>= 99% of the values, and the same predicted class on >= 99% of the samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeloop._version import __version__
from edgeloop.edge.runtime import (
    Conv1D,
    Dense,
    Flatten,
    MaxPool1D,
    QuantizedModel,
    QuantParams,
)
from edgeloop.errors import ValidationFailed

__all__ = ["IR_VERSION", "OPSET", "export_onnx_float", "export_onnx_int8"]

OPSET = 20
"""The ONNX opset of both exports. Not 21+: from opset 21 onnxruntime's graph optimizer
(QDQ propagation through Transpose with its int8-to-uint8 rewrite, up to at least 1.31)
builds a QuantizeLinear whose ``output_dtype`` contradicts its zero point, and refuses the
conv graph at session creation."""
IR_VERSION = helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])
"""The IR version of both exports: the lowest that carries :data:`OPSET` (9)."""
_HIDDEN = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": None}
_SUPPORTED = (
    "a fitted sklearn MLPClassifier or LogisticRegression, either in a Pipeline after a "
    "StandardScaler, or edgeloop's Conv1DClassifier"
)

F64 = npt.NDArray[np.float64]


class _Graph:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: dict[str, int] = {}

    def name(self, base: str) -> str:
        count = self._used.get(base, 0)
        self._used[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def const(self, base: str, value: npt.ArrayLike, dtype: npt.DTypeLike = np.float32) -> str:
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], base: str = "", **attrs: Any) -> str:
        out = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def finish(
        self,
        last: str,
        input_shape: Sequence[int],
        units: int,
        props: dict[str, str],
        doc: str,
    ) -> bytes:
        self.nodes.append(helper.make_node("Identity", [last], ["scores"], name="scores"))
        graph = helper.make_graph(
            self.nodes,
            "edgeloop",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *input_shape])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", units])],
            initializer=self.initializers,
            doc_string=doc,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="edgeloop",
            producer_version=__version__,
            ir_version=IR_VERSION,
        )
        helper.set_model_props(model, {"producer": "edgeloop", **props})
        onnx.checker.check_model(model, full_check=True)
        data: bytes = model.SerializeToString()
        return data


def _invalid(message: str, field: str = "model") -> ValidationFailed:
    return ValidationFailed(message, details={"field": field})


def _is(obj: object, name: str) -> bool:
    return any(c.__name__ == name for c in type(obj).__mro__)


def _props(labels: Sequence[Any], source: str, outputs: str, **extra: str) -> dict[str, str]:
    return {
        "labels": json.dumps([str(label) for label in labels]),
        "source": source,
        "outputs": outputs,
        **extra,
    }


# ---- float models -----------------------------------------------------------------------------


def _dense_chain(g: _Graph, x: str, layers: Sequence[tuple[F64, F64]], hidden: str | None) -> str:
    """Gemm layers (weights ``[n_out, n_in]``), ``hidden`` after all but the last."""
    for i, (weights, bias) in enumerate(layers):
        w = g.const(f"dense{i}_weights", weights)
        b = g.const(f"dense{i}_bias", bias)
        x = g.op("Gemm", [x, w, b], f"dense{i}", transB=1)
        if hidden is not None and i < len(layers) - 1:
            x = g.op(hidden, [x], f"dense{i}_{hidden.lower()}")
    return x


def _probabilities(g: _Graph, logits: str, binary_logit: bool) -> str:
    """Softmax over classes, or ``[1 - p, p]`` with ``p = sigmoid(logit)`` for one unit."""
    if not binary_logit:
        return g.op("Softmax", [logits], "softmax", axis=1)
    p = g.op("Sigmoid", [logits], "sigmoid")
    q = g.op("Sub", [g.const("one", np.ones((1, 1))), p], "one_minus")
    return g.op("Concat", [q, p], "proba", axis=1)


def _standardise(g: _Graph, x: str, scaler: Any | None, n_features: int) -> str:
    if scaler is None:
        return x
    if not hasattr(scaler, "n_features_in_"):
        raise _invalid("the StandardScaler is not fitted: fit the Pipeline first")
    if int(scaler.n_features_in_) != n_features:
        raise _invalid(
            f"the StandardScaler has {scaler.n_features_in_} features but the classifier "
            f"expects {n_features}"
        )
    if getattr(scaler, "mean_", None) is not None:
        x = g.op("Sub", [x, g.const("scaler_mean", scaler.mean_)], "centred")
    if getattr(scaler, "scale_", None) is not None:
        x = g.op("Div", [x, g.const("scaler_scale", scaler.scale_)], "standardised")
    return x


def _mlp(g: _Graph, model: Any, scaler: Any | None) -> tuple[str, int]:
    if model.activation not in _HIDDEN:
        raise _invalid(
            f"MLPClassifier activation {model.activation!r} has no ONNX export: the "
            f"supported activations are {', '.join(_HIDDEN)}",
            "activation",
        )
    binary = model.out_activation_ == "logistic"
    if model.out_activation_ not in ("softmax", "logistic") or (
        binary and len(model.classes_) != 2
    ):
        raise _invalid("only single-label MLPClassifiers (binary or multiclass) are exported")
    n_features = int(model.coefs_[0].shape[0])
    x = _standardise(g, "input", scaler, n_features)
    layers = [
        (np.asarray(w, dtype=np.float64).T, np.asarray(b, dtype=np.float64))
        for w, b in zip(model.coefs_, model.intercepts_, strict=True)
    ]
    logits = _dense_chain(g, x, layers, _HIDDEN[model.activation])
    return _probabilities(g, logits, binary), n_features


def _logistic(g: _Graph, model: Any, scaler: Any | None) -> tuple[str, int]:
    weights = np.asarray(model.coef_, dtype=np.float64)
    bias = np.broadcast_to(
        np.asarray(model.intercept_, dtype=np.float64).reshape(-1), (weights.shape[0],)
    )
    n_features = int(weights.shape[1])
    x = _standardise(g, "input", scaler, n_features)
    logits = _dense_chain(g, x, [(weights, bias)], None)
    return _probabilities(g, logits, len(model.classes_) == 2), n_features


def _cnn(g: _Graph, model: Any) -> str:
    """standardise -> NCW -> Conv + Relu -> MaxPool -> NWC flatten -> Gemm chain -> Softmax."""
    z = g.op("Sub", ["input", g.const("mean", model.mean_)], "centred")
    z = g.op("Div", [z, g.const("std", model.std_)], "standardised")
    z = g.op("Transpose", [z], "to_ncw", perm=[0, 2, 1])
    weights = np.asarray(model.conv_weights_, dtype=np.float64).transpose(0, 2, 1)
    kernel, pool = int(weights.shape[2]), int(model.pool_size)
    w = g.const("conv_weights", weights)
    b = g.const("conv_bias", model.conv_bias_)
    z = g.op("Conv", [z, w, b], "conv", kernel_shape=[kernel], strides=[1])
    z = g.op("Relu", [z], "conv_relu")
    z = g.op("MaxPool", [z], "maxpool", kernel_shape=[pool], strides=[pool])
    z = g.op("Transpose", [z], "to_nwc", perm=[0, 2, 1])
    z = g.op("Flatten", [z], "flatten", axis=1)
    layers = list(zip(model.dense_weights_, model.dense_biases_, strict=True))
    logits = _dense_chain(g, z, layers, "Relu")
    return _probabilities(g, logits, False)


def _unwrap(model: object) -> tuple[Any, Any | None, str]:
    if not _is(model, "Pipeline"):
        return model, None, ""
    steps = [s for _, s in getattr(model, "steps", []) if s is not None and s != "passthrough"]
    if len(steps) == 1:
        return steps[0], None, ""
    if len(steps) == 2 and _is(steps[0], "StandardScaler"):
        return steps[1], steps[0], "standard_scaler+"
    names = ", ".join(type(s).__name__ for s in steps)
    raise _invalid(f"cannot export a Pipeline of {names}: expected {_SUPPORTED}")


def _check_shape(given: Sequence[int], expected: tuple[int, ...]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in given)
    except (TypeError, ValueError) as exc:
        raise _invalid(
            f"input_shape must be a tuple of ints, got {given!r}", "input_shape"
        ) from exc
    if shape != expected:
        raise _invalid(f"input_shape {shape} does not match the model's {expected}", "input_shape")
    return shape


def export_onnx_float(model: object, *, input_shape: Sequence[int]) -> bytes:
    """The float ONNX model of a fitted classifier; ``scores`` are its ``predict_proba``.

    ``input_shape`` is one sample's shape, ``(n_features,)`` or ``(length, channels)`` for
    a Conv1DClassifier, and must match the model. Raises :class:`ValidationFailed` for an
    unsupported or unfitted model or a wrong shape.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = [0, 0, 1, 1]
    >>> data = export_onnx_float(LogisticRegression().fit(X, y), input_shape=(1,))
    >>> onnx.load_from_string(data).graph.output[0].name
    'scores'
    """
    g = _Graph()
    cnn: Any = model
    if _is(cnn, "Conv1DClassifier") or hasattr(cnn, "conv_weights_"):
        if not (hasattr(cnn, "conv_weights_") and hasattr(cnn, "classes_")):
            raise _invalid(f"the {type(model).__name__} is not fitted: fit it before exporting")
        shape = _check_shape(input_shape, tuple(int(d) for d in cnn.input_shape_))
        last, source = _cnn(g, cnn), "conv1d_classifier"
        estimator: Any = cnn
    else:
        estimator, scaler, prefix = _unwrap(model)
        if _is(estimator, "MLPClassifier"):
            if not hasattr(estimator, "coefs_"):
                raise _invalid("the MLPClassifier is not fitted: fit it before exporting")
            last, n_features = _mlp(g, estimator, scaler)
            source = prefix + "mlp_classifier"
        elif _is(estimator, "LogisticRegression"):
            if not hasattr(estimator, "coef_"):
                raise _invalid("the LogisticRegression is not fitted: fit it before exporting")
            last, n_features = _logistic(g, estimator, scaler)
            source = prefix + "logistic_regression"
        else:
            raise _invalid(f"cannot export a {type(estimator).__name__}: expected {_SUPPORTED}")
        shape = _check_shape(input_shape, (n_features,))
    labels = list(estimator.classes_)
    return g.finish(
        last,
        shape,
        len(labels),
        _props(labels, source, "probabilities (predict_proba), float32"),
        f"edgeloop float export of a {source}",
    )


# ---- the int8 model as QDQ ----------------------------------------------------------------


def _qdq(g: _Graph, x: str, params: QuantParams, base: str) -> str:
    """QuantizeLinear then DequantizeLinear: ``x`` rounded to the int8 grid of ``params``."""
    scale = g.const(f"{base}_scale", np.float32(params.scale))
    zero_point = g.const(f"{base}_zero_point", np.int8(params.zero_point), np.int8)
    q = g.op("QuantizeLinear", [x, scale, zero_point], f"{base}_q")
    return g.op("DequantizeLinear", [q, scale, zero_point], f"{base}_dq")


def _weights(
    g: _Graph, layer: Dense | Conv1D, input_scale: float, base: str, weights: npt.NDArray[np.int8]
) -> tuple[str, str]:
    """Per-channel dequantized weights (axis 0) and the int32 bias at scale ``s_in * s_w``."""
    channels = weights.shape[0]
    w_scale = g.const(f"{base}_weight_scale", layer.weight_scales)
    w_zero = g.const(f"{base}_weight_zero_point", np.zeros(channels), np.int8)
    w_q = g.const(f"{base}_weights_int8", weights, np.int8)
    w = g.op("DequantizeLinear", [w_q, w_scale, w_zero], f"{base}_weights", axis=0)
    bias_scale = input_scale * layer.weight_scales.astype(np.float64)
    b_scale = g.const(f"{base}_bias_scale", bias_scale)
    b_zero = g.const(f"{base}_bias_zero_point", np.zeros(channels), np.int32)
    b_q = g.const(f"{base}_bias_int32", layer.bias, np.int32)
    b = g.op("DequantizeLinear", [b_q, b_scale, b_zero], f"{base}_bias", axis=0)
    return w, b


def export_onnx_int8(qmodel: QuantizedModel) -> bytes:
    """``qmodel`` as an ONNX QDQ graph (see the module docstring for its layout and the
    tolerance against :meth:`QuantizedModel.scores`)."""
    g = _Graph()
    z = g.op("Sub", ["input", g.const("input_mean", qmodel.mean)], "centred")
    z = g.op("Mul", [z, g.const("input_inv_std", qmodel.inv_std)], "standardised")
    x = _qdq(g, z, qmodel.input, "input")
    params = qmodel.input
    channels_first = False
    for i, layer in enumerate(qmodel.layers):
        base = f"layer{i}_{layer.kind}"
        wants_ncw = isinstance(layer, Conv1D | MaxPool1D)
        if wants_ncw != channels_first:
            x = g.op("Transpose", [x], f"{base}_transpose", perm=[0, 2, 1])
            channels_first = wants_ncw
        if isinstance(layer, Dense):
            w, b = _weights(g, layer, params.scale, base, layer.weights)
            x = g.op("Gemm", [x, w, b], f"{base}_gemm", transB=1)
        elif isinstance(layer, Conv1D):
            w, b = _weights(g, layer, params.scale, base, layer.weights.transpose(0, 2, 1))
            kernel = int(layer.weights.shape[1])
            attrs = {"kernel_shape": [kernel], "strides": [layer.stride]}
            x = g.op("Conv", [x, w, b], f"{base}_conv", **attrs)
        elif isinstance(layer, MaxPool1D):
            x = g.op("MaxPool", [x], base, kernel_shape=[layer.size], strides=[layer.stride])
            x = _qdq(g, x, params, base)
            continue
        elif isinstance(layer, Flatten):
            x = g.op("Flatten", [x], base, axis=1)
            continue
        if layer.relu:
            x = g.op("Relu", [x], f"{base}_relu")
        params = layer.output
        x = _qdq(g, x, params, base)
    if channels_first:  # unreachable for a valid QuantizedModel: its output is a vector
        x = g.op("Transpose", [x], "output_transpose", perm=[0, 2, 1])
    units = qmodel.shapes()[-1][0]
    extra = {
        "scheme": str(qmodel.meta.get("scheme", "")),
        "int8_output": json.dumps(
            {"scale": qmodel.output.scale, "zero_point": qmodel.output.zero_point}
        ),
    }
    return g.finish(
        x,
        qmodel.input_shape,
        units,
        _props(
            qmodel.labels,
            str(qmodel.meta.get("source", "quantized_model")),
            "dequantized int8 scores (QuantizedModel.scores); one unit is a binary logit",
            **extra,
        ),
        "edgeloop int8 model as QuantizeLinear/DequantizeLinear around float ops",
    )
