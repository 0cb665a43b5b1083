"""A small 1-D convolutional classifier in pure numpy, shaped for int8 export.

:class:`Conv1DClassifier` learns from windows ``X`` of shape ``(n, length, channels)``::

    standardise per channel -> conv1d ("valid", stride 1) + ReLU -> max pool (size = stride)
    -> flatten (channels-last reshape) -> [dense + ReLU] -> dense (logits) -> softmax

It is trained with Adam on the softmax cross-entropy, in float64, and is deterministic: the
same data and ``random_state`` give the same weights bit for bit. Layouts are those of
:mod:`edgeloop.edge.runtime` (``conv_weights_[filters, kernel, channels]``, dense
``weights[n_out, n_in]``), so :func:`edgeloop.edge._quantize.quantize` maps the layers one to
one; :meth:`Conv1DClassifier.float_forward` gives the activations it calibrates on.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(64, 32, 2)); y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
>>> model = Conv1DClassifier(filters=4, epochs=5).fit(X, y)
>>> model.predict(X[:3]).shape
(3,)
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed

__all__ = ["Conv1DClassifier"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_PREDICT_BATCH = 512  # windows per forward pass when predicting (bounds the im2col buffer)
_PARAMS = (
    "filters",
    "kernel_size",
    "pool_size",
    "hidden",
    "epochs",
    "batch_size",
    "learning_rate",
    "random_state",
)


def _positive_int(name: str, value: object, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValidationFailed(
            f"{name} must be an integer >= {low}, got {value!r}", details={"field": name}
        )
    return int(value)


def _windows(X: object, field: str = "X") -> F64:
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{field} must be numeric windows: {exc}") from exc
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValidationFailed(
            f"{field} must have shape (n_windows >= 1, length, channels), got {x.shape}",
            details={"field": field},
        )
    if not np.all(np.isfinite(x)):
        raise ValidationFailed(f"{field} holds NaN or infinite values", details={"field": field})
    return x


class Conv1DClassifier:
    """conv1d + ReLU -> max pool -> flatten -> [dense + ReLU] -> dense, softmax-trained.

    Parameters: ``filters`` and ``kernel_size`` of the convolution, ``pool_size`` (pool size
    and stride), ``hidden`` (width of an optional dense + ReLU layer; 0 for none), and the
    Adam run: ``epochs``, ``batch_size``, ``learning_rate``, ``random_state`` (initial
    weights and the shuffling of every epoch).

    Learned state: ``classes_``, ``input_shape_`` ``(length, channels)``, ``mean_`` and
    ``std_`` (per channel, from ``fit``), ``conv_weights_`` ``[filters, kernel, channels]``,
    ``conv_bias_``, and ``dense_weights_`` / ``dense_biases_`` (one or two layers,
    ``weights[n_out, n_in]``; every layer but the last has a ReLU). ``loss_curve_`` holds the
    mean training loss of each epoch.
    """

    def __init__(
        self,
        filters: int = 8,
        kernel_size: int = 5,
        pool_size: int = 2,
        hidden: int = 0,
        epochs: int = 30,
        batch_size: int = 32,
        learning_rate: float = 1e-2,
        random_state: int = 0,
    ) -> None:
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    # scikit-learn's parameter protocol ------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> Self:
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValidationFailed(
                    f"Conv1DClassifier has no param {name!r}; it has {', '.join(_PARAMS)}",
                    details={"field": name, "allowed": list(_PARAMS)},
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Conv1DClassifier({args})"

    # training -----------------------------------------------------------------------------

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        """Train on windows ``X`` ``(n, length, channels)`` and labels ``y`` ``(n,)``."""
        filters = _positive_int("filters", self.filters)
        kernel = _positive_int("kernel_size", self.kernel_size)
        pool = _positive_int("pool_size", self.pool_size)
        hidden = _positive_int("hidden", self.hidden, low=0)
        epochs = _positive_int("epochs", self.epochs)
        batch_size = _positive_int("batch_size", self.batch_size)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise ValidationFailed(
                f"learning_rate must be a finite number > 0, got {lr!r}",
                details={"field": "learning_rate"},
            )
        seed = _positive_int("random_state", self.random_state, low=0)
        x = _windows(X)
        n, length, channels = x.shape
        if length - kernel + 1 < pool:
            raise ValidationFailed(
                f"windows of length {length} are too short for kernel_size {kernel} and "
                f"pool_size {pool}: length must be >= {kernel + pool - 1}",
                details={"field": "X"},
            )
        labels = np.asarray(y)
        if labels.shape != (n,):
            raise ValidationFailed(
                f"y must have shape ({n},) to match X, got {labels.shape}", details={"field": "y"}
            )
        classes, target = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValidationFailed("y must hold at least 2 classes", details={"field": "y"})

        mean = x.mean(axis=(0, 1))
        std = x.std(axis=(0, 1))
        std = np.where(std > 1e-12, std, 1.0)
        z = (x - mean) / std
        pooled_len = (length - kernel + 1) // pool

        rng = np.random.default_rng(seed)
        sizes = [pooled_len * filters, *([hidden] if hidden else []), len(classes)]
        params: list[F64] = [
            rng.normal(0.0, math.sqrt(2.0 / (kernel * channels)), (filters, kernel, channels)),
            np.zeros(filters),
        ]
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = i == len(sizes) - 2
            std_w = math.sqrt(2.0 / (n_in + n_out)) if last else math.sqrt(2.0 / n_in)
            params += [rng.normal(0.0, std_w, (n_out, n_in)), np.zeros(n_out)]
        self._set(params, classes, (length, channels), mean, std)

        first = [np.zeros_like(p) for p in params]
        second = [np.zeros_like(p) for p in params]
        onehot = np.eye(len(classes))[target]
        step = 0
        losses: list[float] = []
        for _ in range(epochs):
            order = rng.permutation(n)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                loss, grads = self._gradients(z[batch], onehot[batch])
                total += loss * len(batch)
                step += 1
                correction = math.sqrt(1.0 - _BETA2**step) / (1.0 - _BETA1**step)
                for p, g, m, v in zip(params, grads, first, second, strict=True):
                    m *= _BETA1
                    m += (1.0 - _BETA1) * g
                    v *= _BETA2
                    v += (1.0 - _BETA2) * g * g
                    p -= lr * correction * m / (np.sqrt(v) + _EPS)
            losses.append(total / n)
        self.loss_curve_ = losses
        return self

    def _set(
        self,
        params: list[F64],
        classes: npt.NDArray[Any],
        shape: tuple[int, int],
        mean: F64,
        std: F64,
    ) -> None:
        self.classes_ = classes
        self.input_shape_ = shape
        self.mean_ = mean
        self.std_ = std
        self.conv_weights_ = params[0]
        self.conv_bias_ = params[1]
        self.dense_weights_ = params[2::2]
        self.dense_biases_ = params[3::2]

    def _gradients(self, z: F64, onehot: F64) -> tuple[float, list[F64]]:
        """Mean cross-entropy of a standardised batch and its gradients, in param order."""
        batch = z.shape[0]
        patches, conv, arg, acts = self._forward(z)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -float(np.sum(onehot * log_proba)) / batch
        delta = (np.exp(log_proba) - onehot) / batch

        dense_grads: list[F64] = []
        for i in range(len(self.dense_weights_) - 1, -1, -1):
            inputs = acts[i]
            dense_grads = [delta.T @ inputs, delta.sum(axis=0), *dense_grads]
            delta = delta @ self.dense_weights_[i]
            if i > 0:
                delta = delta * (inputs > 0)

        filters = self.conv_weights_.shape[0]
        pooled_len = arg.shape[1]
        pool = self.pool_size
        windows = np.zeros((batch, pooled_len, pool, filters))
        np.put_along_axis(
            windows, arg[:, :, None, :], delta.reshape(batch, pooled_len, 1, filters), axis=2
        )
        d_conv = np.zeros_like(conv)
        d_conv[:, : pooled_len * pool] = windows.reshape(batch, pooled_len * pool, filters)
        d_conv *= conv > 0
        flat = d_conv.reshape(-1, filters)
        d_weights = (flat.T @ patches.reshape(flat.shape[0], -1)).reshape(self.conv_weights_.shape)
        return loss, [d_weights, flat.sum(axis=0), *dense_grads]

    def _forward(self, z: F64) -> tuple[F64, F64, I64, list[F64]]:
        """im2col patches, conv pre-activations, pooling argmax, and the dense chain's
        activations (flattened pool output, hidden ReLU outputs, logits)."""
        filters, kernel, channels = self.conv_weights_.shape
        batch, length, _ = z.shape
        out_len = length - kernel + 1
        idx = np.arange(out_len)[:, None] + np.arange(kernel)[None, :]
        patches = z[:, idx, :].reshape(batch, out_len, kernel * channels)
        conv = patches @ self.conv_weights_.reshape(filters, -1).T + self.conv_bias_
        relu = np.maximum(conv, 0.0)
        pool = self.pool_size
        pooled_len = out_len // pool
        windows = relu[:, : pooled_len * pool].reshape(batch, pooled_len, pool, filters)
        arg = windows.argmax(axis=2)
        pooled = np.take_along_axis(windows, arg[:, :, None, :], axis=2)[:, :, 0, :]
        acts = [pooled.reshape(batch, -1)]
        last = len(self.dense_weights_) - 1
        for i, (w, b) in enumerate(zip(self.dense_weights_, self.dense_biases_, strict=True)):
            out = acts[-1] @ w.T + b
            acts.append(out if i == last else np.maximum(out, 0.0))
        return patches, conv, arg, acts

    # inference ------------------------------------------------------------------------------

    def _standardised(self, X: npt.ArrayLike) -> F64:
        if not hasattr(self, "classes_"):
            raise ValidationFailed("this Conv1DClassifier is not fitted yet: call fit first")
        x = _windows(X)
        if x.shape[1:] != self.input_shape_:
            raise ValidationFailed(
                f"X must hold windows of shape {self.input_shape_} (as in fit), got {x.shape[1:]}",
                details={"field": "X"},
            )
        z: F64 = (x - self.mean_) / self.std_
        return z

    def float_forward(self, X: npt.ArrayLike) -> list[F64]:
        """The float activations of every layer, for calibration: the standardised input
        ``(n, length, channels)``, then one array per layer in :mod:`~edgeloop.edge.runtime`
        order: conv + ReLU ``(n, out_len, filters)``, max pool, flatten, [dense + ReLU], and
        the logits ``(n, n_classes)``."""
        z = self._standardised(X)
        _, conv, _, acts = self._forward(z)
        filters = self.conv_weights_.shape[0]
        pooled = acts[0].reshape(z.shape[0], -1, filters)
        return [z, np.maximum(conv, 0.0), pooled, *acts]

    def decision_function(self, X: npt.ArrayLike) -> F64:
        """The logits ``(n, n_classes)``."""
        z = self._standardised(X)
        parts = [
            self._forward(z[i : i + _PREDICT_BATCH])[3][-1]
            for i in range(0, len(z), _PREDICT_BATCH)
        ]
        logits: F64 = np.concatenate(parts)
        return logits

    def predict_proba(self, X: npt.ArrayLike) -> F64:
        """Class probabilities ``(n, n_classes)``, columns in ``classes_`` order."""
        logits = self.decision_function(X)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba: F64 = e / e.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """The most likely class of each window."""
        logits = self.decision_function(X)
        result: npt.NDArray[Any] = self.classes_[np.argmax(logits, axis=1)]
        return result

    def score(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """Accuracy of :meth:`predict` against ``y``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
