"""Governance: principals, roles, API tokens and device-scoped tokens."""

from __future__ import annotations

from edgeloop.governance._device_tokens import (
    DEVICE_TOKEN_PREFIX,
    DeviceToken,
    check_device_secret,
    device_principal,
    device_token_id,
    is_device_token,
    new_device_token,
    parse_device_token,
)
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
    "DEVICE_TOKEN_PREFIX",
    "ROLES",
    "DeviceToken",
    "Principal",
    "Role",
    "TokenInfo",
    "authenticate",
    "check_device_secret",
    "create_token",
    "device_principal",
    "device_token_id",
    "ensure_admin_token",
    "is_device_token",
    "list_tokens",
    "new_device_token",
    "parse_device_token",
    "require",
    "revoke_token",
]
