"""``edgeloop tokens``: API tokens for the REST server."""

from __future__ import annotations

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import get_backend

tokens = typer.Typer(help="API tokens (viewer, editor, admin).", no_args_is_help=True)


@tokens.command("create")
def create(
    role: str = typer.Option(..., help="viewer, editor or admin"),
    name: str = typer.Option("token", help="A name to recognise it by."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token; it is printed once and never shown again."""
    info, token = get_backend().create_token(name, role)
    if as_json:
        emit_json({"info": info, "token": token})
        return
    console.print(f"token {info.id} ({info.role}); store it now, it is not shown again:")
    typer.echo(token)


@tokens.command("list")
def list_tokens(as_json: bool = JSON_OPTION) -> None:
    """List tokens (never their secrets)."""
    items = get_backend().list_tokens()
    if as_json:
        emit_json(items)
        return
    table(
        "tokens",
        ["id", "name", "role", "created", "revoked"],
        [(t.id, t.name, t.role, when(t.created_at), when(t.revoked_at)) for t in items],
    )


@tokens.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a token: it stops working at once."""
    get_backend().revoke_token(token_id)
    console.print(f"revoked {token_id}")
