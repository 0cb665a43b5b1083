"""The Typer application behind the ``edgeloop`` command."""

from __future__ import annotations

import typer

from edgeloop.cli._alerts import alerts_app, monitors_tick
from edgeloop.cli._collect import collect_app
from edgeloop.cli._data import app as data_app
from edgeloop.cli._demo import demo
from edgeloop.cli._edge import footprint, targets_app, tune
from edgeloop.cli._fleet import (
    devices_app,
    groups_app,
    reconcile,
    releases_app,
    rollouts_app,
    sim_fleet,
)
from edgeloop.cli._monitoring import monitors_ingest
from edgeloop.cli._monitors import monitors_app
from edgeloop.cli._pipelines import pipelines_app, run, scheduler, trigger_app
from edgeloop.cli._registry import models
from edgeloop.cli._server import server
from edgeloop.cli._tokens import tokens
from edgeloop.cli._tracking import experiments, runs

__all__ = ["app"]

app = typer.Typer(
    name="edgeloop",
    help="MLOps for servers and fleets of edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(experiments, name="experiments")
app.add_typer(runs, name="runs")
models.command("footprint")(footprint)
app.add_typer(models, name="models")
app.add_typer(targets_app, name="targets")
app.command("tune")(tune)
app.add_typer(devices_app, name="devices")
app.add_typer(groups_app, name="groups")
app.add_typer(releases_app, name="releases")
app.add_typer(rollouts_app, name="rollouts")
app.command("reconcile")(reconcile)
app.add_typer(collect_app, name="collect")
sim_app = typer.Typer(help="Simulators: a fleet of devices against a server.", no_args_is_help=True)
sim_app.command("fleet")(sim_fleet)
app.add_typer(sim_app, name="sim")
monitors_app.command("tick")(monitors_tick)
monitors_app.command("ingest")(monitors_ingest)
app.add_typer(monitors_app, name="monitors")
app.add_typer(alerts_app, name="alerts")
app.add_typer(tokens, name="tokens")
app.add_typer(pipelines_app, name="pipelines")
app.command("run")(run)
app.add_typer(trigger_app, name="trigger")
app.command("scheduler")(scheduler)
app.command("server")(server)
app.command("demo")(demo)
