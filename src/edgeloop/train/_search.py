"""Hyperparameter search over the model zoo: grid, random or Optuna, cross-validated.

:func:`search` is the engine of the pipelines' built-in ``train`` step. It is a plain
function: arrays and a :class:`SearchSpec` in, a :class:`SearchResult` out (the best
estimator refit on every row, and every trial's per-fold scores). Inside an active edgeloop
run, each trial is also logged as a child run.

Determinism: the folds are drawn once (seeded) and shared by every trial; every estimator
gets ``random_state=seed``; random search draws from ``numpy.random.default_rng(seed)``
(models in order, then params in space order); Optuna uses ``TPESampler(seed=seed)``. So the
same data and spec give the same trials, the same best params and the same refit model (with
a shared Optuna storage, other workers' trials make the outcome depend on timing).
Everything runs in the calling thread (``n_jobs=1``): the pipeline runner parallelises steps.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import ParameterGrid

from edgeloop.errors import ValidationFailed
from edgeloop.train._folds import Split, check_data, make_splits
from edgeloop.train._space import SpaceEntry, draw
from edgeloop.train._zoo import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Task,
    check_grid,
    check_seed,
    check_space,
    get_model_spec,
    make_model,
)

__all__ = ["CvMethod", "SearchMethod", "SearchResult", "SearchSpec", "TrialResult", "search"]

SearchMethod = Literal["grid", "random", "optuna"]
CvMethod = Literal["kfold", "stratified", "group"]


@dataclass(frozen=True)
class SearchSpec:
    """What to search and how to score it.

    - ``models``: zoo names (see :data:`~edgeloop.train.ZOO`), all of one task.
    - ``method``: ``"grid"`` tries every combination of each model's grid; ``"random"`` makes
      ``trials`` draws per model from its space (one, if the space is empty); ``"optuna"``
      runs ``trials`` TPE trials in all, sampling the model too when there are several.
    - ``metric``: a scikit-learn scorer name, greater is better; :data:`CLASSIFICATION_METRICS`
      for classifiers, :data:`REGRESSION_METRICS` for regressors.
    - ``cv``: the number of folds (at least 2), or ``"folds"`` to use the fold index per row
      passed to :func:`search` (a recorded dataset split). ``cv_method``: ``"kfold"``,
      ``"stratified"`` (by class; regressors use plain k-fold) or ``"group"`` (no group in
      both train and test of a fold; needs ``groups``). All shuffle with ``seed``.
    - ``grids`` / ``spaces``: per-model overrides of the zoo's grid / space, e.g.
      ``{"svm": {"C": ("log_float", 0.1, 10)}}`` (a model's entry replaces its whole grid
      or space).
    - ``storage`` (Optuna only): an RDB URL (``sqlite:///study.db``, PostgreSQL); every
      process that runs :func:`search` with the same ``storage`` and ``study_name`` adds its
      trials to one shared study. Give each worker its own ``seed``, or their first (random)
      trials repeat each other's.
    """

    models: tuple[str, ...] = ("logistic_regression",)
    method: SearchMethod = "grid"
    trials: int = 20
    metric: str = "accuracy"
    cv: int | Literal["folds"] = 5
    cv_method: CvMethod = "stratified"
    seed: int = 0
    storage: str | None = None
    study_name: str | None = None
    grids: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    spaces: Mapping[str, Mapping[str, SpaceEntry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        models = (self.models,) if isinstance(self.models, str) else self.models
        if not isinstance(models, Sequence) or not models:
            raise ValidationFailed(f"models must be a non-empty list of zoo names: {models!r}")
        object.__setattr__(self, "models", tuple(models))
        if len(set(self.models)) != len(self.models):
            raise ValidationFailed(f"models lists a model twice: {list(self.models)}")
        specs = [get_model_spec(name) for name in self.models]
        _one_of("method", self.method, get_args(SearchMethod))
        _one_of("cv_method", self.cv_method, get_args(CvMethod))
        _one_of("metric", self.metric, CLASSIFICATION_METRICS + REGRESSION_METRICS)
        task = self.task
        for spec in specs:
            if spec.task != task:
                raise ValidationFailed(
                    f"metric {self.metric!r} is a {task} metric but {spec.name} is a "
                    f"{spec.task} model; {spec.task} metrics: "
                    f"{', '.join(_metrics_for(spec.task))}",
                    details={"field": "metric", "allowed": list(_metrics_for(spec.task))},
                )
        if not isinstance(self.trials, int) or isinstance(self.trials, bool) or self.trials < 1:
            raise ValidationFailed(f"trials must be an integer of at least 1, got {self.trials!r}")
        if self.cv != "folds" and (
            not isinstance(self.cv, int) or isinstance(self.cv, bool) or self.cv < 2
        ):
            raise ValidationFailed(
                f"cv must be an integer of at least 2 or 'folds', got {self.cv!r}",
                details={"field": "cv"},
            )
        check_seed(self.seed)
        self._check_overrides()
        if self.method != "optuna" and (self.storage is not None or self.study_name is not None):
            raise ValidationFailed("storage and study_name apply only to method='optuna'")
        if self.storage is not None and not self.study_name:
            raise ValidationFailed(
                "an Optuna storage needs study_name: the name every worker shares"
            )

    def _check_overrides(self) -> None:
        for what, overrides in (("grids", self.grids), ("spaces", self.spaces)):
            if not isinstance(overrides, Mapping):
                raise ValidationFailed(f"{what} must map model names to overrides")
            for name, value in overrides.items():
                if name not in self.models:
                    raise ValidationFailed(
                        f"{what} has an entry for {name!r}, which is not one of the models "
                        f"searched: {', '.join(self.models)}"
                    )
                if what == "grids":
                    check_grid(get_model_spec(name), value, field=f"grids[{name!r}]")
                else:
                    check_space(get_model_spec(name), value, field=f"spaces[{name!r}]")

    @property
    def task(self) -> Task:
        """``"classification"`` or ``"regression"``, from the metric."""
        return "classification" if self.metric in CLASSIFICATION_METRICS else "regression"

    def grid_for(self, model: str) -> Mapping[str, Sequence[Any]]:
        """The grid searched for ``model``: the override, else the zoo's."""
        return self.grids.get(model, get_model_spec(model).grid)

    def space_for(self, model: str) -> Mapping[str, SpaceEntry]:
        """The space searched for ``model``: the override, else the zoo's."""
        return self.spaces.get(model, get_model_spec(model).space)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass
class TrialResult:
    """One evaluated configuration: its per-fold scores (``scores[i]`` on fold ``i``), their
    mean and (population) standard deviation, and the child run it was logged to."""

    model: str
    params: dict[str, Any]
    scores: list[float]
    mean: float
    std: float
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass
class SearchResult:
    """The outcome of :func:`search`: the ``best`` trial, every trial, and ``estimator``, the
    best configuration refit on all rows."""

    best: TrialResult
    trials: list[TrialResult]
    estimator: Any
    spec: SearchSpec

    def to_dict(self) -> dict[str, Any]:
        """``spec``, ``best`` and ``trials``, JSON-ready (the estimator is left out)."""
        return {
            "spec": self.spec.to_dict(),
            "best": self.best.to_dict(),
            "trials": [trial.to_dict() for trial in self.trials],
        }


def _one_of(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValidationFailed(
            f"{name} must be one of {', '.join(allowed)}; got {value!r}",
            details={"field": name, "allowed": list(allowed)},
        )


def _metrics_for(task: Task) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- trials ----------------------------------------------------------------------------------


OnTrial = Callable[[int, "TrialResult", str], "str | None"]
"""Called with each trial's index, its result and the metric name; returns the id of the run
it was recorded as (or None). ``edgeloop.client.trial_logger()`` records child runs of the
active run; the pipelines' built-in train step records them under the step's run."""


class _Trials:
    """Scores configurations on fixed folds, logging each as a child run if asked."""

    def __init__(
        self, X: Any, y: Any, splits: list[Split], spec: SearchSpec, on_trial: OnTrial | None
    ) -> None:
        self.X, self.y, self.splits, self.spec = X, y, splits, spec
        self.scorer: Callable[..., float] = get_scorer(spec.metric)
        self.on_trial = on_trial

    def _scores(self, model: str, params: Mapping[str, Any]) -> list[float]:
        scores: list[float] = []
        with warnings.catch_warnings():
            # A search tries bad configurations on purpose: a fit that stops at max_iter, or a
            # class never predicted in a fold (scored 0), just scores what it scores.
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            for train, test in self.splits:
                estimator = make_model(model, params, seed=self.spec.seed)
                estimator.fit(self.X[train], self.y[train])
                scores.append(float(self.scorer(estimator, self.X[test], self.y[test])))
        return scores

    def evaluate(self, index: int, model: str, params: Mapping[str, Any]) -> TrialResult:
        """Score ``params`` of ``model`` on every fold, and report it to ``on_trial``."""
        result = _result(model, params, self._scores(model, params), None)
        if self.on_trial is not None:
            result.run_id = self.on_trial(index, result, self.spec.metric)
        return result


def _result(
    model: str, params: Mapping[str, Any], scores: list[float], run_id: str | None
) -> TrialResult:
    values = np.asarray(scores, dtype=np.float64)
    return TrialResult(
        model=model,
        params=dict(params),
        scores=scores,
        mean=float(values.mean()),
        std=float(values.std()),
        run_id=run_id,
    )


def _best(trials: Sequence[TrialResult]) -> TrialResult:
    """Highest mean (NaN counts as worst); ties go to the lower std, then the earlier trial."""

    def key(item: tuple[int, TrialResult]) -> tuple[float, float, int]:
        index, trial = item
        mean = trial.mean if math.isfinite(trial.mean) else -math.inf
        std = trial.std if math.isfinite(trial.std) else math.inf
        return (mean, -std, -index)

    return max(enumerate(trials), key=key)[1]


def search(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    spec: SearchSpec,
    *,
    groups: npt.ArrayLike | None = None,
    folds: npt.ArrayLike | None = None,
    on_trial: OnTrial | None = None,
) -> SearchResult:
    """Cross-validate the configurations ``spec`` describes and refit the best on all rows.

    ``X`` is rows x features, ``y`` one label (or target) per row; ``groups`` (for
    ``cv_method="group"``) and ``folds`` (for ``cv="folds"``) hold one value per row. Each
    trial is passed to ``on_trial`` (see :data:`OnTrial`), which may record it as a run and
    return its id (kept as ``TrialResult.run_id``). With Optuna, ``trials`` lists every
    completed trial of the study (a shared study includes other workers' trials) and ``best``
    is the study's best.

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> result = search(X, y, SearchSpec(models=("knn",), cv=3))
    >>> result.best.model, len(result.trials)
    ('knn', 8)

    Raises :class:`ValidationFailed` for a spec or data that cannot be searched (see
    :class:`SearchSpec` and :func:`~edgeloop.train.cv_splits`).
    """
    if not isinstance(spec, SearchSpec):
        raise ValidationFailed(f"spec must be a SearchSpec, got {type(spec).__name__}")
    X_arr, y_arr = check_data(X, y, spec.task)
    splits = make_splits(X_arr, y_arr, spec, groups, folds)
    runner = _Trials(X_arr, y_arr, splits, spec, on_trial)
    if spec.method == "grid":
        candidates = [
            (model, dict(params))
            for model in spec.models
            for params in ParameterGrid(dict(spec.grid_for(model)))
        ]
        trials = [runner.evaluate(i, m, p) for i, (m, p) in enumerate(candidates)]
    elif spec.method == "random":
        rng = np.random.default_rng(spec.seed)
        trials = []
        for model in spec.models:
            space = spec.space_for(model)
            for _ in range(spec.trials if space else 1):
                params = {name: draw(rng, entry) for name, entry in space.items()}
                trials.append(runner.evaluate(len(trials), model, params))
    else:
        from edgeloop.train._optuna import run_study

        trials = run_study(spec, runner.evaluate)
    if not trials:
        raise ValidationFailed(f"no trial completed: every {spec.metric} score was undefined")
    best = _best(trials)
    estimator = make_model(best.model, best.params, seed=spec.seed)
    estimator.fit(X_arr, y_arr)
    return SearchResult(best=best, trials=trials, estimator=estimator, spec=spec)
