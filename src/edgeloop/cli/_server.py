"""``edgeloop server``: the REST API with uvicorn."""

from __future__ import annotations

import threading
from pathlib import Path

import typer

from edgeloop.cli._render import console
from edgeloop.config import load_settings
from edgeloop.governance import ensure_admin_token
from edgeloop.pipelines import Scheduler, open_pipeline_file
from edgeloop.workspace import Workspace


def server(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8080, help="Port to bind."),
    auth: bool | None = typer.Option(
        None,
        "--auth/--no-auth",
        help="Require API tokens. Default: on unless bound to loopback (EDGELOOP_AUTH=on|off).",
    ),
    pipelines: Path = typer.Option(
        Path("edgeloop.yaml"), help="Run the pipeline scheduler for this file, if it exists."
    ),
    schedule_every: float = typer.Option(30.0, help="Seconds between scheduler passes."),
    reconcile_every: float = typer.Option(
        5.0, help="Seconds between fleet reconciler passes (rollout waves, gates, rollbacks)."
    ),
    monitor_every: float = typer.Option(
        60.0, help="Seconds between monitoring passes (monitors, alert rules, their actions)."
    ),
    workers: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Server processes sharing the port (uvicorn workers); the scheduler and the "
        "reconciler run once, in this process.",
    ),
    access_log: bool = typer.Option(
        True, "--access-log/--no-access-log", help="Log every request (one line each)."
    ),
) -> None:
    """Run the REST API (and OpenAPI docs at /docs)."""
    import os

    import uvicorn

    from edgeloop.fleet._reconciler import Reconciler
    from edgeloop.monitors import MonitorLoop
    from edgeloop.server import create_app, is_loopback

    settings = load_settings()
    if auth is None:
        auth = settings.auth == "on" or (settings.auth == "auto" and not is_loopback(host))
    ws = Workspace.open(settings)
    if auth:
        token = ensure_admin_token(ws)
        if token:
            console.print("[bold]first start with auth on: admin token (shown once):[/]")
            typer.echo(token)
    console.print(
        f"edgeloop server on http://{host}:{port}  (API /api/v1, docs /docs, auth "
        f"{'on' if auth else 'off'}, database {ws.db.dialect}, artifacts {ws.artifacts.uri}"
        + (f", {workers} workers)" if workers > 1 else ")")
    )
    stop = threading.Event()
    if pipelines.is_file():
        worker = Scheduler(ws, open_pipeline_file(pipelines))
        threading.Thread(
            target=worker.run_forever,
            args=(stop, schedule_every),
            name="edgeloop-scheduler",
            daemon=True,
        ).start()
        console.print(f"scheduler: {pipelines} (pipelines {', '.join(worker.specs)})")
    reconciler = Reconciler(ws)
    threading.Thread(
        target=reconciler.run_forever,
        args=(stop, reconcile_every),
        name="edgeloop-reconciler",
        daemon=True,
    ).start()
    threading.Thread(
        target=MonitorLoop(ws).run_forever,
        args=(stop, monitor_every),
        name="edgeloop-monitors",
        daemon=True,
    ).start()
    try:
        if workers == 1:
            app = create_app(settings, workspace=ws, auth=auth)
            uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
        else:
            # Each worker builds its own app (and workspace) from the same settings.
            os.environ["EDGELOOP_AUTH"] = "on" if auth else "off"
            uvicorn.run(
                "edgeloop.server._app:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="info",
                access_log=access_log,
            )
    finally:
        stop.set()
        ws.close()
