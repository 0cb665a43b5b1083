"""The Optuna back end of :func:`edgeloop.train.search` (imported only when it is used).

A trial samples ``model`` (when several are searched) and then that model's params under
``<model>.<param>`` names, so models never share a distribution. What edgeloop needs to
rebuild a trial (model, params, per-fold scores, child run id) is kept in the trial's user
attribute ``edgeloop``, so a worker can report, and refit, trials another worker ran. The
study's user attribute ``edgeloop`` records the metric and models it was created for; a search
with another metric or other models cannot join it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from edgeloop.errors import BackendUnavailable, ValidationFailed
from edgeloop.train._space import suggest

if TYPE_CHECKING:
    import optuna

    from edgeloop.train._search import SearchSpec, TrialResult

__all__ = ["open_storage", "run_study"]

_ATTR = "edgeloop"
_OPEN_ATTEMPTS = 5


def _check_study(study: optuna.Study, spec: SearchSpec) -> None:
    wanted = {"metric": spec.metric, "models": list(spec.models)}
    found = study.user_attrs.get(_ATTR)
    if found is None:
        study.set_user_attr(_ATTR, wanted)
        return
    for key, value in wanted.items():
        if found.get(key) != value:
            raise ValidationFailed(
                f"study {study.study_name!r} was created with {key}={found.get(key)!r}; this "
                f"search has {key}={value!r}: use the same {key} or another study_name",
                details={"field": key},
            )


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, which may be the workspace's own database.

    Optuna records its schema revision in alembic's default table, ``alembic_version``, which
    the workspace's migrations already hold, so Optuna's alembic check would compare the
    workspace's revision with its own and refuse. That check is skipped, and the schema version
    Optuna keeps in its ``version_info`` table is compared instead. Workers that open a new
    database at the same moment race to create its tables (optuna/optuna#1092): the loser
    opens the now-created database again.
    """
    import optuna
    import sqlalchemy
    import sqlalchemy.exc
    from optuna.storages._rdb.models import SCHEMA_VERSION

    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        # Several processes write one SQLite file: wait for the lock instead of failing.
        engine["connect_args"] = {"timeout": 60}
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine, skip_compatibility_check=True
            )
            break
        except (sqlalchemy.exc.ArgumentError, ImportError, ValueError) as exc:
            raise ValidationFailed(
                f"storage {url!r} is not a usable database URL: {exc}",
                details={"field": "storage"},
            ) from exc
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if attempt == _OPEN_ATTEMPTS - 1:
                raise BackendUnavailable(
                    f"Optuna storage {url!r} could not be opened: {exc}"
                ) from exc
            time.sleep(0.1 * 2**attempt)
    with storage.engine.connect() as connection:
        query = sqlalchemy.text("SELECT schema_version, library_version FROM version_info")
        schema, library = connection.execute(query).one()
    if int(schema) != SCHEMA_VERSION:
        storage.engine.dispose()
        raise BackendUnavailable(
            f"the Optuna tables at {url!r} have schema {schema} (made by optuna {library}); "
            f"this optuna {optuna.__version__} needs schema {SCHEMA_VERSION}: use the optuna "
            "version that made them, or another database"
        )
    return storage


def run_study(
    spec: SearchSpec, evaluate: Callable[[int, str, Mapping[str, Any]], TrialResult]
) -> list[TrialResult]:
    """Run ``spec.trials`` TPE trials on the (possibly shared) study; return every completed
    trial of the study that edgeloop ran, in trial-number order."""
    import optuna

    from edgeloop.train._search import TrialResult

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=open_storage(spec.storage) if spec.storage else None,
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        study_name=spec.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValidationFailed(
            f"study {study.study_name!r} minimises; edgeloop's metrics are maximised",
            details={"field": "study_name"},
        )
    _check_study(study, spec)

    def objective(trial: optuna.Trial) -> float:
        if len(spec.models) > 1:
            model = str(trial.suggest_categorical("model", list(spec.models)))
        else:
            model = spec.models[0]
        space = spec.space_for(model)
        params = {name: suggest(trial, f"{model}.{name}", e) for name, e in space.items()}
        result = evaluate(trial.number, model, params)
        trial.set_user_attr(
            _ATTR,
            {
                "model": model,
                "params": params,
                "scores": result.scores,
                "mean": result.mean,
                "std": result.std,
                "run_id": result.run_id,
            },
        )
        return result.mean

    study.optimize(objective, n_trials=spec.trials, gc_after_trial=False)
    results = []
    complete = (optuna.trial.TrialState.COMPLETE,)
    for frozen in sorted(study.get_trials(deepcopy=False, states=complete), key=_number):
        attr = frozen.user_attrs.get(_ATTR)
        if attr is None:
            continue  # not an edgeloop trial
        results.append(
            TrialResult(
                model=attr["model"],
                params=dict(attr["params"]),
                scores=[float(s) for s in attr["scores"]],
                mean=float(attr["mean"]),
                std=float(attr["std"]),
                run_id=attr["run_id"],
            )
        )
    return results


def _number(trial: optuna.trial.FrozenTrial) -> int:
    return trial.number
