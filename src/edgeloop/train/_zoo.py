"""The model zoo: named scikit-learn estimators with defaults, a grid and a search space each.

Every entry of :data:`ZOO` is a :class:`ModelSpec`. :func:`make_model` builds an unfitted
estimator from a name and params; models that are sensitive to feature scale (linear models,
SVMs, k-NN, MLPs) come wrapped in a :class:`~sklearn.pipeline.Pipeline` behind a
:class:`~sklearn.preprocessing.StandardScaler`, and ``mlp_regressor`` also standardises the
target. Params always use the model's own names (``C``, ``max_depth``), never pipeline paths.
Grids and spaces are checked against the params each model accepts (see ``_space`` for
the space entries).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from edgeloop.errors import ValidationFailed
from edgeloop.train._space import SpaceEntry, check_space_entry

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "ZOO",
    "ModelSpec",
    "Task",
    "check_grid",
    "check_seed",
    "check_space",
    "get_model_spec",
    "make_model",
]

Task = Literal["classification", "regression"]
CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "f1_macro",
    "balanced_accuracy",
    "roc_auc_ovr",
    "neg_log_loss",
)
"""Scorer names a classification search can maximise."""
REGRESSION_METRICS: tuple[str, ...] = (
    "r2",
    "neg_mean_absolute_error",
    "neg_root_mean_squared_error",
)
"""Scorer names a regression search can maximise."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo.

    ``factory(**params)`` returns an unfitted estimator (a pipeline with a scaler where the
    model needs one); :func:`make_model` is the checked way to call it. ``params`` names every
    param the factory accepts; ``seeded`` says whether it takes ``random_state`` (which
    :func:`make_model` sets from its ``seed``, so it is never a param). ``grid`` is a small
    grid for grid search (every combination is tried); ``space`` is the space random search
    and Optuna sample from.
    """

    name: str
    task: Task
    factory: Callable[..., Any]
    default_params: Mapping[str, Any]
    grid: Mapping[str, Sequence[Any]]
    space: Mapping[str, SpaceEntry]
    params: frozenset[str]
    seeded: bool


def _build(estimator: type[Any], scale: bool, scale_target: bool, **params: Any) -> Any:
    model: Any = estimator(**params)
    if scale:
        model = Pipeline([("scale", StandardScaler()), ("model", model)])
    if scale_target:
        model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return model


def _build_svm(probability: bool = True, **params: Any) -> Any:
    """An SVC behind a scaler; ``probability=True`` calibrates it (sigmoid, 3-fold, one
    model refit on all rows) so it has ``predict_proba`` consistent with ``predict``."""
    svc = SVC(**params)
    model: Any = CalibratedClassifierCV(svc, ensemble=False, cv=3) if probability else svc
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _spec(
    name: str,
    task: Task,
    estimator: type[Any],
    *,
    defaults: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    space: Mapping[str, SpaceEntry],
    scale: bool = False,
    scale_target: bool = False,
    factory: Callable[..., Any] | None = None,
    extra: tuple[str, ...] = (),
) -> ModelSpec:
    names = set(estimator().get_params(deep=False))
    seeded = "random_state" in names
    names.discard("random_state")
    spec = ModelSpec(
        name=name,
        task=task,
        factory=factory or functools.partial(_build, estimator, scale, scale_target),
        default_params=dict(defaults),
        grid=dict(grid),
        space=dict(space),
        params=frozenset(names | set(extra)),
        seeded=seeded,
    )
    check_grid(spec, grid, field=f"ZOO[{name!r}].grid")
    check_space(spec, space, field=f"ZOO[{name!r}].space")
    return spec


def get_model_spec(name: object) -> ModelSpec:
    """The zoo entry ``name``; :class:`ValidationFailed` listing the zoo if there is none."""
    if not isinstance(name, str) or name not in ZOO:
        raise ValidationFailed(
            f"unknown model {name!r}: the zoo has {', '.join(sorted(ZOO))}",
            details={"field": "model", "allowed": sorted(ZOO)},
        )
    return ZOO[name]


def _check_names(spec: ModelSpec, names: Sequence[str], field: str) -> None:
    for key in names:
        if key == "random_state" and spec.seeded:
            raise ValidationFailed(
                f"{field}: random_state is set from the seed; pass seed= instead",
                details={"field": field, "param": key},
            )
        if key not in spec.params:
            raise ValidationFailed(
                f"{field}: {spec.name} does not accept param {key!r}; it accepts "
                f"{', '.join(sorted(spec.params))}",
                details={"field": field, "param": key, "allowed": sorted(spec.params)},
            )


def check_grid(spec: ModelSpec, grid: Mapping[str, Sequence[Any]], *, field: str) -> None:
    """Raise :class:`ValidationFailed` unless ``grid`` maps params of ``spec`` to non-empty
    lists of values."""
    if not isinstance(grid, Mapping):
        raise ValidationFailed(f"{field} must map param names to lists of values, got {grid!r}")
    _check_names(spec, list(grid), field)
    for key, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValidationFailed(
                f"{field}[{key!r}] must be a non-empty list of values, got {values!r}",
                details={"field": field, "param": key},
            )


def check_space(spec: ModelSpec, space: Mapping[str, SpaceEntry], *, field: str) -> None:
    """Raise :class:`ValidationFailed` unless ``space`` maps params of ``spec`` to valid
    entries (see the module docstring)."""
    if not isinstance(space, Mapping):
        raise ValidationFailed(f"{field} must map param names to space entries, got {space!r}")
    _check_names(spec, list(space), field)
    for key, entry in space.items():
        check_space_entry(entry, field=f"{field}[{key!r}]")


def check_seed(seed: object, field: str = "seed") -> int:
    """``seed`` if it is an integer in [0, 2**32); else :class:`ValidationFailed`."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValidationFailed(
            f"{field} must be an integer in [0, 2**32), got {seed!r}", details={"field": field}
        )
    return seed


_FOREST_GRID: dict[str, list[Any]] = {
    "max_depth": [None, 10],
    "max_features": ["sqrt", 0.5],
    "min_samples_leaf": [1, 5],
}
_FOREST_SPACE: dict[str, SpaceEntry] = {
    "n_estimators": ("log_int", 50, 400),
    "max_depth": ("int", 2, 20),
    "max_features": ("float", 0.1, 1.0),
    "min_samples_leaf": ("log_int", 1, 20),
}
_BOOSTING_GRID: dict[str, list[Any]] = {"learning_rate": [0.05, 0.1, 0.2], "max_depth": [2, 3, 5]}
_BOOSTING_SPACE: dict[str, SpaceEntry] = {
    "n_estimators": ("log_int", 50, 400),
    "learning_rate": ("log_float", 0.01, 0.3),
    "max_depth": ("int", 2, 6),
    "subsample": ("float", 0.5, 1.0),
}
_MLP_DEFAULTS: dict[str, Any] = {"hidden_layer_sizes": (64,), "alpha": 1e-4, "max_iter": 2000}
_MLP_GRID: dict[str, list[Any]] = {
    "hidden_layer_sizes": [(32,), (64,), (64, 32)],
    "alpha": [1e-4, 1e-2],
}
_MLP_SPACE: dict[str, SpaceEntry] = {
    "hidden_layer_sizes": ("categorical", [16, 32, 64, 128]),
    "alpha": ("log_float", 1e-6, 1e-1),
    "learning_rate_init": ("log_float", 1e-4, 1e-2),
}

ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "logistic_regression",
            "classification",
            LogisticRegression,
            defaults={"C": 1.0, "max_iter": 1000},
            grid={"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
            space={
                "C": ("log_float", 1e-3, 1e3),
                "class_weight": ("categorical", [None, "balanced"]),
            },
            scale=True,
        ),
        _spec(
            "decision_tree",
            "classification",
            DecisionTreeClassifier,
            defaults={},
            grid={"max_depth": [3, 5, 8, None], "min_samples_leaf": [1, 5, 20]},
            space={
                "max_depth": ("int", 2, 16),
                "min_samples_leaf": ("log_int", 1, 50),
                "criterion": ("categorical", ["gini", "entropy"]),
            },
        ),
        _spec(
            "random_forest",
            "classification",
            RandomForestClassifier,
            defaults={"n_estimators": 100, "n_jobs": 1},
            grid=_FOREST_GRID,
            space=_FOREST_SPACE,
        ),
        _spec(
            "gradient_boosting",
            "classification",
            GradientBoostingClassifier,
            defaults={"n_estimators": 100},
            grid=_BOOSTING_GRID,
            space=_BOOSTING_SPACE,
        ),
        _spec(
            "svm",
            "classification",
            SVC,
            defaults={"C": 1.0, "kernel": "rbf", "probability": True},
            grid={"C": [0.1, 1.0, 10.0, 100.0], "kernel": ["rbf", "linear"]},
            space={
                "C": ("log_float", 1e-2, 1e3),
                "gamma": ("log_float", 1e-4, 1.0),
                "kernel": ("categorical", ["rbf", "linear"]),
            },
            factory=_build_svm,
            extra=("probability",),
        ),
        _spec(
            "knn",
            "classification",
            KNeighborsClassifier,
            defaults={"n_neighbors": 5},
            grid={"n_neighbors": [3, 5, 11, 21], "weights": ["uniform", "distance"]},
            space={
                "n_neighbors": ("log_int", 1, 50),
                "weights": ("categorical", ["uniform", "distance"]),
                "p": ("categorical", [1, 2]),
            },
            scale=True,
        ),
        _spec(
            "mlp",
            "classification",
            MLPClassifier,
            defaults=_MLP_DEFAULTS,
            grid=_MLP_GRID,
            space=_MLP_SPACE,
            scale=True,
        ),
        _spec("linear_regression", "regression", LinearRegression, defaults={}, grid={}, space={}),
        _spec(
            "ridge",
            "regression",
            Ridge,
            defaults={"alpha": 1.0},
            grid={"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
            space={"alpha": ("log_float", 1e-4, 1e3)},
            scale=True,
        ),
        _spec(
            "random_forest_regressor",
            "regression",
            RandomForestRegressor,
            defaults={"n_estimators": 100, "n_jobs": 1},
            grid=_FOREST_GRID,
            space=_FOREST_SPACE,
        ),
        _spec(
            "gradient_boosting_regressor",
            "regression",
            GradientBoostingRegressor,
            defaults={"n_estimators": 100},
            grid=_BOOSTING_GRID,
            space=_BOOSTING_SPACE,
        ),
        _spec(
            "mlp_regressor",
            "regression",
            MLPRegressor,
            defaults=_MLP_DEFAULTS,
            grid=_MLP_GRID,
            space=_MLP_SPACE,
            scale=True,
            scale_target=True,
        ),
    )
}
"""Every model by name; see each :class:`ModelSpec` for its grid and space."""


def make_model(name: str, params: Mapping[str, Any] | None = None, *, seed: int = 0) -> Any:
    """An unfitted estimator for the zoo model ``name``.

    ``params`` override the model's ``default_params`` (model param names, e.g. ``C``); every
    estimator that takes ``random_state`` gets ``seed``, so the same call builds the same
    model. Raises :class:`ValidationFailed` for an unknown model or param.

    >>> make_model("random_forest", {"max_depth": 4}, seed=1).get_params()["random_state"]
    1
    """
    spec = get_model_spec(name)
    check_seed(seed)
    given = dict(params or {})
    _check_names(spec, list(given), "params")
    merged: dict[str, Any] = {**spec.default_params, **given}
    if spec.seeded:
        merged["random_state"] = seed
    return spec.factory(**merged)
