"""Post-training int8 quantization: every supported model kind stays within its accuracy
bound, the scheme is the runtime's, the result is deterministic and round-trips, and bad
models, activations and calibration data are refused."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from edgeloop.edge._quantize import (
    SCHEME,
    QuantizationGateFailed,
    check_accuracy_drop,
    compare,
    quantize,
)
from edgeloop.edge.runtime import Conv1D, Dense, Flatten, MaxPool1D, QuantizedModel
from edgeloop.errors import DataRejected, ValidationFailed
from tests.edge.test_cnn import fitted_cnn, sim_split


@functools.cache
def digits(binary: bool = False) -> tuple[np.ndarray, ...]:
    """Digits 8x8 (64 features, 0-16): train / test, stratified; ``binary``: digit >= 5."""
    X, y = load_digits(return_X_y=True)
    if binary:
        y = (y >= 5).astype(int)
    parts = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    return tuple(parts)


def _mlp(**params: Any) -> MLPClassifier:
    return MLPClassifier(
        **{"hidden_layer_sizes": (32,), "max_iter": 600, "random_state": 0, **params}
    )


@functools.cache
def fitted(kind: str) -> Any:
    binary = kind.endswith("binary")
    X_train, _, y_train, _ = digits(binary)
    model: Any
    if kind in ("mlp", "mlp_binary"):
        model = _mlp()
    elif kind.startswith("logistic"):
        model = LogisticRegression(max_iter=5000)
    elif kind == "pipeline_mlp":
        model = Pipeline([("scale", StandardScaler()), ("model", _mlp())])
    else:
        raise AssertionError(kind)
    return model.fit(X_train, y_train)


def _quantized(kind: str) -> tuple[Any, QuantizedModel, dict[str, Any]]:
    X_train, X_test, _, y_test = digits(kind.endswith("binary"))
    model = fitted(kind)
    qmodel = quantize(model, X_train)
    return model, qmodel, compare(model, qmodel, X_test, y_test)


# ---- accuracy per model kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "units", "source"),
    [
        ("mlp", 10, "mlp_classifier"),
        ("mlp_binary", 1, "mlp_classifier"),
        ("logistic_multinomial", 10, "logistic_regression"),
        ("logistic_binary", 1, "logistic_regression"),
        ("pipeline_mlp", 10, "standard_scaler+mlp_classifier"),
    ],
)
def test_int8_stays_within_one_point_on_digits(kind: str, units: int, source: str) -> None:
    model, qmodel, report = _quantized(kind)
    assert report["float_accuracy"] >= 0.85
    assert report["drop_points"] <= 1.0
    assert report["agreement"] >= 0.97
    assert report["n"] == len(digits()[1])
    assert check_accuracy_drop(report, max_drop_points=1.0) is report
    assert qmodel.shapes()[-1] == (units,)
    assert qmodel.labels == tuple(str(c) for c in model.classes_)
    assert qmodel.meta == {
        "source": source,
        "calibration_samples": len(digits()[0]),
        "scheme": SCHEME,
    }


def test_mlp_layers_and_relu_ranges() -> None:
    model, qmodel, _ = _quantized("mlp")
    hidden, out = qmodel.layers
    assert isinstance(hidden, Dense) and isinstance(out, Dense)
    assert hidden.relu and not out.relu
    assert hidden.weights.shape == (32, 64) and out.weights.shape == (10, 32)
    # a ReLU output range starts at 0, which is the lowest code
    assert hidden.output.zero_point == -128
    h = np.maximum(digits()[0] @ model.coefs_[0] + model.intercepts_[0], 0)
    assert hidden.output.scale == pytest.approx(h.max() / 255, rel=1e-6)
    logits = h @ model.coefs_[1] + model.intercepts_[1]
    assert out.output.scale == pytest.approx(
        (max(logits.max(), 0) - min(logits.min(), 0)) / 255, rel=1e-6
    )


def test_identity_activation_has_no_relu() -> None:
    X_train, X_test, y_train, y_test = digits()
    model = _mlp(activation="identity", max_iter=1000).fit(X_train, y_train)
    qmodel = quantize(model, X_train)
    assert [layer.relu for layer in qmodel.layers] == [False, False]  # type: ignore[union-attr]
    assert qmodel.layers[0].output.zero_point > -128  # type: ignore[union-attr]
    assert compare(model, qmodel, X_test, y_test)["drop_points"] <= 1.0


def test_pipeline_scaler_is_folded_into_the_input() -> None:
    model, qmodel, _ = _quantized("pipeline_mlp")
    scaler = model.named_steps["scale"]
    np.testing.assert_array_equal(qmodel.mean, scaler.mean_.astype(np.float32))
    np.testing.assert_allclose(qmodel.inv_std, 1.0 / scaler.scale_, rtol=1e-6)
    _, plain, _ = _quantized("mlp")
    np.testing.assert_array_equal(plain.mean, np.zeros(64, np.float32))
    np.testing.assert_array_equal(plain.inv_std, np.ones(64, np.float32))


def test_conv1d_classifier_on_simulated_vibration() -> None:
    X_train, _, X_test, y_test = sim_split()
    model = fitted_cnn()
    qmodel = quantize(model, X_train)
    assert [type(layer) for layer in qmodel.layers] == [Conv1D, MaxPool1D, Flatten, Dense]
    assert qmodel.shapes() == [(256, 3), (248, 8), (31, 8), (248,), (4,)]
    np.testing.assert_array_equal(qmodel.mean[0], model.mean_.astype(np.float32))
    np.testing.assert_array_equal(qmodel.mean[-1], model.mean_.astype(np.float32))
    report = compare(model, qmodel, X_test, y_test)
    assert report["float_accuracy"] >= 0.9
    assert report["drop_points"] <= 2.0
    assert report["agreement"] >= 0.97
    assert qmodel.meta["source"] == "conv1d_classifier"


def test_conv1d_classifier_with_hidden_layer() -> None:
    X_train, _, X_test, y_test = sim_split()
    model = fitted_cnn(hidden=16)
    qmodel = quantize(model, X_train[::2])
    kinds = [layer.kind for layer in qmodel.layers]
    assert kinds == ["conv1d", "maxpool1d", "flatten", "dense", "dense"]
    assert [getattr(layer, "relu", None) for layer in qmodel.layers] == [
        True,
        None,
        None,
        True,
        False,
    ]
    assert qmodel.meta["calibration_samples"] == len(X_train[::2])
    assert compare(model, qmodel, X_test, y_test)["drop_points"] <= 2.0


# ---- the scheme -----------------------------------------------------------------------------


def test_weights_bias_and_input_follow_the_scheme() -> None:
    X_train = digits()[0]
    model = fitted("logistic_multinomial")
    qmodel = quantize(model, X_train)
    (layer,) = qmodel.layers
    assert isinstance(layer, Dense)
    w, b = model.coef_, model.intercept_
    expected_scales = (np.abs(w).max(axis=1) / 127).astype(np.float32)
    np.testing.assert_array_equal(layer.weight_scales, expected_scales)
    np.testing.assert_array_equal(np.abs(layer.weights.astype(int)).max(axis=1), 127)
    dequantized = layer.weights * layer.weight_scales[:, None].astype(np.float64)
    assert np.all(np.abs(dequantized - w) <= layer.weight_scales[:, None] * 0.5 + 1e-9)
    s_in = qmodel.input.scale
    expected_bias = np.round(b / (s_in * layer.weight_scales.astype(np.float64)))
    np.testing.assert_array_equal(layer.bias, expected_bias.astype(np.int32))
    # digits are 0..16 and unscaled: the input range is [0, 16]
    assert qmodel.input.zero_point == -128
    assert s_in == pytest.approx(16 / 255, rel=1e-6)
    q = qmodel.quantize_input(X_train)
    assert q.min() == -128 and q.max() == 127
    # the output range covers the float logits of the calibration split
    logits = model.decision_function(X_train)
    low = (-128 - layer.output.zero_point) * layer.output.scale
    high = (127 - layer.output.zero_point) * layer.output.scale
    assert low <= logits.min() + layer.output.scale and high >= logits.max() - layer.output.scale


def test_all_zero_channel_gets_scale_one() -> None:
    X_train, _, y_train, _ = digits()
    model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    model.coef_[3] = 0.0
    qmodel = quantize(model, X_train)
    layer = qmodel.layers[0]
    assert isinstance(layer, Dense)
    assert layer.weight_scales[3] == 1.0
    assert not layer.weights[3].any()
    assert layer.bias[3] == round(model.intercept_[3] / qmodel.input.scale)


def test_bias_that_would_overflow_int32_raises_the_weight_scale() -> None:
    """Weights of 1e-12 under a bias of 3: max|w|/127 would need a bias of ~1e14 codes."""
    X_train = digits()[0]
    model = LogisticRegression(max_iter=5000).fit(X_train, digits()[2])
    model.coef_[2] = 1e-12
    model.intercept_[2] = 3.0
    qmodel = quantize(model, X_train)
    layer = qmodel.layers[0]
    assert isinstance(layer, Dense)
    limit = 2**31 - 1 - 64 * 255 * 127
    assert 0 < layer.bias[2] <= limit
    assert layer.weight_scales[2] > 1e-12 / 127
    assert np.abs(layer.bias.astype(np.int64)).max() <= limit
    np.testing.assert_array_equal(  # other channels keep max|w| / 127
        np.delete(layer.weight_scales, 2),
        np.delete((np.abs(model.coef_).max(axis=1) / 127).astype(np.float32), 2),
    )
    scores = qmodel.scores(X_train)
    assert np.abs(scores[:, 2] - 3.0).max() <= 2 * qmodel.output.scale


def test_int8_scores_track_float_logits() -> None:
    for kind in ("logistic_multinomial", "logistic_binary"):
        model, qmodel, _ = _quantized(kind)
        X_train, X_test = digits(kind.endswith("binary"))[:2]
        logits = model.decision_function(X_test).reshape(len(X_test), -1)
        scores = qmodel.scores(X_test)
        assert np.corrcoef(scores.ravel(), logits.ravel())[0, 1] > 0.99
        # within the calibrated logit range (outside it int8 saturates) the error is a few steps
        calibrated = model.decision_function(X_train)
        inside = (logits > calibrated.min()) & (logits < calibrated.max())
        assert inside.mean() > 0.99
        assert np.abs(scores - logits)[inside].max() < 3 * qmodel.output.scale
    X_train, _, X_test, _ = sim_split()
    cnn = fitted_cnn()
    scores = quantize(cnn, X_train).scores(X_test)
    assert np.corrcoef(scores.ravel(), cnn.decision_function(X_test).ravel())[0, 1] > 0.99


def _calibrated(kind: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """A fitted model, its calibration split and a test split."""
    if kind == "cnn":
        X_sim, _, X_sim_test, _ = sim_split()
        return fitted_cnn(), X_sim, X_sim_test
    X_train, X_test, _, _ = digits()
    return fitted(kind), X_train, X_test


@pytest.mark.parametrize("kind", ["pipeline_mlp", "logistic_multinomial", "cnn"])
def test_quantize_is_deterministic_and_round_trips(kind: str) -> None:
    model, X_calib, X_test = _calibrated(kind)
    original = quantize(model, X_calib)
    blob = original.to_bytes()
    assert quantize(model, X_calib).to_bytes() == blob
    loaded = QuantizedModel.from_bytes(blob)
    np.testing.assert_array_equal(
        loaded.run_int8(loaded.quantize_input(X_test)),
        original.run_int8(original.quantize_input(X_test)),
    )
    np.testing.assert_array_equal(loaded.scores(X_test), original.scores(X_test))
    assert loaded.predict(X_test) == original.predict(X_test)
    assert loaded.labels == original.labels and dict(loaded.meta) == dict(original.meta)
    assert loaded.to_bytes() == blob


def test_calibration_split_changes_the_ranges() -> None:
    X_train, _, _, _ = digits()
    model = fitted("mlp")
    full = quantize(model, X_train)
    part = quantize(model, X_train[:1])
    assert part.meta["calibration_samples"] == 1
    assert part.layers[0].output.scale < full.layers[0].output.scale  # type: ignore[union-attr]


def test_labels_can_be_renamed() -> None:
    X_train, X_test, _, _ = digits(binary=True)
    qmodel = quantize(fitted("logistic_binary"), X_train, labels=["low", "high"])
    assert qmodel.labels == ("low", "high")
    assert set(qmodel.predict(X_test)) == {"low", "high"}
    with pytest.raises(ValidationFailed, match="labels"):
        quantize(fitted("logistic_binary"), X_train, labels=["a", "b", "c"])


# ---- the gate -------------------------------------------------------------------------------


def test_compare_counts_by_hand() -> None:
    X_train, X_test, _, y_test = digits()
    model = fitted("mlp")
    qmodel = quantize(model, X_train)
    float_pred = model.predict(X_test).astype(str)
    int8_pred = np.array(qmodel.predict(X_test))
    report = compare(model, qmodel, X_test, y_test)
    assert report["float_accuracy"] == np.mean(float_pred == y_test.astype(str))
    assert report["int8_accuracy"] == np.mean(int8_pred == y_test.astype(str))
    assert report["agreement"] == np.mean(float_pred == int8_pred)
    assert report["drop_points"] == pytest.approx(
        100 * (report["float_accuracy"] - report["int8_accuracy"])
    )
    with pytest.raises(ValidationFailed, match="same number"):
        compare(model, qmodel, X_test, y_test[:-1])
    renamed = quantize(model, X_train, labels=[f"digit-{i}" for i in range(10)])
    with pytest.raises(ValidationFailed, match="classes"):
        compare(model, renamed, X_test, y_test)


def test_check_accuracy_drop_gates_on_the_bound() -> None:
    report = {"float_accuracy": 0.95, "int8_accuracy": 0.93, "drop_points": 2.0, "n": 100}
    assert check_accuracy_drop(report, max_drop_points=2.0) is report
    assert check_accuracy_drop({**report, "drop_points": -0.5}) is not None
    with pytest.raises(QuantizationGateFailed) as info:
        check_accuracy_drop(report, max_drop_points=1.5)
    error = info.value
    assert isinstance(error, DataRejected) and error.http_status == 422
    assert "93.00%" in error.message and "95.00%" in error.message
    assert "2.00 points" in error.message and "1.5" in error.message
    assert error.details["report"] == report
    with pytest.raises(QuantizationGateFailed):
        check_accuracy_drop(report)  # default bound: 1 point
    with pytest.raises(ValidationFailed, match="max_drop_points"):
        check_accuracy_drop(report, max_drop_points=float("nan"))


class _Fixed:
    """A float model stub that predicts given answers."""

    classes_ = np.arange(10)

    def __init__(self, answers: np.ndarray) -> None:
        self.answers = answers

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.answers[: len(X)]


def test_a_drop_of_exactly_the_bound_passes() -> None:
    """100 samples, int8 wrong on exactly one more than float: 1.0 point, which a bound of 1
    accepts and a bound of 0.99 refuses (no float rounding at the bound)."""
    X_train, X_test, _, _ = digits()
    qmodel = quantize(fitted("mlp"), X_train)
    X = X_test[:100]
    y = np.array(qmodel.predict(X)).astype(int)
    y[0] = (y[0] + 1) % 10  # int8 gets sample 0 wrong
    report = compare(_Fixed(y), qmodel, X, y)
    assert report == {
        "float_accuracy": 1.0,
        "int8_accuracy": 0.99,
        "drop_points": 1.0,
        "agreement": 0.99,
        "n": 100,
    }
    assert check_accuracy_drop(report, max_drop_points=1.0) is report
    with pytest.raises(QuantizationGateFailed):
        check_accuracy_drop(report, max_drop_points=0.99)


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_unsupported_activation_is_refused(activation: str) -> None:
    X_train, _, y_train, _ = digits()
    model = _mlp(activation=activation, hidden_layer_sizes=(4,), max_iter=5)
    with pytest.warns(ConvergenceWarning):  # 5 iterations are deliberately few
        model.fit(X_train[:200], y_train[:200])
    with pytest.raises(ValidationFailed, match=r"relu, identity") as info:
        quantize(model, X_train)
    assert activation in info.value.message


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeClassifier(max_depth=2),
        Pipeline([("scale", MinMaxScaler()), ("model", LogisticRegression(max_iter=5000))]),
        Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("c", LogisticRegression())]),
    ],
    ids=["tree", "minmax-pipeline", "two-scalers"],
)
def test_unsupported_models_are_refused(model: Any) -> None:
    X_train, _, y_train, _ = digits()
    model.fit(X_train / 16, y_train)
    with pytest.raises(ValidationFailed, match=r"MLPClassifier.*LogisticRegression.*Conv1D"):
        quantize(model, X_train)


def test_conv1d_classifier_in_a_pipeline_is_refused() -> None:
    X_sim = sim_split()[0]
    with pytest.raises(ValidationFailed, match="quantize it alone"):
        quantize(Pipeline([("model", fitted_cnn())]), X_sim)


def test_unfitted_and_odd_inputs_are_refused() -> None:
    X_train, _, _, _ = digits()
    with pytest.raises(ValidationFailed, match="not fitted"):
        quantize(LogisticRegression(), X_train)
    with pytest.raises(ValidationFailed, match="not fitted"):
        quantize(_mlp(), X_train)
    with pytest.raises(ValidationFailed, match="MLPClassifier"):
        quantize("a model", X_train)
    model = fitted("logistic_multinomial")
    with pytest.raises(ValidationFailed, match="at least 1 calibration sample"):
        quantize(model, X_train[:0])
    with pytest.raises(ValidationFailed, match=r"shape \(n_samples, 64\)"):
        quantize(model, X_train[:, :10])
    with pytest.raises(ValidationFailed, match="numeric"):
        quantize(model, [["x"] * 64])
    bad = X_train.copy()
    bad[5, 7] = np.nan
    with pytest.raises(ValidationFailed, match="NaN"):
        quantize(model, bad)
    bad[5, 7] = np.inf
    with pytest.raises(ValidationFailed, match="NaN or infinite"):
        quantize(model, bad)
    X_sim = sim_split()[0]
    with pytest.raises(ValidationFailed, match=r"shape \(n_samples, 256, 3\)"):
        quantize(fitted_cnn(), X_sim[:, :100])
