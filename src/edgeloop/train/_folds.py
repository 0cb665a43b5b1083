"""The folds a search scores on: k-fold, stratified, group, or a recorded fold per row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import GroupKFold, KFold, PredefinedSplit, StratifiedKFold
from sklearn.utils.multiclass import type_of_target

from edgeloop.errors import ValidationFailed
from edgeloop.train._zoo import REGRESSION_METRICS, Task

if TYPE_CHECKING:
    from edgeloop.train._search import SearchSpec

__all__ = ["Split", "check_data", "cv_splits", "make_splits"]

IntArray = npt.NDArray[np.intp]
Split = tuple[IntArray, IntArray]
"""``(train_rows, test_rows)``: row indices."""


def check_data(X: npt.ArrayLike, y: npt.ArrayLike, task: Task) -> tuple[Any, Any]:
    """``X`` and ``y`` as arrays, checked: 2-D ``X``, one ``y`` per row, class labels for a
    classifier (at least two classes) and numbers for a regressor."""
    X_arr, y_arr = np.asarray(X), np.asarray(y)
    if X_arr.ndim != 2 or X_arr.shape[1] < 1:
        raise ValidationFailed(f"X must be 2-D (rows x features), got shape {X_arr.shape}")
    if y_arr.ndim != 1 or len(y_arr) != len(X_arr):
        raise ValidationFailed(
            f"y must be 1-D with one value per row of X ({len(X_arr)}), got shape {y_arr.shape}"
        )
    kind = type_of_target(y_arr)
    if task == "classification":
        if kind not in ("binary", "multiclass"):
            raise ValidationFailed(
                f"y is {kind}, but a classification search needs class labels: for a numeric "
                f"target use a regression model and metric ({', '.join(REGRESSION_METRICS)})"
            )
        if len(np.unique(y_arr)) < 2:
            raise ValidationFailed("y holds a single class; a classifier needs at least two")
    elif not np.issubdtype(y_arr.dtype, np.number) or np.issubdtype(y_arr.dtype, np.bool_):
        raise ValidationFailed(f"a regression search needs a numeric y, got dtype {y_arr.dtype}")
    return X_arr, y_arr


def _per_row(name: str, value: npt.ArrayLike, n: int) -> Any:
    arr = np.asarray(value)
    if arr.ndim != 1 or len(arr) != n:
        raise ValidationFailed(f"{name} must hold one value per row ({n}), got shape {arr.shape}")
    return arr


def cv_splits(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    spec: SearchSpec,
    *,
    groups: npt.ArrayLike | None = None,
    folds: npt.ArrayLike | None = None,
) -> list[Split]:
    """The ``(train_rows, test_rows)`` index pairs :func:`~edgeloop.train.search` scores
    every trial on.

    Raises :class:`ValidationFailed` when the folds cannot be made: more folds than rows,
    groups or (stratified) members of the smallest class; ``cv="folds"`` without ``folds``;
    ``cv_method="group"`` without ``groups``; ``folds`` or ``groups`` that would be ignored.
    """
    X_arr, y_arr = check_data(X, y, spec.task)
    return make_splits(X_arr, y_arr, spec, groups, folds)


def make_splits(
    X: Any, y: Any, spec: SearchSpec, groups: npt.ArrayLike | None, folds: npt.ArrayLike | None
) -> list[Split]:
    """:func:`cv_splits` on data already through :func:`check_data`."""
    n = len(X)
    if groups is not None and (spec.cv == "folds" or spec.cv_method != "group"):
        raise ValidationFailed(
            "groups are used only with cv_method='group' (and an integer cv); "
            f"this spec has cv={spec.cv!r}, cv_method={spec.cv_method!r}"
        )
    if spec.cv == "folds":
        if folds is None:
            raise ValidationFailed(
                "cv='folds' needs folds: the fold index of every row (e.g. from assign_folds)"
            )
        fold_arr = _per_row("folds", folds, n)
        if not np.issubdtype(fold_arr.dtype, np.integer):
            raise ValidationFailed(f"folds must be integers, got dtype {fold_arr.dtype}")
        splitter: Any = PredefinedSplit(fold_arr)
        if splitter.get_n_splits() < 2:
            raise ValidationFailed("folds must name at least 2 distinct folds (indices >= 0)")
        return [(train, test) for train, test in splitter.split()]
    if folds is not None:
        raise ValidationFailed(f"folds were given but cv={spec.cv!r}: pass cv='folds' to use them")
    k = spec.cv
    if k > n:
        raise ValidationFailed(f"cv={k} needs at least {k} rows; X has {n}")
    if spec.cv_method == "group":
        if groups is None:
            raise ValidationFailed(
                "cv_method='group' needs groups: the group (subject, device, ...) of every row"
            )
        group_arr = _per_row("groups", groups, n)
        n_groups = len(np.unique(group_arr))
        if k > n_groups:
            raise ValidationFailed(
                f"cv={k} group folds need at least {k} groups; there are {n_groups}"
            )
        splitter = GroupKFold(n_splits=k, shuffle=True, random_state=spec.seed)
        return [(train, test) for train, test in splitter.split(X, y, group_arr)]
    if spec.cv_method == "stratified" and spec.task == "classification":
        labels, counts = np.unique(y, return_counts=True)
        smallest = int(np.argmin(counts))
        if k > counts[smallest]:
            label = labels[smallest]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValidationFailed(
                f"cv={k} stratified folds need at least {k} rows of every class; class "
                f"{label!r} has {counts[smallest]}: lower cv or use cv_method='kfold'"
            )
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=spec.seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=spec.seed)
    return [(train, test) for train, test in splitter.split(X, y)]
