"""Request-scoped dependencies: the workspace acting as the caller, checked against a role."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from edgeloop.governance import Principal, Role, authenticate, require
from edgeloop.workspace import Workspace

__all__ = ["ANONYMOUS", "as_role"]

ANONYMOUS = Principal(name="anonymous", role="admin")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def as_role(role: Role) -> Callable[[Request], Workspace]:
    """A dependency giving the workspace acting as the authenticated caller, who needs ``role``."""

    def dependency(request: Request) -> Workspace:
        ws: Workspace = request.app.state.workspace
        if not request.app.state.auth:
            return ws.acting_as(ANONYMOUS)
        principal = authenticate(ws, _bearer(request))
        require(principal, role)
        return ws.acting_as(principal)

    return dependency
