"""``edgeloop experiments`` and ``edgeloop runs``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from edgeloop.cli._render import JSON_OPTION, console, emit_json, fmt, table, when
from edgeloop.client import get_backend

experiments = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs = typer.Typer(help="Runs: params, metrics, tags, artifacts and lineage.", no_args_is_help=True)


@experiments.command("list")
def list_experiments(
    limit: int = typer.Option(100, help="At most this many."), as_json: bool = JSON_OPTION
) -> None:
    """List experiments."""
    page = get_backend().list_experiments(limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "experiments",
        ["id", "name", "created", "by"],
        [(e.id, e.name, when(e.created_at), e.created_by) for e in page.items],
    )


@experiments.command("create")
def create_experiment(
    name: str, description: str = typer.Option("", help="What the experiment is for.")
) -> None:
    """Create an experiment."""
    exp = get_backend().create_experiment(name, description)
    console.print(f"created experiment {exp.name} (id {exp.id})")


@runs.command("list")
def list_runs(
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment", "-e", help="Experiment name or id (repeatable); all when omitted."
        ),
    ] = None,
    filter: str = typer.Option(
        "", "--filter", "-f", help="e.g. \"metrics.f1 > 0.9 and params.model = 'mlp'\""
    ),
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.f1 desc' (repeatable)"),
    ] = None,
    max_results: int = typer.Option(50, help="At most this many runs."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search runs with a filter expression."""
    page = get_backend().search_runs(experiment or [], filter or None, order_by, max_results)
    if as_json:
        emit_json(page.items)
        return
    metric_keys = sorted({k for r in page.items for k in r.metrics})[:6]
    table(
        "runs",
        ["run", "name", "status", "started", *metric_keys],
        [
            (
                r.id[:12],
                r.name,
                r.status,
                when(r.start_time),
                *(r.metrics.get(k) for k in metric_keys),
            )
            for r in page.items
        ],
    )


@runs.command("show")
def show_run(run_id: str, as_json: bool = JSON_OPTION) -> None:
    """Show one run: params, latest metrics, tags, lineage, artifacts."""
    backend = get_backend()
    run = backend.get_run(run_id)
    artifacts = backend.list_artifacts(run_id)
    if as_json:
        emit_json({"run": run, "artifacts": artifacts})
        return
    console.print(
        f"[bold]{run.name}[/] {run.id}  status={run.status}  "
        f"started={when(run.start_time)} ended={when(run.end_time)}"
    )
    table("params", ["key", "value"], sorted(run.params.items()))
    table("metrics (latest)", ["key", "value"], sorted(run.metrics.items()))
    table("tags", ["key", "value"], sorted(run.tags.items()))
    table("lineage", ["key", "value"], sorted((k, str(v)) for k, v in run.lineage.items()))
    table(
        "artifacts",
        ["path", "size", "sha256"],
        [(a.path, a.size, a.digest[:16]) for a in artifacts],
    )


@runs.command("compare")
def compare_runs(run_ids: list[str], as_json: bool = JSON_OPTION) -> None:
    """Show two or more runs side by side; values that differ are highlighted."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give two or more run ids")
    backend = get_backend()
    items = [backend.get_run(r) for r in run_ids]
    rows: list[tuple[str, list[str]]] = [
        ("name", [r.name for r in items]),
        ("status", [r.status for r in items]),
    ]
    for section in ("params", "metrics", "tags"):
        sections: list[dict[str, Any]] = [getattr(r, section) for r in items]
        keys = sorted({k for v in sections for k in v})
        rows += [(f"{section}.{k}", [fmt(v.get(k)) for v in sections]) for k in keys]
    if as_json:
        emit_json(
            {
                "runs": [r.id for r in items],
                "rows": [{"field": f, "values": v, "differs": len(set(v)) > 1} for f, v in rows],
            }
        )
        return
    t = Table(title="run comparison (differences in yellow)", title_justify="left")
    t.add_column("field")
    for r in items:
        t.add_column(r.id[:12])
    for field, values in rows:
        style = "bold yellow" if len(set(values)) > 1 else None
        t.add_row(field, *values, style=style)
    console.print(t)


@runs.command("metrics")
def metric_history(run_id: str, key: str, as_json: bool = JSON_OPTION) -> None:
    """Print the full series of one metric."""
    history = get_backend().metric_history(run_id, key)
    if as_json:
        emit_json(history)
        return
    table(
        f"{key} of {run_id[:12]}",
        ["step", "value", "time"],
        [(m.step, m.value, when(m.timestamp)) for m in history],
    )
