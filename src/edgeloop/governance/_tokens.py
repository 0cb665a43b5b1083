"""API tokens and roles.

A token reads ``el_<id>_<secret>``. Only the SHA-256 of the secret is stored; the full token
is shown once, when it is created. Roles are ordered: viewer < editor < admin.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from pydantic import BaseModel

from edgeloop.errors import NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from edgeloop.governance._device_tokens import is_device_token
from edgeloop.store import Token, TokenStore
from edgeloop.workspace import ROLES, Principal, Role, Workspace, now_ms

__all__ = [
    "TokenInfo",
    "authenticate",
    "create_token",
    "ensure_admin_token",
    "list_tokens",
    "require",
    "revoke_token",
]

_TOKEN = re.compile(r"^el_([a-z0-9]{12})_([A-Za-z0-9_\-]{20,128})$")


class TokenInfo(BaseModel):
    id: str
    name: str
    role: Role
    created_at: int
    created_by: str
    revoked_at: int | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: Token) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


def require(principal: Principal, role: Role) -> None:
    """Raise PermissionDenied unless ``principal`` has at least ``role``."""
    if not principal.can(role):
        raise PermissionDenied(
            f"{principal.name} has role {principal.role}; this needs {role} or higher",
            details={"required_role": role, "role": principal.role},
        )


def create_token(ws: Workspace, name: str, role: str) -> tuple[TokenInfo, str]:
    """A new token; returns its info and the token text, which is never shown again."""
    require(ws.principal, "admin")
    if role not in ROLES:
        raise ValidationFailed(f"role {role!r} is not allowed; use one of {', '.join(ROLES)}")
    if not name or len(name) > 128:
        raise ValidationFailed("token name must be 1-128 characters")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = Token(
        id=token_id,
        name=name,
        role=role,
        secret_hash=_hash(secret),
        created_at=now_ms(),
        created_by=ws.principal.name,
        revoked_at=None,
    )
    with ws.db.write() as s:
        TokenStore(s).add(row)
    return _info(row), f"el_{token_id}_{secret}"


def list_tokens(ws: Workspace) -> list[TokenInfo]:
    require(ws.principal, "admin")
    with ws.db.read() as s:
        return [_info(t) for t in TokenStore(s).all()]


def revoke_token(ws: Workspace, token_id: str) -> TokenInfo:
    require(ws.principal, "admin")
    with ws.db.write() as s:
        row = TokenStore(s).get(token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist")
        if row.revoked_at is None:
            row.revoked_at = now_ms()
        return _info(row)


def authenticate(ws: Workspace, token: str | None) -> Principal:
    """The principal a bearer token stands for; Unauthenticated if missing, bad or revoked,
    PermissionDenied for a device token (``eld_…``: good on ``/device/...`` only)."""
    if not token:
        raise Unauthenticated(
            "this server requires a token: send 'Authorization: Bearer el_…' "
            "(create one with 'edgeloop tokens create')"
        )
    if is_device_token(token):
        raise PermissionDenied(
            "a device token may call only the /device/... endpoints of the fleet protocol; "
            "use a user token (el_…) here",
            details={"token": "device"},
        )
    match = _TOKEN.match(token)
    if match is None:
        raise Unauthenticated("the token is malformed: it should look like el_<id>_<secret>")
    with ws.db.read() as s:
        row = TokenStore(s).get(match[1])
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(match[2])):
        raise Unauthenticated("the token is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated("the token has been revoked")
    return Principal(name=f"token:{row.name}", role=row.role)  # type: ignore[arg-type]


def ensure_admin_token(ws: Workspace) -> str | None:
    """Create the first admin token if there is no active one; returns its text, else None."""
    with ws.db.read() as s:
        if TokenStore(s).active_with_role("admin"):
            return None
    _, text = create_token(ws.acting_as(Principal("system:first-start", "admin")), "admin", "admin")
    return text
