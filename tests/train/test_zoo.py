"""The model zoo: every model builds, fits and predicts; seeds make it deterministic; bad
names, params and space entries are refused with the allowed values."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop.errors import ValidationFailed
from edgeloop.train import ZOO, ModelSpec, make_model
from edgeloop.train._space import check_space_entry
from edgeloop.train._zoo import check_space

CLASSIFIERS = {"logistic_regression", "decision_tree", "random_forest", "gradient_boosting"}
CLASSIFIERS |= {"svm", "knn", "mlp"}
REGRESSORS = {"linear_regression", "ridge", "random_forest_regressor"}
REGRESSORS |= {"gradient_boosting_regressor", "mlp_regressor"}
SCALED = {"logistic_regression", "svm", "knn", "mlp", "ridge", "mlp_regressor"}


def _data(spec: ModelSpec) -> tuple[Any, Any]:
    if spec.task == "classification":
        X, y = make_classification(
            n_samples=120, n_features=6, n_informative=4, n_classes=3, class_sep=1.5, random_state=0
        )
        return X, y
    X, y = make_regression(n_samples=100, n_features=5, noise=5.0, random_state=0)
    return X, y * 10 + 500  # a target far from zero and unit scale


def _steps(model: Any) -> list[Any]:
    """Every estimator inside ``model`` (pipelines and wrappers included)."""
    return [model, *(v for v in model.get_params(deep=True).values() if hasattr(v, "fit"))]


def test_the_zoo_has_every_model_with_its_task() -> None:
    assert set(ZOO) == CLASSIFIERS | REGRESSORS
    for name, spec in ZOO.items():
        assert spec.name == name
        assert spec.task == ("classification" if name in CLASSIFIERS else "regression")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_model_builds_fits_and_predicts(name: str) -> None:
    spec = ZOO[name]
    X, y = _data(spec)
    model = make_model(name, seed=0).fit(X, y)
    predicted = model.predict(X)
    assert predicted.shape == y.shape
    if spec.task == "classification":
        assert np.mean(predicted == y) > 0.7
        proba = model.predict_proba(X)
        assert proba.shape == (len(y), 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    else:
        assert 1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2) > 0.5


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_seed_makes_a_model_deterministic(name: str) -> None:
    spec = ZOO[name]
    X, y = _data(spec)
    first, second = make_model(name, seed=7).fit(X, y), make_model(name, seed=7).fit(X, y)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    assert pickle.dumps(first) == pickle.dumps(second)
    seeds = {
        value
        for key, value in first.get_params(deep=True).items()
        if key.split("__")[-1] == "random_state"
    }
    assert seeds == ({7} if spec.seeded else set())


@pytest.mark.parametrize("name", sorted(ZOO))
def test_models_that_need_scaling_come_behind_a_scaler(name: str) -> None:
    model = make_model(name)
    scaled = isinstance(model, Pipeline) and isinstance(model.steps[0][1], StandardScaler)
    if name == "mlp_regressor":
        assert isinstance(model, TransformedTargetRegressor)
        assert isinstance(model.transformer, StandardScaler)
        scaled = isinstance(model.regressor.steps[0][1], StandardScaler)
    assert scaled == (name in SCALED)


def test_params_override_the_defaults_and_reach_the_estimator() -> None:
    model = make_model("svm", {"C": 3.0, "kernel": "linear"})
    svc = model.named_steps["model"].estimator
    assert (svc.C, svc.kernel) == (3.0, "linear")
    assert make_model("svm", {"probability": False}).named_steps["model"].C == 1.0
    forest = make_model("random_forest", {"max_depth": 4}, seed=2)
    assert (forest.max_depth, forest.n_estimators, forest.n_jobs) == (4, 100, 1)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_grid_combination_and_space_bound_builds(name: str) -> None:
    spec = ZOO[name]
    for params in ParameterGrid(dict(spec.grid)):
        make_model(name, params)
    check_space(spec, spec.space, field="space")
    low_end = {
        key: entry[1][0] if entry[0] == "categorical" else entry[1]
        for key, entry in spec.space.items()
    }
    make_model(name, low_end)


def test_an_unknown_model_lists_the_zoo() -> None:
    with pytest.raises(ValidationFailed, match="unknown model 'xgboost'") as err:
        make_model("xgboost")
    assert all(name in err.value.message for name in ZOO)
    assert err.value.details["allowed"] == sorted(ZOO)


def test_a_param_the_estimator_does_not_take_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="knn does not accept param 'C'") as err:
        make_model("knn", {"C": 1.0})
    assert "n_neighbors" in err.value.details["allowed"]
    with pytest.raises(ValidationFailed, match="pass seed= instead"):
        make_model("random_forest", {"random_state": 3})
    with pytest.raises(ValidationFailed, match="seed must be an integer"):
        make_model("random_forest", seed=-1)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("float", "must be"),
        (("uniform", 0, 1), "unknown space kind 'uniform'"),
        (("float", 0.0), r"must be \('float', low, high\)"),
        (("float", 2.0, 1.0), "low must not exceed high"),
        (("log_float", 0.0, 1.0), "0 < low"),
        (("int", 1.5, 3), "bounds must be integers"),
        (("log_int", 0, 10), "1 <= low"),
        (("categorical", []), "at least one choice"),
        (("categorical", [(1, 2)]), "None, a bool, an int, a float or a str"),
    ],
)
def test_bad_space_entries_are_refused(entry: object, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        check_space_entry(entry, field="spaces['x']['C']")


def test_lists_work_like_tuples_in_a_space() -> None:
    check_space(
        ZOO["svm"], {"C": ["log_float", 0.1, 10], "kernel": ["categorical", ["rbf"]]}, field="s"
    )


def test_a_fitted_model_round_trips_through_joblib() -> None:
    import joblib

    X, y = _data(ZOO["gradient_boosting"])
    model = make_model("gradient_boosting", {"n_estimators": 20}).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict(X), model.predict(X))
