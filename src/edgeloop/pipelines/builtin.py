"""Built-in steps: ``train``, ``evaluate``, ``gate``, ``export`` (edge) and ``register``.

Use them in ``edgeloop.yaml`` like any step, e.g. ``run: edgeloop.pipelines.builtin:gate``.
They record what they do in the pipeline's workspace (the step context says which).
"""

from __future__ import annotations

import io
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from edgeloop import registry, tracking
from edgeloop.edge._export import (
    DEFAULT_TARGETS,
    EdgeExport,
    attach_edge_export,
    build_edge_export,
)
from edgeloop.edge._footprint import footprint_table
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.pipelines._context import current_context, step_workspace
from edgeloop.registry import load_predictor, save_sklearn
from edgeloop.tracking import MetricPoint
from edgeloop.train import (
    ClassificationReport,
    RegressionReport,
    bar_chart_svg,
    confusion_matrix_svg,
    evaluate_classifier,
    evaluate_regressor,
    feature_importance_svg,
    pr_curves_svg,
    roc_curves_svg,
)
from edgeloop.workspace import now_ms

__all__ = ["GateFailed", "evaluate", "export", "gate", "parse_threshold", "register", "train"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[\w.\-=]+)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+\d.eE]+)\s*$"
)


class GateFailed(ValidationFailed):
    """A model that did not pass its gate; ``details["report"]`` says which check and by how
    much."""

    code = "gate_failed"
    http_status = 422


def train(
    X: np.ndarray,
    y: np.ndarray,
    models: Sequence[str] = ("logistic_regression",),
    method: str = "grid",
    metric: str = "accuracy",
    cv: int | str = 5,
    cv_method: str = "stratified",
    trials: int = 20,
    seed: int = 0,
    groups: np.ndarray | None = None,
    folds: np.ndarray | None = None,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    spaces: Mapping[str, Mapping[str, Any]] | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """Search the model zoo with cross-validation, refit the best, and record it all.

    The step's run (in ``experiment``, default the pipeline's name) holds the search settings,
    the seed, the best trial's params and CV scores, and the refit model under ``model/``
    (ready for ``register``); every trial is a child run. Optuna studies live in the
    workspace's database (``PIPELINE.STEP``), so several workers can share one.
    """
    from edgeloop.train import SearchSpec, TrialResult, search

    ws = step_workspace()
    context = current_context()
    settings = {
        "models": ",".join(models),
        "method": method,
        "metric": metric,
        "cv": cv,
        "cv_method": cv_method,
        "trials": trials,
        "seed": seed,
    }
    run = tracking.create_run(
        ws,
        experiment or context.pipeline,
        context.step,
        params=settings,
        lineage={**tracking.capture_lineage(), **context.lineage()},
        inputs=[
            tracking.RunInput(ref=uri, digest=digest) for uri, digest in context.datasets.items()
        ],
    )

    def on_trial(index: int, trial: TrialResult, name: str) -> str:
        child = tracking.create_run(
            ws,
            run.experiment_id,
            f"{trial.model}-{index}",
            parent_run_id=run.id,
            params={"model": trial.model, **trial.params},
        )
        points = tracking.cv_metric_points(name, trial.scores, trial.mean, trial.std, now_ms())
        tracking.log_metrics(ws, child.id, points)
        tracking.set_run_status(ws, child.id, "finished")
        return child.id

    spec = SearchSpec(
        models=tuple(models),
        # SearchSpec checks these values and names what is allowed
        method=cast(Any, method),
        trials=trials,
        metric=metric,
        cv=cast(Any, cv if cv == "folds" else int(cv)),
        cv_method=cast(Any, cv_method),
        seed=seed,
        grids=dict(grids or {}),
        spaces=dict(spaces or {}),
        storage=ws.settings.database_url if method == "optuna" else None,
        study_name=f"{context.pipeline}.{context.step}" if method == "optuna" else None,
    )
    try:
        result = search(X, y, spec, groups=groups, folds=folds, on_trial=on_trial)
        best = result.best
        tracking.set_tags(
            ws, run.id, {"best_model": best.model, "best_trial_run": best.run_id or ""}
        )
        tracking.log_params(ws, run.id, {f"best.{k}": v for k, v in best.params.items()})
        tracking.log_metrics(
            ws,
            run.id,
            tracking.cv_metric_points(metric, best.scores, best.mean, best.std, now_ms()),
        )
        for rel, data in save_sklearn(result.estimator, np.asarray(X)[:5]).items():
            tracking.put_artifact(ws, run.id, f"model/{rel}", io.BytesIO(data))
        per_model: dict[str, float] = {}
        for trial in result.trials:
            per_model[trial.model] = max(per_model.get(trial.model, -np.inf), trial.mean)
        chart = bar_chart_svg(per_model, f"Best cross-validated {metric} per model", metric)
        tracking.put_artifact(ws, run.id, "plots/model_comparison.svg", io.BytesIO(chart.encode()))
    except BaseException:
        tracking.set_run_status(ws, run.id, "failed")
        raise
    tracking.set_run_status(ws, run.id, "finished")
    return {"model": result.estimator, "run_id": run.id, "search": result.to_dict()}


def _importances(model: Any) -> np.ndarray | None:
    target = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(target, "feature_importances_"):
        return np.asarray(target.feature_importances_, dtype=float)
    if hasattr(target, "coef_"):
        coef: np.ndarray = np.abs(np.asarray(target.coef_, dtype=float))
        return np.asarray(coef.mean(axis=0)) if coef.ndim == 2 else coef
    return None


def evaluate(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    run_id: str | None = None,
    slices: Mapping[str, Sequence[Any]] | None = None,
    feature_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics (overall and per slice) of ``model`` on a test split; with ``run_id``, the
    metrics (``test.*``) and plots (confusion matrix, ROC and PR curves for classifiers; feature
    importance for both) are stored on that run. Regressors get MAE, RMSE, R² and MAPE."""
    report, proba, labels = _report(model, X, y, slices)
    metrics = report.to_metrics()
    if run_id:
        ws = step_workspace()
        at = now_ms()
        tracking.log_metrics(
            ws,
            run_id,
            [
                MetricPoint(key=f"test.{k}", value=v, step=0, timestamp=at)
                for k, v in metrics.items()
                if np.isfinite(v)
            ],
        )
        plots: dict[str, str] = {}
        if isinstance(report, ClassificationReport):
            plots["plots/confusion_matrix.svg"] = confusion_matrix_svg(report.confusion, labels)
            if proba is not None:
                y_true = np.asarray([str(v) for v in y])
                plots["plots/roc.svg"] = roc_curves_svg(y_true, proba, labels)
                plots["plots/pr.svg"] = pr_curves_svg(y_true, proba, labels)
        importances = _importances(model)
        if importances is not None and importances.size == np.asarray(X).shape[1]:
            names = list(feature_names or [f"f{i}" for i in range(importances.size)])
            plots["plots/feature_importance.svg"] = feature_importance_svg(
                dict(zip(names, importances.tolist(), strict=True))
            )
        for path, svg in plots.items():
            tracking.put_artifact(ws, run_id, path, io.BytesIO(svg.encode()))
    return {"metrics": metrics, "report": report.to_dict()}


def _report(
    model: Any, X: np.ndarray, y: np.ndarray, slices: Mapping[str, Sequence[Any]] | None = None
) -> tuple[ClassificationReport | RegressionReport, np.ndarray | None, list[str]]:
    """Score a fitted estimator (or a predictor) on ``X``/``y``: a classification report for
    classifiers, a regression report for regressors."""
    from sklearn.base import is_regressor

    estimator = getattr(model, "model", model)  # a registry Predictor wraps the estimator
    if is_regressor(estimator):
        return evaluate_regressor(y, model.predict(X), slices=slices), None, []
    proba = model.predict_proba(X) if hasattr(estimator, "predict_proba") else None
    labels = [str(c) for c in getattr(estimator, "classes_", np.unique(y))]
    y_true = np.asarray([str(v) for v in y])
    y_pred = np.asarray([str(v) for v in model.predict(X)])
    report = evaluate_classifier(y_true, y_pred, proba=proba, labels=labels, slices=slices)
    return report, proba, labels


def parse_threshold(text: str) -> tuple[str, str, float]:
    match = _THRESHOLD.match(text)
    if match is None:
        raise ValidationFailed(
            f"gate threshold {text!r} is not understood; write METRIC OP NUMBER, e.g. "
            "'f1_macro >= 0.9' (OP one of >=, <=, >, <, ==)"
        )
    return match["metric"], match["op"], float(match["value"])


def gate(
    metrics: Mapping[str, float],
    thresholds: Sequence[str] = (),
    baseline: str | None = None,
    baseline_metric: str = "f1_macro",
    max_drop: float = 0.01,
    X: np.ndarray | None = None,
    y: np.ndarray | None = None,
) -> dict[str, Any]:
    """Pass the model on, or fail the step (so nothing downstream is registered).

    ``thresholds`` are checks like ``f1_macro >= 0.9``; ``baseline`` (``models:/x@production``)
    with ``X``/``y`` is the "not worse than production by more than ``max_drop`` on the same
    test split" check. A missing baseline model passes (there is nothing to be worse than).
    """
    checks: list[dict[str, Any]] = []
    for text in thresholds:
        metric, op, limit = parse_threshold(text)
        if metric not in metrics:
            raise ValidationFailed(
                f"gate threshold {text!r} names metric {metric!r}, which the evaluation does "
                f"not have; it has {', '.join(sorted(metrics))}"
            )
        value = float(metrics[metric])
        checks.append(
            {
                "check": text,
                "value": value,
                "limit": limit,
                "passed": _OPS[op](value, limit),
                "by": value - limit,
            }
        )
    if baseline:
        if X is None or y is None:
            raise ValidationFailed("a baseline gate needs the test split: give X and y inputs")
        ws = step_workspace()
        try:
            version = registry.resolve_model_uri(ws, baseline)
        except NotFound:
            checks.append(
                {
                    "check": f"not worse than {baseline}",
                    "passed": True,
                    "note": f"{baseline} does not exist yet",
                }
            )
        else:
            files = {
                f.path: ws.artifacts.get_bytes(f.digest)
                for f in registry.model_version_files(ws, version.name, version.version)
            }
            old = _report(load_predictor(files), X, y)[0].to_metrics()
            ours, theirs = float(metrics[baseline_metric]), float(old[baseline_metric])
            checks.append(
                {
                    "check": f"{baseline_metric} not worse than {baseline} (v{version.version}) by "
                    f"more than {max_drop}",
                    "value": ours,
                    "baseline": theirs,
                    "by": ours - (theirs - max_drop),
                    "passed": ours >= theirs - max_drop,
                }
            )
    report = {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "step": current_context().step,
    }
    if not report["passed"]:
        failed = "; ".join(
            f"{c['check']}: {c.get('value', '?'):.4g} misses by {abs(c['by']):.4g}"
            for c in checks
            if not c["passed"]
        )
        raise GateFailed(f"gate failed: {failed}", details={"report": report})
    return {"report": report}


def export(
    model: Any,
    X_calib: Any,
    X_test: Any,
    y_test: Any,
    features: Mapping[str, Any] | None = None,
    window: Sequence[int] | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
    max_drop_points: float = 1.0,
    arduino: bool = False,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Quantize the model to int8 (or quantized trees), export C (with the feature block
    when ``features`` and ``window`` are given) and ONNX, and measure every target.

    Fails — so nothing after it runs — when int8 loses more than ``max_drop_points`` points
    of accuracy on the test split. Returns ``edge`` (for ``register``, which stores it on the
    new version) and ``report`` (accuracy and a footprint table). With ``run_id`` the float
    and int8 accuracy are logged on that run."""
    result = build_edge_export(
        model,
        X_calib=X_calib,
        X_test=X_test,
        y_test=y_test,
        targets=list(targets),
        features=features,
        window=(int(window[0]), int(window[1])) if window is not None else None,
        max_drop_points=max_drop_points,
        arduino=arduino,
    )
    report = {
        "kind": result.kind,
        "accuracy": result.accuracy,
        "footprints": footprint_table(result.footprints),
        "files": sorted(result.files),
    }
    if run_id:
        at = now_ms()
        tracking.log_metrics(
            step_workspace(),
            run_id,
            [
                MetricPoint(key=f"edge.{k}", value=float(result.accuracy[k]), step=0, timestamp=at)
                for k in ("float_accuracy", "int8_accuracy", "drop_points", "agreement")
            ],
        )
    return {"edge": result, "report": report}


def register(
    run_id: str,
    name: str,
    alias: str | None = None,
    path: str = "model",
    description: str = "",
    gate: Mapping[str, Any] | None = None,
    edge: EdgeExport | None = None,
) -> dict[str, Any]:
    """Register the model the run logged under ``path`` as the next version of ``name`` (with
    the pipeline run and dataset versions in its lineage) and move ``alias`` to it.

    Wire the gate step's ``report`` into ``gate`` so registration waits for it (and refuses a
    report that did not pass), and the ``export`` step's ``edge`` into ``edge`` to store the
    edge files and footprints on the version before the alias moves."""
    if gate is not None and not gate.get("passed"):
        raise GateFailed("the gate did not pass: nothing is registered", details={"report": gate})
    ws = step_workspace()
    context = current_context()
    version = registry.create_model_version(
        ws,
        name,
        run_id=run_id,
        path=path,
        description=description,
        tags={"pipeline": context.pipeline, "pipeline_run_id": context.pipeline_run_id},
    )
    if edge is not None:
        attach_edge_export(ws, name, version.version, edge)
    if alias:
        registry.set_alias(
            ws,
            name,
            alias,
            version.version,
            reason=f"pipeline {context.pipeline} run {context.pipeline_run_id}",
        )
    return {"model_version": version.uri}
