"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts, lineage, search.

Each function is one transaction on the workspace's database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO

from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.pages import Page, check_limit, decode_cursor, next_cursor
from edgeloop.store import (
    Experiment as ExperimentRow,
)
from edgeloop.store import (
    ExperimentStore,
    MetricRow,
    RunDetails,
    RunStore,
    parse_filter,
    parse_order_by,
)
from edgeloop.store import (
    Run as RunRow,
)
from edgeloop.tracking._entities import (
    TERMINAL_STATUSES,
    ArtifactEntry,
    Experiment,
    Metric,
    MetricPoint,
    Run,
    RunInput,
)
from edgeloop.tracking._validate import (
    check_artifact_path,
    check_key,
    check_metric_value,
    check_name,
    check_str_mapping,
)
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "DEFAULT_EXPERIMENT",
    "create_experiment",
    "create_run",
    "delete_tag",
    "get_experiment",
    "get_or_create_experiment",
    "get_run",
    "list_artifacts",
    "list_experiments",
    "log_inputs",
    "log_metrics",
    "log_params",
    "metric_history",
    "put_artifact",
    "read_artifact",
    "search_runs",
    "set_run_status",
    "set_tags",
]

DEFAULT_EXPERIMENT = "Default"
_STATUSES = ("running", *TERMINAL_STATUSES)


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _run(d: RunDetails) -> Run:
    # Rows come from our own database: construct without re-validating every field.
    r = d.run
    return Run.model_construct(
        id=r["id"],
        experiment_id=r["experiment_id"],
        name=r["name"],
        status=r["status"],
        start_time=r["start_time"],
        end_time=r["end_time"],
        parent_run_id=r["parent_run_id"],
        created_by=r["created_by"],
        params=d.params,
        metrics=d.metrics,
        tags=d.tags,
        lineage=dict(r["lineage"] or {}),
        inputs=[
            RunInput.model_construct(ref=i["ref"], kind=i["kind"], digest=i["digest"])
            for i in d.inputs
        ],
    )


# experiments --------------------------------------------------------------------------


def create_experiment(
    ws: Workspace, name: str, description: str = "", tags: Mapping[str, str] | None = None
) -> Experiment:
    check_name("experiment", name)
    clean_tags = check_str_mapping("tag", tags)
    with ws.db.write() as s:
        row = ExperimentStore(s).add(
            name=name,
            description=description,
            tags=clean_tags,
            created_at=now_ms(),
            created_by=ws.principal.name,
        )
        return _experiment(row)


def _find_experiment(store: ExperimentStore, ref: int | str) -> ExperimentRow:
    row = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = store.by_id(int(ref))
    if row is None and isinstance(ref, str):
        row = store.by_name(ref)
    if row is None:
        raise NotFound(f"experiment {ref!r} does not exist", details={"experiment": str(ref)})
    return row


def get_experiment(ws: Workspace, ref: int | str) -> Experiment:
    """An experiment by id or by name."""
    with ws.db.read() as s:
        return _experiment(_find_experiment(ExperimentStore(s), ref))


def get_or_create_experiment(ws: Workspace, name: str) -> Experiment:
    try:
        return get_experiment(ws, name)
    except NotFound:
        try:
            return create_experiment(ws, name)
        except Conflict:  # created by someone else in between
            return get_experiment(ws, name)


def list_experiments(
    ws: Workspace, cursor: str | None = None, limit: int = 100
) -> Page[Experiment]:
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        rows = ExperimentStore(s).page(offset, limit + 1)
    return Page[Experiment](
        items=[_experiment(r) for r in rows[:limit]],
        next_cursor=next_cursor(offset, limit, len(rows)),
    )


# runs ---------------------------------------------------------------------------------


def create_run(
    ws: Workspace,
    experiment: int | str = DEFAULT_EXPERIMENT,
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    inputs: Sequence[RunInput] = (),
    parent_run_id: str | None = None,
) -> Run:
    """Start a run (status ``running``); creates the experiment if it is named and absent."""
    run_id = uuid.uuid4().hex
    run_name = check_name("run", name) if name else f"run-{run_id[:8]}"
    clean_params = check_str_mapping("param", params)
    clean_tags = check_str_mapping("tag", tags)
    if isinstance(experiment, str) and not experiment.isdigit():
        exp_id = get_or_create_experiment(ws, check_name("experiment", experiment)).id
    else:
        exp_id = get_experiment(ws, experiment).id
    with ws.db.write() as s:
        runs = RunStore(s)
        if parent_run_id is not None:
            runs.get(parent_run_id)
        runs.add(
            RunRow(
                id=run_id,
                experiment_id=exp_id,
                name=run_name,
                status="running",
                start_time=now_ms(),
                end_time=None,
                parent_run_id=parent_run_id,
                created_by=ws.principal.name,
                lineage=dict(lineage or {}),
            )
        )
        runs.add_params(run_id, clean_params)
        runs.set_tags(run_id, clean_tags)
        runs.add_inputs(run_id, [_input_row(i) for i in inputs])
        return _run(runs.details([run_id])[0])


def _input_row(item: RunInput) -> dict[str, str]:
    if not item.ref or len(item.ref) > 512:
        raise ValidationFailed(f"run input ref {item.ref!r} must be 1-512 characters")
    return {"ref": item.ref, "kind": item.kind, "digest": item.digest}


def get_run(ws: Workspace, run_id: str) -> Run:
    with ws.db.read() as s:
        runs = RunStore(s)
        runs.get(run_id)
        return _run(runs.details([run_id])[0])


def set_run_status(ws: Workspace, run_id: str, status: str) -> Run:
    """Move a run to another status; a finished, failed or killed run stays so."""
    if status not in _STATUSES:
        raise ValidationFailed(
            f"status {status!r} is not allowed; use one of {', '.join(_STATUSES)}"
        )
    with ws.db.write() as s:
        runs = RunStore(s)
        row = runs.get(run_id, for_update=True)
        if row.status != status:
            if row.status in TERMINAL_STATUSES:
                raise Conflict(
                    f"run {run_id} is already {row.status}; it cannot become {status}",
                    details={"status": row.status},
                )
            row.status = status
            row.end_time = now_ms() if status in TERMINAL_STATUSES else None
        s.flush()
        return _run(runs.details([run_id])[0])


def log_params(ws: Workspace, run_id: str, params: Mapping[str, Any]) -> None:
    """Params are write-once: the same value again is fine, another value is a conflict."""
    clean = check_str_mapping("param", params)
    if not clean:
        return
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        existing = runs.params(run_id, clean)
        changed = {
            k: (existing[k], v) for k, v in clean.items() if k in existing and existing[k] != v
        }
        if changed:
            key, (old, new) = next(iter(changed.items()))
            raise Conflict(
                f"param {key!r} of run {run_id} is already {old!r}; it cannot be changed to "
                f"{new!r} (params are write-once: log a new run, or use a tag)",
                details={"changed": {k: {"old": o, "new": n} for k, (o, n) in changed.items()}},
            )
        runs.add_params(run_id, {k: v for k, v in clean.items() if k not in existing})


def set_tags(ws: Workspace, run_id: str, tags: Mapping[str, Any]) -> None:
    clean = check_str_mapping("tag", tags)
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        runs.set_tags(run_id, clean)


def delete_tag(ws: Workspace, run_id: str, key: str) -> None:
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        if not runs.delete_tag(run_id, check_key("tag", key)):
            raise NotFound(f"run {run_id} has no tag {key!r}")


def log_metrics(ws: Workspace, run_id: str, points: Iterable[MetricPoint]) -> int:
    """Append metric points in one transaction; returns how many were stored."""
    rows: list[MetricRow] = []
    keys: set[str] = set()
    for p in points:
        if p.key not in keys:
            keys.add(check_key("metric", p.key))
        value = p.value
        if type(value) is not float or not math.isfinite(value):
            value = check_metric_value(p.key, value)
        rows.append(MetricRow(p.key, value, int(p.step), int(p.timestamp)))
    if not rows:
        return 0
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        runs.add_metrics(run_id, rows)
    return len(rows)


def metric_history(ws: Workspace, run_id: str, key: str) -> list[Metric]:
    with ws.db.read() as s:
        runs = RunStore(s)
        runs.get(run_id)
        return [
            Metric(key=m.key, value=m.value, step=m.step, timestamp=m.timestamp)
            for m in runs.metric_history(run_id, check_key("metric", key))
        ]


def log_inputs(ws: Workspace, run_id: str, inputs: Sequence[RunInput]) -> None:
    rows = [_input_row(i) for i in inputs]
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        runs.add_inputs(run_id, rows)


# artifacts ----------------------------------------------------------------------------


def put_artifact(
    ws: Workspace, run_id: str, path: str, stream: BinaryIO, *, max_bytes: int | None = None
) -> ArtifactEntry:
    """Store ``stream`` as a blob and record it under ``path`` of the run."""
    check_artifact_path(path)
    get_run(ws, run_id)
    blob = ws.artifacts.put_stream(stream, max_bytes=max_bytes or ws.settings.max_artifact_bytes)
    with ws.db.write() as s:
        runs = RunStore(s)
        runs.get(run_id)
        runs.put_artifact(run_id, path, blob.digest, blob.size)
    return ArtifactEntry(path=path, digest=blob.digest, size=blob.size)


def list_artifacts(ws: Workspace, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
    if prefix:
        check_artifact_path(prefix.rstrip("/"))
    with ws.db.read() as s:
        runs = RunStore(s)
        runs.get(run_id)
        return [
            ArtifactEntry(path=a.path, digest=a.digest, size=a.size)
            for a in runs.artifacts(run_id, prefix)
        ]


def read_artifact(ws: Workspace, run_id: str, path: str) -> ArtifactEntry:
    """The entry for ``path``; read its bytes with ``ws.artifacts`` (verified on read)."""
    check_artifact_path(path)
    for entry in list_artifacts(ws, run_id, path):
        if entry.path == path:
            return entry
    raise NotFound(f"run {run_id} has no artifact {path!r}", details={"path": path})


# search -------------------------------------------------------------------------------


def search_runs(
    ws: Workspace,
    experiments: Sequence[int | str] | int | str = (),
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    cursor: str | None = None,
) -> Page[Run]:
    """Runs of ``experiments`` (all when empty) that match ``filter``, ordered by ``order_by``.

    >>> search_runs(ws, "digits", "metrics.f1 > 0.9 and params.model = 'mlp'",
    ...             order_by=["metrics.f1 desc"], max_results=10)  # doctest: +SKIP
    """
    node = parse_filter(filter)
    order = parse_order_by(order_by)
    offset, limit = decode_cursor(cursor), check_limit(max_results)
    refs = [experiments] if isinstance(experiments, int | str) else list(experiments)
    with ws.db.read() as s:
        exp_store = ExperimentStore(s)
        if refs:
            exp_ids = [_find_experiment(exp_store, ref).id for ref in refs]
        else:
            exp_ids = [e.id for e in exp_store.page(0, 1_000_000)]
        runs = RunStore(s)
        ids = runs.search(exp_ids, node, order, offset, limit + 1)
        items = [_run(d) for d in runs.details(ids[:limit])]
    return Page[Run](items=items, next_cursor=next_cursor(offset, limit, len(ids)))
