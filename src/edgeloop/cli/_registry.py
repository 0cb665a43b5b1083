"""``edgeloop models``: registered models, versions and aliases."""

from __future__ import annotations

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import get_backend

models = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)
alias = typer.Typer(
    help="Set, delete and trace aliases (production, canary, ...).", no_args_is_help=True
)
models.add_typer(alias, name="alias")


@models.command("list")
def list_models(limit: int = typer.Option(100), as_json: bool = JSON_OPTION) -> None:
    """List registered models."""
    page = get_backend().list_models(limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "models",
        ["name", "latest", "aliases", "updated"],
        [
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
                when(m.updated_at),
            )
            for m in page.items
        ],
    )


@models.command("show")
def show_model(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show a model's versions and aliases."""
    backend = get_backend()
    model, versions = backend.get_model(name), backend.list_model_versions(name)
    if as_json:
        emit_json({"model": model, "versions": versions})
        return
    console.print(f"[bold]{model.name}[/] {model.description}")
    metric_keys = sorted({k for v in versions for k in v.metrics})[:5]
    table(
        "versions",
        ["version", "status", "aliases", "run", "created", *metric_keys],
        [
            (
                v.version,
                v.status,
                ", ".join(v.aliases),
                (v.source_run_id or "")[:12],
                when(v.created_at),
                *(v.metrics.get(k) for k in metric_keys),
            )
            for v in versions
        ],
    )


@models.command("register")
def register(
    name: str,
    run: str = typer.Option(..., "--run", help="Run id that logged the model."),
    path: str = typer.Option("model", help="Artifact path of the model in the run."),
) -> None:
    """Register a logged model as the next version of NAME."""
    version = get_backend().create_model_version(name, run_id=run, path=path)
    console.print(f"registered {version.uri}")


@alias.command("set")
def set_alias(
    name: str,
    alias_name: str,
    version: int,
    reason: str = typer.Option("", help="Why (kept in the history)."),
) -> None:
    """Point ALIAS_NAME of model NAME at VERSION."""
    change = get_backend().set_alias(name, alias_name, version, reason)
    moved = f"from {change.from_version} " if change.from_version else ""
    console.print(f"models:/{name}@{alias_name} moved {moved}to {change.to_version}")


@alias.command("delete")
def delete_alias(name: str, alias_name: str, reason: str = typer.Option("")) -> None:
    """Delete an alias (kept in the history)."""
    get_backend().delete_alias(name, alias_name, reason)
    console.print(f"deleted models:/{name}@{alias_name}")


@alias.command("history")
def alias_history(
    name: str, alias_name: str = typer.Option("", "--alias"), as_json: bool = JSON_OPTION
) -> None:
    """Every move of the model's aliases: who, when, from which version to which."""
    changes = get_backend().alias_history(name, alias_name or None)
    if as_json:
        emit_json(changes)
        return
    table(
        f"alias history of {name}",
        ["when", "alias", "from", "to", "by", "reason"],
        [(when(c.at), c.alias, c.from_version, c.to_version, c.actor, c.reason) for c in changes],
    )
