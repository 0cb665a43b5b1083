"""Conv1DClassifier: it learns simulated vibration, is deterministic, computes what the int8
runtime's layouts say it computes, and refuses bad params and data."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.base import clone

from edgeloop.edge._cnn import Conv1DClassifier
from edgeloop.errors import ValidationFailed
from edgeloop.sim import simulate_fleet

WINDOW = 256
CNN_PARAMS = {"kernel_size": 9, "pool_size": 8, "epochs": 15}


@functools.cache
def sim_windows() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """768 windows of 256 x 3 from 96 two-second recordings (4 machines x 4 conditions x 6),
    their condition and the recording index (split on it: windows of one recording stay on
    one side)."""
    recordings = simulate_fleet(machines=4, recordings_per_condition=6, seconds=2.048, seed=0)
    windows, labels, groups = [], [], []
    for rec in recordings:
        for start in range(0, rec.signal.shape[0] - WINDOW + 1, WINDOW):
            windows.append(rec.signal[start : start + WINDOW])
            labels.append(rec.condition)
            groups.append(rec.index)
    X = np.stack(windows)
    X.setflags(write=False)
    return X, np.array(labels), np.array(groups)


def sim_split() -> tuple[npt.NDArray[Any], ...]:
    """Train on recordings 0-3 of every machine and condition, test on 4-5."""
    X, y, index = sim_windows()
    train = index < 4
    return X[train], y[train], X[~train], y[~train]


@functools.cache
def fitted_cnn(**params: int) -> Conv1DClassifier:
    X_train, y_train, _, _ = sim_split()
    return Conv1DClassifier(**{**CNN_PARAMS, **params}).fit(X_train, y_train)


def _toy(n: int = 60, length: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by which channel carries a bump."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(0.0, 0.3, (n, length, 2))
    X[y == 1, 8:12, 0] += 2.0
    X[y == 2, 8:12, 1] += 2.0
    return X, y


def _weights(model: Conv1DClassifier) -> list[np.ndarray]:
    return [
        model.mean_,
        model.std_,
        model.conv_weights_,
        model.conv_bias_,
        *model.dense_weights_,
        *model.dense_biases_,
    ]


def test_learns_simulated_vibration_conditions() -> None:
    _, _, X_test, y_test = sim_split()
    model = fitted_cnn()
    assert set(model.classes_) == {"normal", "imbalance", "misalignment", "bearing_fault"}
    assert model.score(X_test, y_test) >= 0.9  # 4 classes: chance is 0.25
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


def test_shapes_probabilities_and_score() -> None:
    X, y = _toy()
    model = Conv1DClassifier(filters=4, kernel_size=3, pool_size=2, hidden=5, epochs=20).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.predict(X)) == list(model.classes_[proba.argmax(axis=1)])
    assert model.score(X, y) == np.mean(model.predict(X) == y)
    assert model.score(X, y) >= 0.9
    assert model.conv_weights_.shape == (4, 3, 2)
    assert [w.shape for w in model.dense_weights_] == [(5, 11 * 4), (3, 5)]
    assert [b.shape for b in model.dense_biases_] == [(5,), (3,)]


def test_string_and_binary_labels() -> None:
    X, y = _toy()
    names = np.array(["a", "b", "c"])[np.minimum(y, 1)]
    model = Conv1DClassifier(filters=4, kernel_size=3, epochs=10).fit(X, names)
    assert list(model.classes_) == ["a", "b"]
    assert model.dense_weights_[-1].shape[0] == 2
    assert set(model.predict(X)) <= {"a", "b"}


def test_fit_is_deterministic_bit_for_bit() -> None:
    X, y = _toy()
    params = {"filters": 4, "kernel_size": 3, "hidden": 6, "epochs": 5, "random_state": 7}
    first = _weights(Conv1DClassifier(**params).fit(X, y))
    second = _weights(Conv1DClassifier(**params).fit(X, y))
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()
    other = _weights(Conv1DClassifier(**{**params, "random_state": 8}).fit(X, y))
    assert not np.array_equal(first[2], other[2])


def test_float_forward_matches_runtime_layouts() -> None:
    """A direct loop over the runtime's layouts (conv ``w[f, k, c]`` on channels-last input,
    pool on time, channels-last flatten, dense ``w[out, in]``) gives the model's logits."""
    X, y = _toy(length=20)
    model = Conv1DClassifier(filters=3, kernel_size=4, pool_size=3, hidden=4, epochs=3).fit(X, y)
    x = X[:5]
    z = (x - model.mean_) / model.std_
    w, b = model.conv_weights_, model.conv_bias_
    filters, kernel, _ = w.shape
    out_len = z.shape[1] - kernel + 1
    conv = np.zeros((5, out_len, filters))
    for t in range(out_len):
        for f in range(filters):
            conv[:, t, f] = np.einsum("nkc,kc->n", z[:, t : t + kernel, :], w[f]) + b[f]
    conv = np.maximum(conv, 0.0)
    pooled_len = (out_len - 3) // 3 + 1
    pooled = np.stack([conv[:, 3 * i : 3 * i + 3].max(axis=1) for i in range(pooled_len)], 1)
    h = np.maximum(pooled.reshape(5, -1) @ model.dense_weights_[0].T + model.dense_biases_[0], 0)
    logits = h @ model.dense_weights_[1].T + model.dense_biases_[1]

    acts = model.float_forward(x)
    assert [a.shape for a in acts] == [
        (5, 20, 2),
        (5, out_len, filters),
        (5, pooled_len, filters),
        (5, pooled_len * filters),
        (5, 4),
        (5, 3),
    ]
    np.testing.assert_allclose(acts[0], z)
    np.testing.assert_allclose(acts[1], conv, atol=1e-12)
    np.testing.assert_allclose(acts[2], pooled, atol=1e-12)
    np.testing.assert_allclose(acts[-1], logits, atol=1e-10)
    np.testing.assert_allclose(model.decision_function(x), logits, atol=1e-10)


def test_gradients_match_finite_differences() -> None:
    X, y = _toy(n=6, length=14)
    model = Conv1DClassifier(filters=2, kernel_size=3, pool_size=2, hidden=3, epochs=1).fit(X, y)
    z = (X - model.mean_) / model.std_
    onehot = np.eye(3)[y]
    params = [model.conv_weights_, model.conv_bias_]
    for w, b in zip(model.dense_weights_, model.dense_biases_, strict=True):
        params += [w, b]
    _, grads = model._gradients(z, onehot)
    for param, grad in zip(params, grads, strict=True):
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + 1e-6
            up = model._gradients(z, onehot)[0]
            param[idx] = old - 1e-6
            down = model._gradients(z, onehot)[0]
            param[idx] = old
            numeric[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_standardises_per_channel() -> None:
    X, y = _toy()
    X = X * np.array([100.0, 0.01]) + np.array([5.0, -3.0])
    model = Conv1DClassifier(filters=4, kernel_size=3, epochs=10).fit(X, y)
    np.testing.assert_allclose(model.mean_, X.mean(axis=(0, 1)))
    np.testing.assert_allclose(model.std_, X.std(axis=(0, 1)))
    assert model.score(X, y) >= 0.9


def test_sklearn_params_protocol() -> None:
    model = Conv1DClassifier(filters=3, hidden=2)
    assert model.get_params()["filters"] == 3
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.set_params(epochs=4).epochs == 4
    with pytest.raises(ValidationFailed, match="no param 'units'"):
        model.set_params(units=3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filters": 0}, "filters must be an integer >= 1"),
        ({"kernel_size": 2.5}, "kernel_size must be an integer"),
        ({"pool_size": True}, "pool_size must be an integer"),
        ({"hidden": -1}, "hidden must be an integer >= 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"random_state": -1}, "random_state must be an integer >= 0"),
        ({"kernel_size": 20, "pool_size": 8}, "too short"),
    ],
)
def test_bad_params_are_refused(params: dict[str, object], message: str) -> None:
    X, y = _toy()
    with pytest.raises(ValidationFailed, match=message):
        Conv1DClassifier(**params).fit(X, y)  # type: ignore[arg-type]


def test_bad_data_is_refused() -> None:
    X, y = _toy()
    model = Conv1DClassifier(filters=2, kernel_size=3, epochs=1)
    with pytest.raises(ValidationFailed, match="not fitted"):
        model.predict(X)
    with pytest.raises(ValidationFailed, match="shape"):
        model.fit(X[:, :, 0], y)
    with pytest.raises(ValidationFailed, match="shape"):
        model.fit(X[:0], y[:0])
    bad = X.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValidationFailed, match="NaN"):
        model.fit(bad, y)
    with pytest.raises(ValidationFailed, match="y must have shape"):
        model.fit(X, y[:-1])
    with pytest.raises(ValidationFailed, match="at least 2 classes"):
        model.fit(X, np.zeros(len(y)))
    model.fit(X, y)
    with pytest.raises(ValidationFailed, match=r"windows of shape \(24, 2\)"):
        model.predict(X[:, :20])
