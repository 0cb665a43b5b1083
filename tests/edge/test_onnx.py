"""ONNX export: float graphs reproduce predict_proba, int8 QDQ graphs run in onnxruntime and
track the int8 reference within the stated tolerance.

Tolerance of the int8 export (see :mod:`edgeloop.edge._onnx`): onnxruntime requantizes in
float and rounds half to even where the runtime uses gemmlowp fixed point and rounds half
up, so it is not bit-exact. The ONNX scores are within one output quantization step of
``qmodel.scores`` on >= 99% of the values, and predict the same class on >= 99% of samples.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop.edge._cnn import Conv1DClassifier
from edgeloop.edge._onnx import IR_VERSION, OPSET, export_onnx_float, export_onnx_int8
from edgeloop.edge._quantize import quantize
from edgeloop.edge.runtime import (
    Conv1D,
    Dense,
    Flatten,
    Layer,
    MaxPool1D,
    QuantizedModel,
    QuantParams,
    requant_params,
)
from edgeloop.errors import ValidationFailed

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
OPTIMIZATIONS = {
    "optimized": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "plain": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


def run_onnx(data: bytes, x: npt.ArrayLike, level: str = "optimized") -> F32:
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMIZATIONS[level]
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (scores,) = session.run(["scores"], {"input": np.asarray(x, dtype=np.float32)})
    return np.asarray(scores)


@functools.cache
def digits() -> tuple[npt.NDArray[np.float64], ...]:
    X, y = load_digits(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


FLOAT_MODELS: dict[str, Callable[[], Any]] = {
    "mlp_relu": lambda: MLPClassifier((32,), max_iter=60, random_state=0),
    "mlp_tanh": lambda: MLPClassifier((24, 16), activation="tanh", max_iter=60, random_state=0),
    "mlp_logistic": lambda: MLPClassifier(
        (24,), activation="logistic", max_iter=60, random_state=0
    ),
    "mlp_identity": lambda: MLPClassifier(
        (16,), activation="identity", max_iter=60, random_state=0
    ),
    "logreg": lambda: LogisticRegression(max_iter=300),
    "scaler_mlp": lambda: make_pipeline(
        StandardScaler(), MLPClassifier((32,), max_iter=60, random_state=0)
    ),
    "scaler_logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
}


@pytest.mark.parametrize("name", list(FLOAT_MODELS))
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_float_export_matches_predict_proba(name: str, binary: bool) -> None:
    X_train, X_test, y_train, _ = digits()
    y = np.where(y_train >= 5, "high", "low") if binary else y_train
    model = FLOAT_MODELS[name]().fit(X_train, y)
    scores = run_onnx(export_onnx_float(model, input_shape=(64,)), X_test)
    proba = model.predict_proba(X_test)
    assert scores.shape == proba.shape
    np.testing.assert_allclose(scores, proba, rtol=0, atol=1e-5)
    assert np.mean(model.classes_[scores.argmax(axis=1)] == model.predict(X_test)) >= 0.999


def test_float_export_of_the_conv1d_classifier() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(1.0, 2.0, (160, 48, 3))
    index = (X[:, :, 0].mean(axis=1) > 1).astype(int) + (X[:, 5, 1] > 1)
    y = np.array(["calm", "left", "right"])[index]
    model = Conv1DClassifier(filters=4, kernel_size=5, pool_size=4, hidden=8, epochs=3).fit(X, y)
    data = export_onnx_float(model, input_shape=(48, 3))
    np.testing.assert_allclose(run_onnx(data, X), model.predict_proba(X), rtol=0, atol=1e-5)
    assert json.loads(_props(data)["labels"]) == ["calm", "left", "right"]


def _props(data: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


def test_float_export_is_a_checked_model_with_metadata() -> None:
    X_train, _, y_train, _ = digits()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X_train, y_train)
    data = export_onnx_float(model, input_shape=[64])
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == OPSET >= 17
    assert proto.ir_version == IR_VERSION <= onnx.IR_VERSION
    assert proto.producer_name == "edgeloop"
    props = _props(data)
    assert props["producer"] == "edgeloop"
    assert props["source"] == "standard_scaler+logistic_regression"
    assert json.loads(props["labels"]) == [str(c) for c in range(10)]
    (inp,) = proto.graph.input
    assert inp.name == "input"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 64]
    assert run_onnx(data, X_train[:1]).shape == (1, 10)  # any batch size


def test_float_export_refuses_what_it_cannot_write() -> None:
    X_train, _, y_train, _ = digits()
    forest = RandomForestClassifier(n_estimators=2).fit(X_train, y_train)
    with pytest.raises(ValidationFailed, match="cannot export a RandomForestClassifier"):
        export_onnx_float(forest, input_shape=(64,))
    logreg = LogisticRegression(max_iter=300).fit(X_train, y_train)
    with pytest.raises(ValidationFailed, match="input_shape") as info:
        export_onnx_float(logreg, input_shape=(8, 8))
    assert info.value.details["field"] == "input_shape"
    with pytest.raises(ValidationFailed, match="not fitted"):
        export_onnx_float(MLPClassifier(), input_shape=(64,))
    with pytest.raises(ValidationFailed, match="not fitted"):
        export_onnx_float(Conv1DClassifier(), input_shape=(32, 1))


# ---- int8 QDQ -----------------------------------------------------------------------------


def _layer(
    rng: np.random.Generator, kind: str, h: I8, params: QuantParams, *args: int
) -> tuple[Layer, I8]:
    """A random dense or conv layer (or a pool / flatten) whose output range is calibrated on
    ``h``, and its int8 output on ``h``."""
    if kind == "pool":
        pool = MaxPool1D(args[0], args[0])
        return pool, pool.run(h, params.zero_point)
    if kind == "flatten":
        return Flatten(), Flatten().run(h, params.zero_point)
    n_out, relu = args[0], bool(args[-1])
    if kind == "dense":
        shape: tuple[int, ...] = (n_out, h.shape[1])
        patches = h.astype(np.int64)[:, None, :] - params.zero_point
    else:
        kernel, stride = args[1], args[2]
        shape = (n_out, kernel, h.shape[2])
        out_len = (h.shape[1] - kernel) // stride + 1
        idx = np.arange(out_len)[:, None] * stride + np.arange(kernel)[None, :]
        patches = (h.astype(np.int64) - params.zero_point)[:, idx, :].reshape(len(h), out_len, -1)
    weights = rng.integers(-127, 128, shape).astype(np.int8)
    scales = rng.uniform(0.002, 0.02, n_out).astype(np.float32)
    bias = rng.integers(-3000, 3000, n_out).astype(np.int32)
    acc = patches @ weights.reshape(n_out, -1).astype(np.int64).T + bias
    if kind == "dense":
        acc = acc[:, 0, :]
    real = acc * params.scale * scales.astype(np.float64)
    if relu:
        real = np.maximum(real, 0.0)
    out = QuantParams.for_range(float(real.min()), float(real.max()))
    multiplier, shift = requant_params(params.scale, scales, out.scale)
    layer: Dense | Conv1D
    if kind == "dense":
        layer = Dense(weights, bias, multiplier, shift, scales, out, relu=relu)
    else:
        layer = Conv1D(weights, bias, multiplier, shift, scales, out, stride=args[2], relu=relu)
    return layer, layer.run(h, params.zero_point)


def random_qmodel(
    seed: int, X: npt.NDArray[np.float64], spec: list[tuple[Any, ...]], labels: list[str]
) -> QuantizedModel:
    """A QuantizedModel of random int8 weights, its activation ranges calibrated on ``X``."""
    rng = np.random.default_rng(seed)
    mean = X.mean(axis=0).astype(np.float32)
    inv_std = (1.0 / X.std(axis=0)).astype(np.float32)
    z = (X.astype(np.float32) - mean) * inv_std
    input_params = QuantParams.for_range(float(z.min()), float(z.max()))
    h = _quantize(z, input_params)  # as QuantizedModel.quantize_input
    params, layers = input_params, []
    for kind, *args in spec:
        layer, h = _layer(rng, kind, h, params, *args)
        layers.append(layer)
        if isinstance(layer, Dense | Conv1D):
            params = layer.output
    return QuantizedModel(
        X.shape[1:], mean, inv_std, input_params, tuple(layers), tuple(labels), {"source": "test"}
    )


def _quantize(z: F32, params: QuantParams) -> I8:
    inv_scale = np.float32(1.0) / np.float32(params.scale)
    q = np.floor(z * inv_scale + np.float32(0.5)) + np.float32(params.zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


@functools.cache
def int8_case(name: str) -> tuple[QuantizedModel, npt.NDArray[np.float64]]:
    rng = np.random.default_rng(1)
    if name == "dense":
        X = rng.normal(2.0, 3.0, (2000, 20))
        spec = [("dense", 32, 1), ("dense", 16, 1), ("dense", 5, 0)]
        return random_qmodel(2, X, spec, list("abcde")), X
    if name == "dense_logit":
        X = rng.normal(-1.0, 0.5, (2000, 12))
        return random_qmodel(3, X, [("dense", 16, 1), ("dense", 1, 0)], ["no", "yes"]), X
    if name == "conv":
        X = rng.normal(0.0, 1.0, (1000, 64, 3))
        spec = [
            ("conv", 8, 5, 1, 1),
            ("pool", 2),
            ("conv", 6, 3, 2, 1),
            ("pool", 3),
            ("flatten",),
            ("dense", 16, 1),
            ("dense", 4, 0),
        ]
        return random_qmodel(4, X, spec, list("wxyz")), X
    X_train, X_test, y_train, _ = digits()  # a trained MLP through the real quantizer
    mlp = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=60, random_state=0))
    return quantize(mlp.fit(X_train, y_train), X_train), X_test


INT8_CASES = ["dense", "dense_logit", "conv", "digits_mlp"]


@pytest.mark.parametrize("level", list(OPTIMIZATIONS))
@pytest.mark.parametrize("name", INT8_CASES)
def test_int8_export_tracks_the_reference(name: str, level: str) -> None:
    qmodel, X = int8_case(name)
    scores = run_onnx(export_onnx_int8(qmodel), X, level)
    reference = qmodel.scores(X)
    assert scores.shape == reference.shape
    steps = np.abs(scores - reference) / np.float32(qmodel.output.scale)
    assert np.mean(steps <= 1.0 + 1e-3) >= 0.99
    if scores.shape[1] == 1:
        predicted = (scores[:, 0] > 0).astype(np.int64)
    else:
        predicted = scores.argmax(axis=1)
    assert np.mean(predicted == qmodel.predict_index(X)) >= 0.99
    labels = [qmodel.labels[i] for i in predicted]
    assert np.mean(np.array(labels) == np.array(qmodel.predict(X))) >= 0.99


def test_int8_graph_is_qdq_with_per_channel_weights() -> None:
    qmodel, _ = int8_case("conv")
    data = export_onnx_int8(qmodel)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == OPSET
    ops = [node.op_type for node in proto.graph.node]
    for op in ("QuantizeLinear", "DequantizeLinear", "Conv", "MaxPool", "Flatten", "Gemm"):
        assert op in ops
    assert "Transpose" in ops
    init = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    conv = qmodel.layers[0]
    assert isinstance(conv, Conv1D)
    np.testing.assert_array_equal(
        init["layer0_conv1d_weights_int8"], conv.weights.transpose(0, 2, 1)
    )
    np.testing.assert_array_equal(init["layer0_conv1d_bias_int32"], conv.bias)
    np.testing.assert_allclose(
        init["layer0_conv1d_bias_scale"], qmodel.input.scale * conv.weight_scales, rtol=1e-6
    )
    weight_dq = next(n for n in proto.graph.node if n.output[0] == "layer0_conv1d_weights")
    assert [(a.name, a.i) for a in weight_dq.attribute] == [("axis", 0)]
    props = _props(data)
    assert props["producer"] == "edgeloop"
    assert json.loads(props["labels"]) == list("wxyz")


def test_int8_roundtrip_through_bytes_exports_the_same_graph() -> None:
    qmodel, _ = int8_case("dense_logit")
    again = QuantizedModel.from_bytes(qmodel.to_bytes())
    assert export_onnx_int8(again) == export_onnx_int8(qmodel)
