"""Tree ensembles as integer comparisons: :class:`QuantizedTrees` and its numpy reference.

This module imports only numpy and the standard library (and :mod:`edgeloop.errors`): the
device agent may run it. scikit-learn models are read by duck typing (class names and fitted
attributes), so not even the conversion imports scikit-learn.

:func:`quantize_trees` converts a fitted ``DecisionTreeClassifier``,
``RandomForestClassifier``, ``ExtraTreesClassifier`` or ``GradientBoostingClassifier``
(binary or multiclass), optionally in a ``Pipeline`` after a ``StandardScaler`` (folded:
thresholds move to the raw feature scale).

Inputs
------
Every feature gets an affine int16 quantization from its calibration range, widened to
cover every threshold tested on it (plus a margin of 268 steps on each side, so no threshold
sits on a saturated value). ``offset`` is the real value that maps to 0 (the zero point, in
real units: a real zero point keeps full resolution for features far from 0) and ``scale``
the step. In float32, in this order (C code doing the same single-precision operations
gets the same int16 values)::

    r = floor((x - offset) * inv_scale + 0.5)       # inv_scale = float32(1) / scale
    q = clip(r, -32768, 32767)

so -inf is sent left at every node and +inf right. NaN is refused (``ValueError`` here,
``ERR_INPUT`` in C): scikit-learn's trees route it by rules int16 comparisons cannot follow.

Thresholds
----------
scikit-learn sends a sample left when ``float32(x) <= threshold`` (``x`` standardised when a
StandardScaler is folded). The int16 threshold starts as ``t_q = q(t32)``, ``t32`` the
largest float32 ``<= threshold`` on the raw scale: ``q`` is monotonic, so every sample
scikit-learn sends left goes left, and one goes left by mistake only when ``q(x) == t_q``
while ``x > threshold``, within one quantization step above the threshold. Thresholds can
sit within a float32 rounding of a data value (after standardisation, for one), so ``t_q``
is then clipped to ``[q(a), q(b) - 1]``, where ``a`` is the largest calibration value
scikit-learn sends left and ``b`` the smallest it sends right, unless ``q(a) == q(b)``. That
moves a threshold by at most one step, and ``q(x) <= t_q`` reproduces scikit-learn on every
calibration value except where values on both sides share one int16 step.

Leaves and scores
-----------------
The integer score vector is summed over trees; the class is its argmax (ties to the lowest
index), except for one output (binary gradient boosting: a logit, class 1 when >= 0,
as scikit-learn decides)::

    tree      leaf = class index (uint16); scores are one-hot            score_scale 1
    forest    leaf = per-class probabilities, round(p * 65535) (uint16)  1 / (65535 trees)
    boosting  leaf = round(learning_rate * value * 2**frac_bits) (int32),
              scores start at the init score (int32)                     2**-frac_bits

``scores`` are the integer scores times ``score_scale`` in float32: mean class
probabilities for a forest, the decision function for boosting.

Nodes
-----
Internal nodes of all trees share the arrays ``feature``, ``threshold``, ``left`` and
``right``; a child ``c >= 0`` is an internal node, ``c < 0`` the leaf ``-c - 1`` (a row of
``leaf_values``). ``roots`` holds each tree's root in the same encoding, ``tree_output``
the score each boosting tree adds to.

>>> from sklearn.tree import DecisionTreeClassifier
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = ["a", "a", "b", "b"]
>>> trees = quantize_trees(DecisionTreeClassifier().fit(X, y), X)
>>> trees.predict(X)
['a', 'a', 'b', 'b']
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed

__all__ = ["FORMAT", "SUPPORTED_ESTIMATORS", "QuantizedTrees", "quantize_trees"]

FORMAT = "edgeloop-trees/1"
SUPPORTED_ESTIMATORS: tuple[str, ...] = (
    "DecisionTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
)
"""scikit-learn classifiers :func:`quantize_trees` converts (and their subclasses)."""

Kind = Literal["tree", "forest", "boosting"]
I16_MIN, I16_MAX = -32768, 32767
VOTE_ONE = 65535  # a forest leaf's probability 1.0
_STEPS = 65000  # quantization steps across a feature's widened range (the rest is margin)
_INT32_MAX = 2**31 - 1
_SUPPORTED = (
    "a fitted sklearn DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier "
    "or GradientBoostingClassifier, optionally in a Pipeline after a StandardScaler"
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
Int = npt.NDArray[np.signedinteger[Any]] | npt.NDArray[np.unsignedinteger[Any]]


def quantize_features(x: npt.ArrayLike, offset: F32, inv_scale: F32) -> I16:
    """Float samples ``(n, n_features)`` to int16, with the float32 operations of the C code."""
    xf = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.floor((xf - offset) * inv_scale + np.float32(0.5))
    q: I16 = np.clip(np.nan_to_num(r, nan=I16_MIN), I16_MIN, I16_MAX).astype(np.int16)
    return q


@dataclass(frozen=True)
class QuantizedTrees:
    """A tree ensemble with int16 thresholds and integer leaves (see the module docstring).

    ``predict`` gives labels, ``predict_index`` class indices, ``int_scores`` the integer
    scores the C code computes and ``scores`` those times ``score_scale`` (float32).
    """

    kind: Kind
    labels: tuple[str, ...]
    feature_offset: F32
    feature_scale: F32
    feature: U16
    threshold: I16
    left: Int
    right: Int
    roots: I32
    tree_output: U16
    leaf_values: Int
    init: I32
    score_scale: float
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_features = self.feature_offset.shape[0] if self.feature_offset.ndim == 1 else -1
        n_nodes, n_leaves = self.feature.shape[0], self.leaf_values.shape[0]
        problems = []
        if self.kind not in ("tree", "forest", "boosting"):
            problems.append(f"kind {self.kind!r} is not tree, forest or boosting")
        if len(self.labels) < 2:
            problems.append("at least 2 labels are needed")
        if n_features < 1 or self.feature_scale.shape != (n_features,):
            problems.append("feature_offset and feature_scale must be equal 1-D arrays")
        elif not (np.all(np.isfinite(self.feature_offset)) and np.all(self.feature_scale > 0)):
            problems.append("feature offsets must be finite and scales > 0")
        if any(a.shape != (n_nodes,) for a in (self.threshold, self.left, self.right)):
            problems.append("feature, threshold, left and right must have one entry per node")
        elif n_nodes and int(self.feature.max()) >= max(n_features, 0):
            problems.append("a node tests a feature beyond n_features")
        children = np.concatenate([self.left, self.right, self.roots]).astype(np.int64)
        if children.size and (children.max() >= n_nodes or children.min() < -n_leaves):
            problems.append("a child or root points beyond the node or leaf arrays")
        if (
            self.roots.ndim != 1
            or self.roots.size < 1
            or self.tree_output.shape != self.roots.shape
        ):
            problems.append("roots and tree_output must have one entry per tree (>= 1)")
        elif self.tree_output.size and int(self.tree_output.max()) >= self.n_outputs:
            problems.append("a tree adds to an output beyond n_outputs")
        width = self.n_outputs if self.kind == "forest" else 1
        if self.leaf_values.ndim != 2 or self.leaf_values.shape[1] != width:
            problems.append(f"leaf_values must have shape (n_leaves, {width})")
        elif self.kind == "tree" and n_leaves and int(self.leaf_values.max()) >= len(self.labels):
            problems.append("a leaf names a class beyond the labels")
        if self.init.shape != (self.n_outputs,):
            problems.append(f"init must have shape ({self.n_outputs},)")
        if not (math.isfinite(self.score_scale) and self.score_scale > 0):
            problems.append("score_scale must be finite and > 0")
        leaf_dtype = "int32" if self.kind == "boosting" else "uint16"
        dtypes = {
            "feature_offset": ("float32",),
            "feature_scale": ("float32",),
            "feature": ("uint16",),
            "threshold": ("int16",),
            "left": ("int16", "int32"),
            "right": ("int16", "int32"),
            "roots": ("int32",),
            "tree_output": ("uint16",),
            "leaf_values": (leaf_dtype,),
            "init": ("int32",),
        }
        for name, allowed in dtypes.items():
            if str(getattr(self, name).dtype) not in allowed:
                problems.append(f"{name} must be {' or '.join(allowed)}")
        if problems:
            raise ValueError("invalid QuantizedTrees: " + "; ".join(problems))

    # shapes, sizes, costs ------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return int(self.feature_offset.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_features,)

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def n_outputs(self) -> int:
        """Score units: one per class, or 1 (a logit) for binary gradient boosting."""
        return 1 if self.kind == "boosting" and len(self.labels) == 2 else len(self.labels)

    @property
    def feature_inv_scale(self) -> F32:
        inv: F32 = np.float32(1.0) / self.feature_scale
        return inv

    def depths(self) -> list[int]:
        """Each tree's depth: the most comparisons on a path from its root to a leaf."""
        result = []
        for root in self.roots.tolist():
            depth, level = 0, [root] if root >= 0 else []
            while level:
                depth += 1
                level = [
                    c for n in level for c in (int(self.left[n]), int(self.right[n])) if c >= 0
                ]
            result.append(depth)
        return result

    def operations(self) -> dict[str, int]:
        """Worst-case operations per inference: ``compare`` (node tests, the sum of tree
        depths), ``add`` (score additions: trees x classes for a forest, one per tree for
        boosting, none for a single tree) and ``quantize`` (float inputs quantized)."""
        adds = {"tree": 0, "forest": self.n_trees * self.n_outputs, "boosting": self.n_trees}
        return {
            "compare": sum(self.depths()),
            "add": adds[self.kind],
            "quantize": self.n_features,
        }

    def node_bytes(self) -> int:
        """Bytes of the node tables (feature, threshold, children, roots, tree outputs)."""
        arrays = (self.feature, self.threshold, self.left, self.right, self.roots)
        outputs = self.tree_output.nbytes if self.kind == "boosting" else 0
        return sum(int(a.nbytes) for a in arrays) + outputs

    def leaf_bytes(self) -> int:
        """Bytes of the leaf values (and the init scores of boosting)."""
        init = self.init.nbytes if self.kind == "boosting" else 0
        return int(self.leaf_values.nbytes) + init

    def weight_bytes(self) -> int:
        """All constant tables: nodes, leaves and the float32 input offsets and scales."""
        return self.node_bytes() + self.leaf_bytes() + 8 * self.n_features

    def arena_bytes(self) -> int:
        """RAM per inference: the int16 quantized input and the int32 scores."""
        return 2 * self.n_features + 4 * self.n_outputs

    # execution ----------------------------------------------------------------------------

    def quantize_input(self, x: npt.ArrayLike) -> I16:
        """Float samples ``(n, n_features)`` to int16, exactly as the C code does it."""
        xf = np.asarray(x, dtype=np.float32)
        if xf.ndim != 2 or xf.shape[1] != self.n_features:
            raise ValueError(f"expected samples of shape ({self.n_features},), got {xf.shape[1:]}")
        if np.isnan(xf).any():
            raise ValueError("the samples hold NaN values, which tree models cannot route")
        return quantize_features(xf, self.feature_offset, self.feature_inv_scale)

    def leaves(self, q: npt.ArrayLike) -> I64:
        """The leaf each tree reaches for int16 samples ``q``: ``(n, n_trees)``."""
        qi = np.asarray(q, dtype=np.int16)
        node = np.broadcast_to(self.roots.astype(np.int64), (qi.shape[0], self.n_trees)).copy()
        rows = np.arange(qi.shape[0])[:, None]
        feature = self.feature.astype(np.int64)
        left, right = self.left.astype(np.int64), self.right.astype(np.int64)
        while self.feature.size and (active := node >= 0).any():
            at = np.where(active, node, 0)
            go_left = qi[rows, feature[at]] <= self.threshold[at]
            node = np.where(active, np.where(go_left, left[at], right[at]), node)
        leaves: I64 = -node - 1
        return leaves

    def int_scores(self, x: npt.ArrayLike) -> I32:
        """The integer scores ``(n, n_outputs)`` of float samples, as the C code sums them."""
        leaves = self.leaves(self.quantize_input(x))
        n = leaves.shape[0]
        values = self.leaf_values.astype(np.int64)
        if self.kind == "tree":
            scores = np.zeros((n, self.n_outputs), dtype=np.int64)
            scores[np.arange(n), values[leaves[:, 0], 0]] = 1
        elif self.kind == "forest":
            scores = values[leaves].sum(axis=1)
        else:
            scores = np.broadcast_to(self.init.astype(np.int64), (n, self.n_outputs)).copy()
            for k in range(self.n_outputs):
                mine = self.tree_output == k
                scores[:, k] += values[leaves[:, mine], 0].sum(axis=1)
        return scores.astype(np.int32)

    def scores(self, x: npt.ArrayLike) -> F32:
        """``int_scores`` times ``score_scale`` in float32: mean class probabilities for a
        forest, the decision function for boosting, one-hot for a single tree."""
        ints = self.int_scores(x)
        scaled: F32 = ints.astype(np.float32) * np.float32(self.score_scale)
        return scaled

    def predict_index(self, x: npt.ArrayLike) -> I64:
        s = self.int_scores(x)
        if s.shape[1] == 1:
            return (s[:, 0] >= 0).astype(np.int64)  # as GradientBoostingClassifier.predict
        return np.asarray(np.argmax(s, axis=1), dtype=np.int64)

    def predict(self, x: npt.ArrayLike) -> list[str]:
        return [self.labels[i] for i in self.predict_index(x)]

    # serialisation: one .npz holding a JSON header and the arrays ----------------------------

    _ARRAYS = (
        "feature_offset",
        "feature_scale",
        "feature",
        "threshold",
        "left",
        "right",
        "roots",
        "tree_output",
        "leaf_values",
        "init",
    )

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {name: getattr(self, name) for name in self._ARRAYS}
        header = {
            "format": FORMAT,
            "kind": self.kind,
            "labels": list(self.labels),
            "score_scale": self.score_scale,
            "meta": dict(self.meta),
        }
        arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantizedTrees:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
        if header.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} model: format {header.get('format')!r}")
        return cls(
            kind=header["kind"],
            labels=tuple(str(label) for label in header["labels"]),
            score_scale=float(header["score_scale"]),
            meta=header.get("meta", {}),
            **{name: arrays[name] for name in cls._ARRAYS},
        )


# ---- reading scikit-learn models ------------------------------------------------------------


def _is(obj: object, name: str) -> bool:
    return any(c.__name__ == name for c in type(obj).__mro__)


def _invalid(message: str, name: str = "model") -> ValidationFailed:
    return ValidationFailed(message, details={"field": name})


@dataclass
class _RawTree:
    """One sklearn tree in the shared layout, with scikit-learn's float thresholds."""

    feature: I64
    threshold: F64
    left: I64  # tree-local: internal node index, or -(leaf + 1)
    right: I64
    root: int
    leaf_value: F64  # (n_leaves, n_classes) for classifier trees, (n_leaves, 1) for boosting
    output: int = 0


def _read_tree(tree: Any) -> _RawTree:
    left_all = np.asarray(tree.children_left, dtype=np.int64)
    right_all = np.asarray(tree.children_right, dtype=np.int64)
    value = np.asarray(tree.value, dtype=np.float64)
    if value.ndim != 3 or value.shape[1] != 1:
        raise _invalid("multi-output trees cannot be quantized: fit on a single target")
    leaf = left_all < 0
    internal = np.flatnonzero(~leaf)
    leaves = np.flatnonzero(leaf)
    index = np.empty(left_all.shape[0], dtype=np.int64)
    index[internal] = np.arange(internal.size)
    index[leaves] = -np.arange(leaves.size) - 1
    feature = np.asarray(tree.feature, dtype=np.int64)[internal]
    threshold = np.asarray(tree.threshold, dtype=np.float64)[internal]
    return _RawTree(
        feature=feature,
        threshold=threshold,
        left=index[left_all[internal]],
        right=index[right_all[internal]],
        root=int(index[0]),
        leaf_value=value[leaves, 0, :],
    )


def _scaler(step: Any, n_features: int) -> tuple[F64, F64]:
    mean = getattr(step, "mean_", None)
    scale = getattr(step, "scale_", None)
    if not hasattr(step, "n_features_in_"):
        raise _invalid("the StandardScaler is not fitted: fit the Pipeline first")
    if int(step.n_features_in_) != n_features:
        raise _invalid(
            f"the StandardScaler has {step.n_features_in_} features but the trees expect "
            f"{n_features}"
        )
    return (
        np.zeros(n_features) if mean is None else np.asarray(mean, dtype=np.float64),
        np.ones(n_features) if scale is None else np.asarray(scale, dtype=np.float64),
    )


def _unwrap(model: object) -> tuple[Any, Any | None, str]:
    """The tree estimator, the StandardScaler before it (or None), and a source name."""
    if not _is(model, "Pipeline"):
        return model, None, ""
    steps = [s for _, s in getattr(model, "steps", []) if s is not None and s != "passthrough"]
    if len(steps) == 1:
        return steps[0], None, ""
    if len(steps) == 2 and _is(steps[0], "StandardScaler"):
        return steps[1], steps[0], "standard_scaler+"
    names = ", ".join(type(s).__name__ for s in steps)
    raise _invalid(f"cannot convert a Pipeline of {names}: expected {_SUPPORTED}")


_KINDS: tuple[tuple[str, Kind, str], ...] = (
    ("DecisionTreeClassifier", "tree", "decision_tree"),
    ("RandomForestClassifier", "forest", "random_forest"),
    ("ExtraTreesClassifier", "forest", "extra_trees"),
    ("GradientBoostingClassifier", "boosting", "gradient_boosting"),
)


def _kind(estimator: object) -> tuple[Kind, str]:
    for name, kind, source in _KINDS:
        if _is(estimator, name):
            return kind, source
    raise _invalid(f"cannot convert a {type(estimator).__name__}: expected {_SUPPORTED}")


def _n_features(estimator: Any) -> int:
    if not hasattr(estimator, "n_features_in_") or not hasattr(estimator, "classes_"):
        raise _invalid(f"the {type(estimator).__name__} is not fitted: fit it before converting")
    if int(estimator.n_features_in_) > 0xFFFF:
        raise _invalid(f"{estimator.n_features_in_} features exceed the uint16 feature index")
    if int(getattr(estimator, "n_outputs_", 1)) != 1:
        raise _invalid("multi-output classifiers cannot be converted: fit on a single target")
    return int(estimator.n_features_in_)


def _sklearn_trees(estimator: Any, kind: Kind) -> list[_RawTree]:
    if kind == "tree":
        return [_read_tree(estimator.tree_)]
    if kind == "forest":
        return [_read_tree(e.tree_) for e in estimator.estimators_]
    stages = np.asarray(estimator.estimators_, dtype=object)
    trees = []
    for stage in stages:
        for k, regressor in enumerate(stage):
            raw = _read_tree(regressor.tree_)
            raw.leaf_value = raw.leaf_value * float(estimator.learning_rate)
            raw.output = k
            trees.append(raw)
    return trees


def _boosting_init(estimator: Any, trees: Sequence[_RawTree], x: F64) -> F64:
    """The constant init score per output: the decision function minus the trees' sum, on
    the calibration samples (public API only; refuses a non-constant init estimator)."""
    decision = np.asarray(estimator.decision_function(x), dtype=np.float64).reshape(x.shape[0], -1)
    summed = np.zeros_like(decision)
    for k in range(decision.shape[1]):
        for stage in np.asarray(estimator.estimators_, dtype=object)[:, k]:
            summed[:, k] += float(estimator.learning_rate) * stage.predict(x)
    init = decision - summed
    if np.ptp(init, axis=0).max() > 1e-6 * max(1.0, float(np.abs(init).max())):
        raise _invalid(
            "the GradientBoostingClassifier's init estimator is not constant: use the "
            "default init (class priors) or init='zero'"
        )
    result: F64 = init[0]
    return result


# ---- quantizing -----------------------------------------------------------------------------


def _calibration(X_calib: object, n_features: int) -> F64:
    try:
        x = np.asarray(X_calib, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"X_calib must be numeric: {exc}", "X_calib") from exc
    if x.ndim != 2 or x.shape[1] != n_features or x.shape[0] < 1:
        raise _invalid(
            f"X_calib must have shape (n_samples >= 1, {n_features}), got {x.shape}", "X_calib"
        )
    if not np.all(np.isfinite(x)):
        raise _invalid(
            "X_calib holds NaN or infinite values: calibrate on clean samples", "X_calib"
        )
    return x


def _feature_params(x: F64, feature: I64, threshold: F64) -> tuple[F32, F32]:
    """Per-feature float32 ``(offset, scale)`` over the calibration and threshold range."""
    x32 = x.astype(np.float32).astype(np.float64)
    low, high = x32.min(axis=0), x32.max(axis=0)
    np.minimum.at(low, feature, threshold)
    np.maximum.at(high, feature, threshold)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise _invalid("a threshold is not finite")
    magnitude = np.maximum(np.abs(low), np.abs(high))
    span = np.maximum.reduce([high - low, magnitude * 2.0**-16, np.full_like(low, 1e-12)])
    scale = (span / _STEPS).astype(np.float32)
    offset = ((low + high) / 2).astype(np.float32)
    if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(np.float32(1.0) / scale))):
        raise _invalid("a feature's range is beyond float32", "X_calib")
    return offset, scale


def _largest_f32_at_most(values: F64) -> F32:
    t32 = values.astype(np.float32)
    over = t32.astype(np.float64) > values
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


def _threshold_q(
    x: F64, feature: I64, threshold: F64, mean: F64, scale: F64, offset: F32, inv_scale: F32
) -> I16:
    """The int16 thresholds: ``q(t32)``, ``t32`` the largest float32 ``<= threshold`` on the
    raw scale, moved by at most one step where that separates the calibration values
    scikit-learn sends left and right (``threshold`` is scikit-learn's, on its input scale:
    standardised by ``mean`` and ``scale`` when a StandardScaler was folded)."""
    raw = threshold * scale[feature] + mean[feature]
    t_q = np.zeros(feature.shape, dtype=np.int64)
    for f in np.unique(feature):
        nodes = np.flatnonzero(feature == f)
        cut = _largest_f32_at_most(raw[nodes])[:, None]
        t_q[nodes] = quantize_features(cut, offset[f], inv_scale[f])[:, 0]
        # scikit-learn's own comparison on the calibration values: float32(z) <= threshold
        values = np.unique(x[:, f])
        seen = ((values - mean[f]) / scale[f]).astype(np.float32).astype(np.float64)
        q_values = quantize_features(values[:, None], offset[f], inv_scale[f])[:, 0]
        q_values = q_values.astype(np.int64)
        n_left = np.searchsorted(seen, threshold[nodes], side="right")
        q_low = np.where(n_left > 0, q_values[np.maximum(n_left - 1, 0)], I16_MIN)
        q_high = np.where(
            n_left < values.size, q_values[np.minimum(n_left, values.size - 1)], I16_MAX + 1
        )
        separable = q_low < q_high
        t_q[nodes] = np.where(separable, np.clip(t_q[nodes], q_low, q_high - 1), t_q[nodes])
    return t_q.astype(np.int16)


def _rebase(children: I64, node_base: int, leaf_base: int) -> I64:
    """Tree-local child references to the shared arrays' references."""
    rebased: I64 = np.where(children >= 0, children + node_base, children - leaf_base)
    return rebased


def _smallest_int(values: I64) -> Int:
    if values.size == 0 or (values.min() >= I16_MIN and values.max() <= I16_MAX):
        return values.astype(np.int16)
    return values.astype(np.int32)


def _forest_votes(trees: Sequence[_RawTree]) -> U16:
    rows = []
    for tree in trees:
        totals = tree.leaf_value.sum(axis=1, keepdims=True)
        proba = tree.leaf_value / np.where(totals > 0, totals, 1.0)
        rows.append(np.round(proba * VOTE_ONE))
    return np.concatenate(rows).astype(np.uint16)


def _boosting_leaves(trees: Sequence[_RawTree], init: F64) -> tuple[I32, I32, int]:
    """Fixed-point leaves and init: the most ``frac_bits`` (<= 30) with every partial sum
    within 2**30 (room for rounding), so int32 sums never overflow."""
    bound = np.abs(init).copy()
    for tree in trees:
        bound[tree.output] += float(np.abs(tree.leaf_value).max(initial=0.0))
    worst = float(bound.max())
    frac_bits = 30 if worst <= 1.0 else min(30, math.floor(30 - math.log2(worst)))
    if frac_bits < 0:
        raise _invalid(f"the boosting scores reach {worst:.3g}: too large for int32 fixed point")
    factor = 2.0**frac_bits
    leaves = np.concatenate([np.round(t.leaf_value * factor) for t in trees])
    return leaves.astype(np.int32), np.round(init * factor).astype(np.int32), frac_bits


def quantize_trees(
    model: object, X_calib: npt.ArrayLike, *, labels: Sequence[str] | None = None
) -> QuantizedTrees:
    """The :class:`QuantizedTrees` of a fitted tree classifier, calibrated on ``X_calib``.

    ``X_calib`` holds raw float samples ``(n >= 1, n_features)`` without NaN: their range
    (widened by the thresholds) sets each feature's int16 scale. ``labels`` name the classes
    (default ``str(c)`` for each of ``model.classes_``). Raises :class:`ValidationFailed`
    for an unsupported or unfitted model or bad calibration data.
    """
    estimator, scaler, prefix = _unwrap(model)
    kind, source = _kind(estimator)
    n_features = _n_features(estimator)
    classes = np.asarray(estimator.classes_).reshape(-1)
    names = tuple(str(c) for c in classes)
    if labels is not None:
        names = tuple(str(label) for label in labels)
        if len(names) != classes.size:
            raise _invalid(
                f"labels names {len(names)} classes but the model has {classes.size}", "labels"
            )
    if len(names) < 2:
        raise _invalid("the model knows a single class: fit it on at least 2")
    if scaler is None:
        mean, scale = np.zeros(n_features), np.ones(n_features)
    else:
        mean, scale = _scaler(scaler, n_features)
    x = _calibration(X_calib, n_features)
    raw = _sklearn_trees(estimator, kind)
    if kind == "forest" and len(raw) * VOTE_ONE > _INT32_MAX:
        raise _invalid(f"a forest of {len(raw)} trees overflows int32 vote sums (max 32768)")

    lefts, rights, roots = [], [], []
    node_base, leaf_base = 0, 0
    for tree in raw:
        lefts.append(_rebase(tree.left, node_base, leaf_base))
        rights.append(_rebase(tree.right, node_base, leaf_base))
        roots.append(int(_rebase(np.array([tree.root]), node_base, leaf_base)[0]))
        node_base += tree.feature.size
        leaf_base += tree.leaf_value.shape[0]
    feature = np.concatenate([t.feature for t in raw])
    threshold = np.concatenate([t.threshold for t in raw])
    offset, feature_scale = _feature_params(x, feature, threshold * scale[feature] + mean[feature])
    inv_scale = np.float32(1.0) / feature_scale
    threshold_q = _threshold_q(x, feature, threshold, mean, scale, offset, inv_scale)

    init = np.zeros(len(names), dtype=np.int32)
    meta: dict[str, Any] = {"source": prefix + source, "calibration_samples": int(x.shape[0])}
    if kind == "tree":
        leaf_values: Int = np.argmax(raw[0].leaf_value, axis=1).astype(np.uint16)[:, None]
        score_scale = 1.0
    elif kind == "forest":
        leaf_values = _forest_votes(raw)
        score_scale = float(np.float32(1.0 / (VOTE_ONE * len(raw))))
    else:
        init_real = _boosting_init(estimator, raw, x)
        leaf_values, init, frac_bits = _boosting_leaves(raw, init_real)
        score_scale = 2.0**-frac_bits
        meta["frac_bits"] = frac_bits

    return QuantizedTrees(
        kind=kind,
        labels=names,
        feature_offset=offset,
        feature_scale=feature_scale,
        feature=feature.astype(np.uint16),
        threshold=threshold_q,
        left=_smallest_int(np.concatenate(lefts)),
        right=_smallest_int(np.concatenate(rights)),
        roots=np.array(roots, dtype=np.int32),
        tree_output=np.array([t.output for t in raw], dtype=np.uint16),
        leaf_values=leaf_values,
        init=init,
        score_scale=score_scale,
        meta=meta,
    )
