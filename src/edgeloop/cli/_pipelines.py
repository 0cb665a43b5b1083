"""``edgeloop run`` and ``edgeloop pipelines``: run declared pipelines and look at their runs."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.errors import ValidationFailed
from edgeloop.pipelines import (
    PipelineRunInfo,
    Scheduler,
    check_code_change,
    check_data_change,
    open_pipeline_file,
    parse_params,
    pick_pipeline,
    run_pipeline,
)
from edgeloop.workspace import Workspace

pipelines_app = typer.Typer(help="Pipeline runs and their steps.", no_args_is_help=True)
trigger_app = typer.Typer(help="Queue pipeline runs (a scheduler runs them).", no_args_is_help=True)

_MARK = {
    "succeeded": "[green]✓[/]",
    "cached": "[cyan]↺[/]",
    "failed": "[red]✗[/]",
    "skipped": "[yellow]-[/]",
    "running": "[blue]…[/]",
    "pending": " ",
}


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "pipelines run against a local workspace: unset EDGELOOP_URL to run them here"
        )
    return backend.ws


def run(
    pipeline: str = typer.Argument("", help="Pipeline name (optional if only one is declared)."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (repeatable)."),
    force: list[str] = typer.Option([], "--force", help="Re-run STEP even if cached."),
    resume: str = typer.Option("", help="Continue a failed run: its succeeded steps are reused."),
    file: Path = typer.Option(Path("edgeloop.yaml"), "--file", "-f", help="Pipeline file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pipeline from edgeloop.yaml: cached steps are skipped, independent ones parallel."""
    spec = pick_pipeline(open_pipeline_file(file), pipeline, file)
    started = time.perf_counter()

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        bar = progress.add_task(spec.name, total=len(spec.steps))

        def event(step: str, status: str) -> None:
            if as_json:
                return
            if status == "running":
                progress.update(bar, description=f"{spec.name}: {step}")
                return
            progress.advance(bar)
            progress.console.print(f"{_MARK.get(status, '?')} {step} {status}")

        info = run_pipeline(
            _workspace(),
            spec,
            params=parse_params(param),
            force=force,
            resume=resume or None,
            on_event=event,
        )
    if as_json:
        emit_json(info)
    else:
        console.print(f"run {info.id} {info.status} in {time.perf_counter() - started:.2f} s")
    if info.status != "succeeded":
        raise typer.Exit(1)


@pipelines_app.command("runs")
def runs(
    pipeline: str = typer.Option("", help="Only this pipeline."),
    limit: int = typer.Option(20),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recent pipeline runs."""
    items = get_backend().list_pipeline_runs(pipeline or None, limit)
    if as_json:
        emit_json(items)
        return
    table(
        "pipeline runs",
        ["run", "pipeline", "status", "started", "steps", "why"],
        [
            (
                r.id[:12],
                r.pipeline,
                r.status,
                when(r.started_at),
                " ".join(f"{s.name}:{s.status}" for s in r.steps),
                ", ".join(r.reasons),
            )
            for r in items
        ],
    )


def _dag(info: PipelineRunInfo) -> None:
    depth: dict[str, int] = {}
    for s in info.steps:  # recorded in topological order
        ups = [v["step"] for v in s.inputs.values() if isinstance(v, dict) and "step" in v]
        depth[s.name] = 1 + max((depth[u] for u in ups if u in depth), default=-1)
        source = f" ← {', '.join(sorted(set(ups)))}" if ups else ""
        took = (
            f" {(s.ended_at - s.started_at) / 1000:.2f}s"
            if s.ended_at is not None and s.started_at is not None
            else ""
        )
        console.print(
            f"{'  ' * depth[s.name]}{_MARK.get(s.status, '?')} {s.name} "
            f"[dim]{s.status}{took}{source}[/]"
        )
        if s.error:
            console.print(f"{'  ' * depth[s.name]}  [red]{s.error.strip().splitlines()[-1]}[/]")


@pipelines_app.command("show")
def show(run_id: str, as_json: bool = JSON_OPTION) -> None:
    """One pipeline run: the DAG with each step's status, and its lineage."""
    info = get_backend().get_pipeline_run(run_id)
    if as_json:
        emit_json(info)
        return
    console.print(
        f"[bold]{info.pipeline}[/] run {info.id} {info.status} "
        f"(started {when(info.started_at)}, params {info.params})"
    )
    _dag(info)


FILE_OPTION = typer.Option(Path("edgeloop.yaml"), "--file", "-f", help="Pipeline file.")


@pipelines_app.command("queue")
def queue(as_json: bool = JSON_OPTION) -> None:
    """Runs waiting for the scheduler, with every reason they were queued for."""
    items = get_backend().pipeline_queue()
    if as_json:
        emit_json(items)
        return
    table(
        "queued runs",
        ["pipeline", "queued", "reasons"],
        [
            (
                q.pipeline,
                when(q.queued_at),
                ", ".join(f"{k} x{len(v)}" for k, v in q.reasons.items()),
            )
            for q in items
        ],
    )


@trigger_app.command("code-change")
def code_change(pipeline: str = typer.Argument(""), file: Path = FILE_OPTION) -> None:
    """Queue a run if the pipeline's step code changed since its last success (a CI hook)."""
    entry = check_code_change(_workspace(), pick_pipeline(open_pipeline_file(file), pipeline, file))
    console.print(f"queued {entry.pipeline}: code changed" if entry else "code unchanged")


@trigger_app.command("data-change")
def data_change(pipeline: str = typer.Argument(""), file: Path = FILE_OPTION) -> None:
    """Queue a run if a dataset the pipeline reads has a new version."""
    entry = check_data_change(_workspace(), pick_pipeline(open_pipeline_file(file), pipeline, file))
    console.print(f"queued {entry.pipeline}: new data" if entry else "data unchanged")


@trigger_app.command("manual")
def manual(pipeline: str, note: str = typer.Option("", help="Why.")) -> None:
    """Queue a run of PIPELINE for the scheduler."""
    get_backend().trigger_pipeline(pipeline, "manual", {"note": note} if note else {})
    console.print(f"queued {pipeline}")


def scheduler(
    file: Path = FILE_OPTION,
    once: bool = typer.Option(False, help="One pass, then exit."),
    interval: float = typer.Option(30.0, help="Seconds between passes."),
) -> None:
    """Fire schedule, data-change and code-change triggers and run queued pipelines."""
    import threading

    def report(info: PipelineRunInfo) -> None:
        console.print(f"{info.pipeline} run {info.id} {info.status} ({', '.join(info.reasons)})")

    worker = Scheduler(_workspace(), open_pipeline_file(file), on_run=report)
    if once:
        worker.tick()
        return
    stop = threading.Event()
    try:
        worker.run_forever(stop, interval)
    except KeyboardInterrupt:
        stop.set()
    finally:
        worker.release()
