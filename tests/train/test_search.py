"""Hyperparameter search: grid, random and Optuna; the folds it scores on (k-fold,
stratified, group, recorded); child runs; reproducibility; errors; a shared Optuna study."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.model_selection import (
    ParameterGrid,
    PredefinedSplit,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.tree import DecisionTreeClassifier

import edgeloop as el
from edgeloop.client import trial_logger
from edgeloop.config import load_settings
from edgeloop.datasets import FoldSpec, assign_folds
from edgeloop.errors import ValidationFailed
from edgeloop.train import ZOO, SearchResult, SearchSpec, cv_splits, search

SRC = Path(__file__).resolve().parents[2] / "src"


def _iris() -> tuple[Any, Any]:
    X, y = load_iris(return_X_y=True)
    return X, y


def _in_space(value: Any, entry: Any) -> bool:
    if entry[0] == "categorical":
        return value in entry[1]
    if entry[0] in ("int", "log_int") and not isinstance(value, int):
        return False
    return bool(entry[1] <= value <= entry[2])


def _check_in_spaces(result: SearchResult, spec: SearchSpec) -> None:
    for trial in result.trials:
        space = spec.space_for(trial.model)
        assert set(trial.params) == set(space)
        assert all(_in_space(v, space[k]) for k, v in trial.params.items()), trial.params


# -- grid ------------------------------------------------------------------------------------


def test_grid_scores_match_sklearn_and_pick_the_known_best() -> None:
    X, y = _iris()
    spec = SearchSpec(
        models=("decision_tree",), grids={"decision_tree": {"max_depth": [1, 3]}}, seed=4
    )
    result = search(X, y, spec)
    assert [t.params for t in result.trials] == [{"max_depth": 1}, {"max_depth": 3}]
    assert result.best.params == {"max_depth": 3}  # one split cannot separate 3 classes
    folds = StratifiedKFold(5, shuffle=True, random_state=4)
    for trial in result.trials:
        expected = cross_val_score(
            DecisionTreeClassifier(random_state=4, **trial.params), X, y, cv=folds
        )
        np.testing.assert_allclose(trial.scores, expected)
        assert trial.mean == pytest.approx(expected.mean())
        assert trial.std == pytest.approx(expected.std())
    assert result.best.mean < 1.0 and result.trials[0].mean < 0.7
    assert result.estimator.get_params()["max_depth"] == 3
    assert result.estimator.predict(X).shape == y.shape  # refit on every row


def test_grid_tries_every_combination_of_every_model() -> None:
    X, y = _iris()
    result = search(X, y, SearchSpec(models=("logistic_regression", "knn"), cv=3))
    expected = [
        (model, params)
        for model in ("logistic_regression", "knn")
        for params in ParameterGrid(dict(ZOO[model].grid))
    ]
    assert [(t.model, t.params) for t in result.trials] == expected
    assert len(result.trials) == 5 + 8
    assert all(len(t.scores) == 3 and t.run_id is None for t in result.trials)
    assert result.best.mean == max(t.mean for t in result.trials)


def test_regression_search_uses_plain_kfold_and_regression_metrics() -> None:
    X, y = make_regression(n_samples=80, n_features=5, noise=1.0, random_state=0)
    spec = SearchSpec(models=("ridge",), metric="neg_root_mean_squared_error", cv=4)
    result = search(X, y, spec)
    assert len(result.trials) == 5
    assert result.best.params == {"alpha": 0.01}  # almost no noise: least shrinkage wins
    assert all(t.mean < 0 for t in result.trials)


@pytest.mark.parametrize("metric", ["roc_auc_ovr", "neg_log_loss", "f1_macro"])
def test_probability_metrics_work_with_the_calibrated_svm(metric: str) -> None:
    X, y = _iris()
    spec = SearchSpec(models=("svm",), metric=metric, cv=3, grids={"svm": {"C": [1.0]}})
    result = search(X, y, spec)
    assert math.isfinite(result.best.mean)
    assert result.estimator.predict_proba(X).shape == (150, 3)


# -- random and optuna ------------------------------------------------------------------------


def test_random_search_draws_trials_per_model_from_the_space() -> None:
    X, y = _iris()
    spec = SearchSpec(models=("logistic_regression", "knn"), method="random", trials=3, cv=3)
    result = search(X, y, spec)
    assert [t.model for t in result.trials] == ["logistic_regression"] * 3 + ["knn"] * 3
    _check_in_spaces(result, spec)
    assert len({json.dumps(t.params, sort_keys=True) for t in result.trials}) == 6
    again = search(X, y, spec)
    assert [t.params for t in again.trials] == [t.params for t in result.trials]
    other = search(X, y, SearchSpec(models=("knn",), method="random", trials=3, cv=3, seed=1))
    assert [t.params for t in other.trials] != [t.params for t in result.trials[3:]]


def test_random_search_of_an_empty_space_runs_once() -> None:
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    spec = SearchSpec(models=("linear_regression",), method="random", metric="r2", cv=3)
    assert [t.params for t in search(X, y, spec).trials] == [{}]


def test_optuna_runs_the_requested_trials_over_the_models() -> None:
    X, y = _iris()
    spec = SearchSpec(
        models=("logistic_regression", "knn", "decision_tree"),
        method="optuna",
        trials=8,
        cv=3,
        seed=3,
    )
    result = search(X, y, spec)
    assert len(result.trials) == 8
    assert {t.model for t in result.trials} <= set(spec.models)
    assert len({t.model for t in result.trials}) > 1
    _check_in_spaces(result, spec)
    assert result.best.mean == max(t.mean for t in result.trials)
    again = search(X, y, spec)
    assert [(t.model, t.params) for t in again.trials] == [
        (t.model, t.params) for t in result.trials
    ]


def test_optuna_with_one_model_samples_its_params_only() -> None:
    X, y = _iris()
    spec = SearchSpec(models=("knn",), method="optuna", trials=3, cv=3)
    result = search(X, y, spec)
    assert len(result.trials) == 3
    _check_in_spaces(result, spec)


def test_an_optuna_study_refuses_another_metric(tmp_path: Path) -> None:
    X, y = _iris()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = SearchSpec(
        models=("knn",), method="optuna", trials=2, cv=3, storage=storage, study_name="s"
    )
    assert len(search(X, y, first).trials) == 2
    assert len(search(X, y, first).trials) == 4  # the same study, resumed
    other = SearchSpec(
        models=("knn",),
        method="optuna",
        metric="f1_macro",
        trials=2,
        cv=3,
        storage=storage,
        study_name="s",
    )
    with pytest.raises(ValidationFailed, match="created with metric='accuracy'"):
        search(X, y, other)


def test_an_optuna_study_lives_in_the_workspace_database(tmp_path: Path) -> None:
    """The workspace's migrations own ``alembic_version``; Optuna's tables sit beside ours."""
    from edgeloop.config import load_settings
    from edgeloop.workspace import Workspace

    ws = Workspace.open(load_settings(home=str(tmp_path / "ws")))
    try:
        X, y = _iris()
        spec = SearchSpec(
            models=("knn",),
            method="optuna",
            trials=2,
            cv=3,
            storage=ws.settings.database_url,
            study_name="in-workspace",
        )
        assert len(search(X, y, spec).trials) == 2
    finally:
        ws.close()
    reopened = Workspace.open(load_settings(home=str(tmp_path / "ws")))  # still at our head
    reopened.close()


def test_an_unusable_storage_url_is_refused() -> None:
    X, y = _iris()
    spec = SearchSpec(
        models=("knn",), method="optuna", trials=1, cv=3, storage="nosuchdb://x", study_name="s"
    )
    with pytest.raises(ValidationFailed, match="storage 'nosuchdb://x' is not a usable"):
        search(X, y, spec)


# -- folds -----------------------------------------------------------------------------------


def _grouped(n_groups: int = 24, per_group: int = 5) -> tuple[Any, Any, Any]:
    """Every group sits at its own point with its own random label: a 1-NN model is right
    when the group is in training data, and guesses when it is not."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(n_groups, 4))
    labels = np.arange(n_groups) % 2
    groups = np.repeat(np.arange(n_groups), per_group)
    X = centers[groups] + rng.normal(scale=0.01, size=(len(groups), 4))
    return X, labels[groups], groups


def test_group_folds_never_put_a_group_on_both_sides() -> None:
    X, y, groups = _grouped()
    spec = SearchSpec(models=("knn",), cv=4, cv_method="group")
    splits = cv_splits(X, y, spec, groups=groups)
    assert len(splits) == 4
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
    assert sorted(np.concatenate([test for _, test in splits]).tolist()) == list(range(len(y)))


def test_search_scores_on_group_folds() -> None:
    X, y, groups = _grouped()
    grids = {"knn": {"n_neighbors": [1]}}
    leaky = search(X, y, SearchSpec(models=("knn",), cv=4, cv_method="kfold", grids=grids))
    honest = search(
        X, y, SearchSpec(models=("knn",), cv=4, cv_method="group", grids=grids), groups=groups
    )
    assert leaky.best.mean == 1.0
    assert honest.best.mean < 0.8


def test_recorded_folds_are_used() -> None:
    X, y = _iris()
    folds = assign_folds(pa.table({"label": y}), FoldSpec("stratified", k=3, label="label"))
    spec = SearchSpec(models=("decision_tree",), cv="folds", grids={"decision_tree": {}})
    splits = cv_splits(X, y, spec, folds=folds)
    expected = list(PredefinedSplit(folds).split())
    assert len(splits) == 3
    for (train, test), (want_train, want_test) in zip(splits, expected, strict=True):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)
    result = search(X, y, spec, folds=folds)
    scores = cross_val_score(
        DecisionTreeClassifier(random_state=0), X, y, cv=PredefinedSplit(folds)
    )
    np.testing.assert_allclose(result.best.scores, scores)


# -- child runs ------------------------------------------------------------------------------


@pytest.fixture
def local_backend(tmp_path: Path) -> Any:
    el.set_backend(el.LocalBackend(load_settings(home=str(tmp_path / "ws"))))
    yield
    el.set_backend(None)


@pytest.mark.usefixtures("local_backend")
def test_trials_are_logged_as_child_runs_of_the_active_run() -> None:
    X, y = _iris()
    grids = {"knn": {"n_neighbors": [3, 9]}}
    spec = SearchSpec(models=("logistic_regression", "knn"), cv=3, grids=grids)
    with el.start_run(experiment="t") as parent:
        result = search(X, y, spec, on_trial=trial_logger())
    children = el.search_runs("t", "attributes.name like 'logistic%'").items
    assert len(children) == 5
    assert all(child.parent_run_id == parent.id for child in children)
    assert len(el.search_runs("t", "attributes.name like 'knn%'").items) == 2
    assert {t.run_id for t in result.trials} == {
        r.id for r in el.search_runs("t").items if r.parent_run_id == parent.id
    }
    backend = el.get_backend()
    assert result.best.run_id is not None
    best = backend.get_run(result.best.run_id)
    assert best.name == f"{result.best.model}-{result.trials.index(result.best)}"
    assert best.params["model"] == result.best.model
    assert best.metrics["cv_accuracy_mean"] == pytest.approx(result.best.mean)
    assert best.metrics["cv_accuracy_std"] == pytest.approx(result.best.std)
    history = backend.metric_history(best.id, "cv_accuracy")
    assert [(p.step, p.value) for p in history] == list(enumerate(result.best.scores))


@pytest.mark.usefixtures("local_backend")
def test_optuna_trials_are_logged_as_child_runs() -> None:
    X, y = _iris()
    spec = SearchSpec(models=("knn",), method="optuna", trials=3, cv=3)
    with el.start_run(experiment="t") as parent:
        result = search(X, y, spec, on_trial=trial_logger())
    children = el.search_runs("t", "attributes.name like 'knn-%'").items
    assert sorted(c.name for c in children) == ["knn-0", "knn-1", "knn-2"]
    assert {c.parent_run_id for c in children} == {parent.id}
    assert {c.id for c in children} == {t.run_id for t in result.trials}


@pytest.mark.usefixtures("local_backend")
def test_nothing_is_logged_without_a_trial_logger() -> None:
    X, y = _iris()
    spec = SearchSpec(models=("knn",), cv=3)
    assert all(t.run_id is None for t in search(X, y, spec).trials)
    with el.start_run(experiment="t") as parent:
        result = search(X, y, spec)
    assert all(t.run_id is None for t in result.trials)
    assert [r.id for r in el.search_runs("t").items] == [parent.id]


# -- reproducibility and output --------------------------------------------------------------


def _dump(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_the_same_inputs_and_seed_give_the_same_model() -> None:
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, random_state=1)
    spaces = {"random_forest": {"n_estimators": ("int", 10, 30), "max_features": ("float", 0.2, 1)}}
    spec = SearchSpec(
        models=("random_forest", "knn"), method="random", trials=2, cv=3, seed=5, spaces=spaces
    )
    first, second = search(X, y, spec), search(X, y, spec)
    assert first.best.params == second.best.params
    assert [t.scores for t in first.trials] == [t.scores for t in second.trials]
    np.testing.assert_array_equal(first.estimator.predict(X), second.estimator.predict(X))
    assert _dump(first.estimator) == _dump(second.estimator)


def test_to_dict_is_json_ready() -> None:
    X, y = _iris()
    spec = SearchSpec(models=("mlp",), cv=3, grids={"mlp": {"hidden_layer_sizes": [(32, 16)]}})
    out = json.loads(json.dumps(search(X, y, spec).to_dict()))
    assert out["best"]["params"] == {"hidden_layer_sizes": [32, 16]}
    assert out["spec"]["models"] == ["mlp"] and out["spec"]["cv"] == 3
    assert len(out["trials"]) == 1 and len(out["best"]["scores"]) == 3


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ("xgboost",)}, "unknown model 'xgboost': the zoo has .*logistic_regression"),
        ({"models": ()}, "models must be a non-empty list"),
        ({"models": ("knn", "knn")}, "lists a model twice"),
        ({"metric": "r2"}, "'r2' is a regression metric but logistic_regression is a class"),
        ({"models": ("ridge",)}, "ridge is a regression model; regression metrics: r2"),
        ({"metric": "precision"}, "metric must be one of accuracy, f1_macro, .*r2"),
        ({"method": "bayes"}, "method must be one of grid, random, optuna"),
        ({"cv_method": "loo"}, "cv_method must be one of kfold, stratified, group"),
        ({"trials": 0}, "trials must be an integer of at least 1"),
        ({"cv": 1}, "cv must be an integer of at least 2 or 'folds'"),
        ({"seed": -1}, "seed must be an integer"),
        ({"grids": {"logistic_regression": {"gamma": [1.0]}}}, "does not accept param 'gamma'"),
        ({"grids": {"logistic_regression": {"C": []}}}, "non-empty list of values"),
        ({"spaces": {"logistic_regression": {"C": ("normal", 0, 1)}}}, "unknown space kind"),
        ({"spaces": {"knn": {"n_neighbors": ("int", 1, 5)}}}, "not one of the models searched"),
        ({"storage": "sqlite:///x.db"}, "storage and study_name apply only to method='optuna'"),
        ({"method": "optuna", "storage": "sqlite:///x.db"}, "needs study_name"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        SearchSpec(**kwargs)


def _imbalanced() -> tuple[Any, Any]:
    X, y = _iris()
    keep = np.r_[0:50, 50:100, 100:103]  # class 2 keeps 3 rows
    return X[keep], y[keep]


@pytest.mark.parametrize(
    ("spec", "data", "message"),
    [
        (SearchSpec(cv=200), {}, "cv=200 needs at least 200 rows; X has 150"),
        (SearchSpec(cv=5), {"imbalanced": True}, "class 2 has 3: lower cv"),
        (SearchSpec(cv="folds"), {}, "cv='folds' needs folds"),
        (SearchSpec(cv_method="group"), {}, "cv_method='group' needs groups"),
        (SearchSpec(), {"folds": True}, "folds were given but cv=5: pass cv='folds'"),
        (SearchSpec(), {"groups": True}, "groups are used only with cv_method='group'"),
        (SearchSpec(cv=4, cv_method="group"), {"groups": True}, "need at least 4 groups; there"),
        (SearchSpec(cv="folds"), {"folds": True, "short": True}, "one value per row"),
        (SearchSpec(), {"continuous": True}, "y is continuous, but a classification search"),
    ],
)
def test_bad_data_for_a_spec_is_refused(
    spec: SearchSpec, data: dict[str, bool], message: str
) -> None:
    X, y = _imbalanced() if data.get("imbalanced") else _iris()
    if data.get("continuous"):
        y = X[:, 0]
    n = 10 if data.get("short") else len(y)
    groups = np.arange(len(y)) % 3 if data.get("groups") else None
    folds = np.arange(n) % 3 if data.get("folds") else None
    with pytest.raises(ValidationFailed, match=message):
        search(X, y, spec, groups=groups, folds=folds)


def test_search_needs_a_search_spec() -> None:
    X, y = _iris()
    with pytest.raises(ValidationFailed, match="spec must be a SearchSpec"):
        search(X, y, {"models": ["knn"]})  # type: ignore[arg-type]


# -- a shared Optuna study -------------------------------------------------------------------

WORKER = """
import json, sys
from sklearn.datasets import load_iris
from edgeloop.train import SearchSpec, search

args = json.loads(sys.argv[1])
X, y = load_iris(return_X_y=True)
spec = SearchSpec(
    models=("logistic_regression", "knn"), method="optuna", trials=args["trials"], cv=3,
    seed=args["seed"], storage=args["storage"], study_name="shared",
)
print(json.dumps({"seen": len(search(X, y, spec).trials)}))
"""


@pytest.mark.slow
def test_two_processes_share_one_optuna_study(tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["PYTHONPATH"] = str(SRC)
    env["PYTHONWARNINGS"] = "error"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        for args in (
            {"trials": 4, "seed": 1, "storage": storage},
            {"trials": 5, "seed": 2, "storage": storage},
        )
    ]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    seen = [json.loads(out)["seen"] for out, _ in outputs]
    assert min(seen) >= 4 and max(seen) == 9  # the last to finish sees every trial
    study = optuna.load_study(study_name="shared", storage=storage)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.COMPLETE] * 9
