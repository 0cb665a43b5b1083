"""Governance: principals, roles and API tokens."""

from __future__ import annotations

from edgeloop.governance._tokens import (
    TokenInfo,
    authenticate,
    create_token,
    ensure_admin_token,
    list_tokens,
    require,
    revoke_token,
)
from edgeloop.workspace import ROLES, Principal, Role

__all__ = [
    "ROLES",
    "Principal",
    "Role",
    "TokenInfo",
    "authenticate",
    "create_token",
    "ensure_admin_token",
    "list_tokens",
    "require",
    "revoke_token",
]
