"""Post-training int8 quantization of trained classifiers into a :class:`QuantizedModel`.

:func:`quantize` takes a fitted model and a calibration split and applies the scheme of
:mod:`edgeloop.edge.runtime` (TFLite int8):

* weights: per output channel, symmetric, ``scale = max|w| / 127`` (an all-zero channel gets
  scale 1 and zero weights), values rounded and clipped to [-127, 127];
* bias: int32, ``round(b / (input_scale * weight_scale))``; where a bias would not leave an
  int32 accumulator room for the largest dot product, that channel's weight scale is raised
  until it does (TFLite's converter does the same; only near-zero channels need it);
* activations: per tensor, asymmetric, over the [min, max] that the float model reaches on
  the calibration inputs (:meth:`QuantParams.for_range`); after a ReLU that is the ReLU's
  output range; the last layer's range covers the logits; the input range covers the
  standardised calibration inputs;
* requantization multipliers and shifts from :func:`requant_params`.

Supported models: scikit-learn's ``MLPClassifier`` (hidden activation ``relu`` or
``identity``), ``LogisticRegression`` (binary: one logit unit; multiclass: one unit per
class), a ``Pipeline`` of an optional ``StandardScaler`` (folded into the model's
``mean`` / ``inv_std``) and one of those, and :class:`~edgeloop.edge._cnn.Conv1DClassifier`.

:func:`compare` measures float against int8 accuracy on a test split and
:func:`check_accuracy_drop` gates on it::

    qmodel = quantize(model, X_calib)
    check_accuracy_drop(compare(model, qmodel, X_test, y_test), max_drop_points=1.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop.edge._cnn import Conv1DClassifier
from edgeloop.edge.runtime import (
    INT8_MAX,
    Conv1D,
    Dense,
    Flatten,
    Layer,
    MaxPool1D,
    QuantizedModel,
    QuantParams,
    requant_params,
)
from edgeloop.edge.trees import QuantizedTrees
from edgeloop.errors import DataRejected, ValidationFailed

__all__ = [
    "SCHEME",
    "SUPPORTED_ACTIVATIONS",
    "QuantizationGateFailed",
    "check_accuracy_drop",
    "compare",
    "quantize",
]

SCHEME = "tflite-int8: per-channel symmetric weights, per-tensor asymmetric activations"
"""The scheme name recorded in ``QuantizedModel.meta["scheme"]``."""
SUPPORTED_ACTIVATIONS: tuple[str, ...] = ("relu", "identity")
"""``MLPClassifier`` hidden activations that int8 layers can run."""
_SUPPORTED = (
    "sklearn MLPClassifier, sklearn LogisticRegression, a sklearn Pipeline of an optional "
    "StandardScaler followed by one of those, or edgeloop's Conv1DClassifier"
)
_INT32_MAX = 2**31 - 1

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
Forward = Callable[[F64], list[F64]]


class QuantizationGateFailed(DataRejected):
    """The int8 model loses more accuracy than allowed; ``details["report"]`` holds the
    :func:`compare` report and ``details["max_drop_points"]`` the bound."""


@dataclass(frozen=True)
class _FloatLayer:
    """One float layer in runtime layout: dense ``weights[n_out, n_in]``, conv
    ``weights[filters, kernel, channels]``; ``size`` is a max pool's size and stride."""

    kind: Literal["dense", "conv1d", "maxpool1d", "flatten"]
    weights: F64 | None = None
    bias: F64 | None = None
    relu: bool = False
    size: int = 0


@dataclass(frozen=True)
class _FloatNet:
    """A supported model read as a chain of float layers. ``forward`` maps raw inputs to the
    standardised input followed by every layer's output (post-ReLU where there is one)."""

    source: str
    input_shape: tuple[int, ...]
    mean: F32
    inv_std: F32
    layers: tuple[_FloatLayer, ...]
    labels: tuple[str, ...]
    forward: Forward


# ---- reading models -----------------------------------------------------------------------


def _fitted(model: Any, attribute: str) -> None:
    if not hasattr(model, attribute):
        raise ValidationFailed(
            f"the {type(model).__name__} is not fitted: fit it before quantizing",
            details={"field": "model"},
        )


def _dense_forward(net_layers: Sequence[_FloatLayer], mean: F32, inv_std: F32) -> Forward:
    """Forward pass over dense layers, standardising as the runtime does (float32)."""

    def forward(x: F64) -> list[F64]:
        z = (x.astype(np.float32) - mean) * inv_std
        acts = [z.astype(np.float64)]
        for layer in net_layers:
            assert layer.weights is not None and layer.bias is not None
            out = acts[-1] @ layer.weights.T + layer.bias
            acts.append(np.maximum(out, 0.0) if layer.relu else out)
        return acts

    return forward


def _standardisation(scaler: Any | None, n_features: int) -> tuple[F32, F32]:
    mean = np.zeros(n_features, dtype=np.float32)
    inv_std = np.ones(n_features, dtype=np.float32)
    if scaler is None:
        return mean, inv_std
    _fitted(scaler, "n_features_in_")
    if scaler.n_features_in_ != n_features:
        raise ValidationFailed(
            f"the StandardScaler has {scaler.n_features_in_} features but the classifier "
            f"expects {n_features}",
            details={"field": "model"},
        )
    if scaler.mean_ is not None:
        mean = np.asarray(scaler.mean_, dtype=np.float32)
    if scaler.scale_ is not None:
        inv_std = (1.0 / np.asarray(scaler.scale_, dtype=np.float64)).astype(np.float32)
    return mean, inv_std


def _labels(classes: npt.NDArray[Any]) -> tuple[str, ...]:
    return tuple(str(c) for c in classes)


def _read_mlp(model: Any, scaler: Any | None) -> _FloatNet:
    _fitted(model, "coefs_")
    if model.activation not in SUPPORTED_ACTIVATIONS:
        raise ValidationFailed(
            f"MLPClassifier activation {model.activation!r} cannot be quantized: the supported "
            f"activations are {', '.join(SUPPORTED_ACTIVATIONS)}",
            details={"field": "activation", "allowed": list(SUPPORTED_ACTIVATIONS)},
        )
    if model.out_activation_ not in ("softmax", "logistic") or (
        model.out_activation_ == "logistic" and len(model.classes_) != 2
    ):
        raise ValidationFailed(
            "only single-label MLPClassifiers (binary or multiclass) can be quantized; "
            "this one is multilabel",
            details={"field": "model"},
        )
    count = len(model.coefs_)
    layers = tuple(
        _FloatLayer(
            "dense",
            np.asarray(w, dtype=np.float64).T.copy(),
            np.asarray(b, dtype=np.float64),
            relu=model.activation == "relu" and i < count - 1,
        )
        for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_, strict=True))
    )
    n_features = int(model.coefs_[0].shape[0])
    mean, inv_std = _standardisation(scaler, n_features)
    return _FloatNet(
        "mlp_classifier",
        (n_features,),
        mean,
        inv_std,
        layers,
        _labels(model.classes_),
        _dense_forward(layers, mean, inv_std),
    )


def _read_logistic(model: Any, scaler: Any | None) -> _FloatNet:
    _fitted(model, "coef_")
    weights = np.asarray(model.coef_, dtype=np.float64)
    bias = np.asarray(model.intercept_, dtype=np.float64).reshape(-1)
    if bias.shape != (weights.shape[0],):  # fit_intercept=False gives a scalar 0.0
        bias = np.broadcast_to(bias, (weights.shape[0],)).copy()
    layers = (_FloatLayer("dense", weights, bias),)
    mean, inv_std = _standardisation(scaler, int(weights.shape[1]))
    return _FloatNet(
        "logistic_regression",
        (int(weights.shape[1]),),
        mean,
        inv_std,
        layers,
        _labels(model.classes_),
        _dense_forward(layers, mean, inv_std),
    )


def _read_cnn(model: Conv1DClassifier) -> _FloatNet:
    _fitted(model, "classes_")
    length, channels = model.input_shape_
    mean = np.broadcast_to(model.mean_.astype(np.float32), (length, channels)).copy()
    inv_std = np.broadcast_to((1.0 / model.std_).astype(np.float32), (length, channels)).copy()
    last = len(model.dense_weights_) - 1
    layers = (
        _FloatLayer("conv1d", model.conv_weights_, model.conv_bias_, relu=True),
        _FloatLayer("maxpool1d", size=int(model.pool_size)),
        _FloatLayer("flatten"),
        *(
            _FloatLayer("dense", w, b, relu=i < last)
            for i, (w, b) in enumerate(zip(model.dense_weights_, model.dense_biases_, strict=True))
        ),
    )
    return _FloatNet(
        "conv1d_classifier",
        (length, channels),
        mean,
        inv_std,
        layers,
        _labels(model.classes_),
        model.float_forward,
    )


def _read(model: object) -> _FloatNet:
    if isinstance(model, Conv1DClassifier):
        return _read_cnn(model)
    scaler: Any | None = None
    estimator: object = model
    prefix = ""
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step is not None and step != "passthrough"]
        if steps and isinstance(steps[-1], Conv1DClassifier):
            raise ValidationFailed(
                "a Conv1DClassifier standardises its own inputs: quantize it alone, not in a "
                "Pipeline",
                details={"field": "model"},
            )
        if len(steps) == 2 and isinstance(steps[0], StandardScaler):
            scaler, estimator = steps
            prefix = "standard_scaler+"
        elif len(steps) == 1:
            estimator = steps[0]
        else:
            names = ", ".join(type(s).__name__ for s in steps) or "no steps"
            raise ValidationFailed(
                f"cannot quantize a Pipeline of {names}: expected {_SUPPORTED}",
                details={"field": "model"},
            )
    if isinstance(estimator, MLPClassifier):
        net = _read_mlp(estimator, scaler)
    elif isinstance(estimator, LogisticRegression):
        net = _read_logistic(estimator, scaler)
    else:
        raise ValidationFailed(
            f"cannot quantize a {type(estimator).__name__}: expected {_SUPPORTED}",
            details={"field": "model"},
        )
    if prefix:
        net = dataclasses.replace(net, source=prefix + net.source)
    return net


# ---- quantizing -----------------------------------------------------------------------------


def _calibration(X_calib: object, shape: tuple[int, ...]) -> F64:
    try:
        x = np.asarray(X_calib, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            f"X_calib must be numeric: {exc}", details={"field": "X_calib"}
        ) from exc
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        raise ValidationFailed(
            f"X_calib must have shape (n_samples, {', '.join(map(str, shape))}) for this "
            f"model, got {x.shape}",
            details={"field": "X_calib"},
        )
    if x.shape[0] < 1:
        raise ValidationFailed(
            "X_calib is empty: quantization needs at least 1 calibration sample",
            details={"field": "X_calib"},
        )
    if not np.all(np.isfinite(x)):
        raise ValidationFailed(
            "X_calib holds NaN or infinite values: calibrate on clean samples",
            details={"field": "X_calib"},
        )
    return x


def _params_for(activations: F64) -> QuantParams:
    return QuantParams.for_range(float(activations.min()), float(activations.max()))


def _quantize_weights(
    weights: F64, bias: F64, input_scale: float
) -> tuple[npt.NDArray[np.int8], F32, npt.NDArray[np.int32]]:
    """Per-output-channel symmetric int8 weights, their float32 scales and the int32 bias.

    A channel's scale is ``max|w| / 127`` (1 for an all-zero channel), except where that
    would give a bias beyond what an int32 accumulator can add to the largest possible dot
    product: there the scale grows until the bias fits (as TFLite's converter does), which
    only happens for channels whose weights are negligible next to their bias.
    """
    flat = weights.reshape(weights.shape[0], -1)
    limit = _INT32_MAX - flat.shape[1] * 255 * INT8_MAX  # |x - zero_point| <= 255
    if limit <= 0:
        raise ValidationFailed(
            f"a layer with {flat.shape[1]} inputs per output overflows int32 accumulators",
            details={"field": "model"},
        )
    scales = (np.abs(flat).max(axis=1) / INT8_MAX).astype(np.float32)
    empty = ~(scales > 0)  # all-zero channel, or one too small for a float32 scale
    scales[empty] = np.float32(1.0)
    needed = np.abs(bias) / (input_scale * limit)
    grow = scales.astype(np.float64) < needed
    scales[grow] = np.nextafter(needed[grow].astype(np.float32), np.float32(np.inf))
    scales64 = scales.astype(np.float64)
    q = np.clip(np.round(flat / scales64[:, None]), -INT8_MAX, INT8_MAX)
    q[empty] = 0
    bias_q = np.clip(np.round(bias / (input_scale * scales64)), -limit, limit)
    return q.astype(np.int8).reshape(weights.shape), scales, bias_q.astype(np.int32)


def _quantize_layer(layer: _FloatLayer, input_params: QuantParams, output: F64) -> Dense | Conv1D:
    assert layer.weights is not None and layer.bias is not None
    weights, scales, bias = _quantize_weights(layer.weights, layer.bias, input_params.scale)
    output_params = _params_for(output)
    try:
        multiplier, shift = requant_params(input_params.scale, scales, output_params.scale)
    except ValueError as exc:
        raise ValidationFailed(
            f"a {layer.kind} layer cannot be requantized: {exc}", details={"field": "model"}
        ) from exc
    if layer.kind == "conv1d":
        return Conv1D(weights, bias, multiplier, shift, scales, output_params, relu=layer.relu)
    return Dense(weights, bias, multiplier, shift, scales, output_params, relu=layer.relu)


def quantize(
    model: object, X_calib: npt.ArrayLike, *, labels: Sequence[str] | None = None
) -> QuantizedModel:
    """The int8 :class:`QuantizedModel` of a fitted ``model``, calibrated on ``X_calib``.

    ``X_calib`` holds raw (unstandardised) float samples of the model's input shape, at least
    one, without NaN; activation ranges are their min / max through the float model.
    ``labels`` name the classes (default ``str(c)`` for each of ``model.classes_``).
    Raises :class:`ValidationFailed` for an unsupported model or activation, an unfitted
    model, or bad calibration data.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = [0, 0, 1, 1]
    >>> q = quantize(LogisticRegression().fit(X, y), X)
    >>> q.predict(X)
    ['0', '0', '1', '1']
    """
    net = _read(model)
    x = _calibration(X_calib, net.input_shape)
    names = net.labels
    if labels is not None:
        names = tuple(str(label) for label in labels)
        if len(names) != len(net.labels):
            raise ValidationFailed(
                f"labels names {len(names)} classes but the model has {len(net.labels)}",
                details={"field": "labels"},
            )
    activations = net.forward(x)
    input_params = _params_for(activations[0])
    current = input_params
    layers: list[Layer] = []
    for layer, output in zip(net.layers, activations[1:], strict=True):
        if layer.kind == "maxpool1d":
            layers.append(MaxPool1D(layer.size, layer.size))
        elif layer.kind == "flatten":
            layers.append(Flatten())
        else:
            quantized = _quantize_layer(layer, current, output)
            layers.append(quantized)
            current = quantized.output
    return QuantizedModel(
        input_shape=net.input_shape,
        mean=net.mean,
        inv_std=net.inv_std,
        input=input_params,
        layers=tuple(layers),
        labels=names,
        meta={"source": net.source, "calibration_samples": int(x.shape[0]), "scheme": SCHEME},
    )


# ---- accuracy ------------------------------------------------------------------------------


def compare(
    float_model: Any,
    qmodel: QuantizedModel | QuantizedTrees,
    X_test: npt.ArrayLike,
    y_test: npt.ArrayLike,
) -> dict[str, Any]:
    """Float against int8 on a test split.

    Returns ``float_accuracy`` and ``int8_accuracy`` (fractions), ``drop_points`` (percentage
    points, float minus int8), ``agreement`` (share of samples where both predict the same
    class) and ``n``. Labels are compared as ``str(label)``, as ``qmodel.labels`` are.
    """
    x = np.asarray(X_test, dtype=np.float64)
    truth = [str(label) for label in np.asarray(y_test).reshape(-1)]
    if x.shape[0] < 1 or len(truth) != x.shape[0]:
        raise ValidationFailed(
            f"X_test and y_test must hold the same number (>= 1) of samples, got "
            f"{x.shape[0]} and {len(truth)}",
            details={"field": "X_test"},
        )
    classes = getattr(float_model, "classes_", None)
    if classes is not None and _labels(np.asarray(classes)) != qmodel.labels:
        raise ValidationFailed(
            f"the float model's classes {_labels(np.asarray(classes))} are not the int8 "
            f"model's labels {qmodel.labels}",
            details={"field": "qmodel"},
        )
    float_pred = [str(label) for label in np.asarray(float_model.predict(x))]
    int8_pred = qmodel.predict(x)
    n = len(truth)
    float_correct = sum(p == t for p, t in zip(float_pred, truth, strict=True))
    int8_correct = sum(p == t for p, t in zip(int8_pred, truth, strict=True))
    agreeing = sum(p == q for p, q in zip(float_pred, int8_pred, strict=True))
    return {
        "float_accuracy": float_correct / n,
        "int8_accuracy": int8_correct / n,
        "drop_points": 100.0 * (float_correct - int8_correct) / n,  # exact at the bound
        "agreement": agreeing / n,
        "n": n,
    }


def check_accuracy_drop(
    report: Mapping[str, Any], max_drop_points: float = 1.0
) -> Mapping[str, Any]:
    """``report`` (from :func:`compare`) if int8 loses at most ``max_drop_points``
    percentage points of accuracy; else :class:`QuantizationGateFailed` (HTTP 422)."""
    if not (isinstance(max_drop_points, int | float) and math.isfinite(max_drop_points)):
        raise ValidationFailed(
            f"max_drop_points must be a finite number, got {max_drop_points!r}",
            details={"field": "max_drop_points"},
        )
    drop = float(report["drop_points"])
    if drop > max_drop_points:
        raise QuantizationGateFailed(
            f"int8 accuracy {100 * report['int8_accuracy']:.2f}% vs float "
            f"{100 * report['float_accuracy']:.2f}%: a drop of {drop:.2f} points exceeds the "
            f"bound of {max_drop_points:g} points",
            details={"report": dict(report), "max_drop_points": max_drop_points},
        )
    return report
