"""Device tokens: ``eld_<12 hex of the device id's SHA-256>_<secret>``.

A device token stands for one device and is good only on the ``/device/...`` endpoints of the
fleet protocol (docs/fleet-protocol.md); :func:`edgeloop.governance.authenticate` refuses it
everywhere else with :class:`~edgeloop.errors.PermissionDenied`. Like user tokens, only the
SHA-256 of the secret is stored; collecting a token again replaces the stored hash, so the
previous token stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from edgeloop.workspace import Principal

__all__ = [
    "DEVICE_TOKEN_PREFIX",
    "DeviceToken",
    "check_device_secret",
    "device_principal",
    "device_token_id",
    "is_device_token",
    "new_device_token",
    "parse_device_token",
]

DEVICE_TOKEN_PREFIX = "eld_"
_DEVICE_TOKEN = re.compile(r"^eld_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,128})$")


@dataclass(frozen=True)
class DeviceToken:
    """A new device token: ``text`` is handed to the device once; ``token_id`` and
    ``secret_hash`` are what the server keeps."""

    text: str
    token_id: str
    secret_hash: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def device_token_id(device_id: str) -> str:
    """The token id of ``device_id``: the first 12 hex digits of the SHA-256 of its id."""
    return hashlib.sha256(device_id.encode()).hexdigest()[:12]


def new_device_token(device_id: str) -> DeviceToken:
    """A fresh token for ``device_id``."""
    token_id = device_token_id(device_id)
    secret = secrets.token_urlsafe(32)
    return DeviceToken(f"{DEVICE_TOKEN_PREFIX}{token_id}_{secret}", token_id, _hash(secret))


def is_device_token(token: str | None) -> bool:
    """Whether ``token`` is meant as a device token (well formed or not)."""
    return bool(token) and str(token).startswith(DEVICE_TOKEN_PREFIX)


def parse_device_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret_hash)`` of a well-formed device token, else None."""
    match = _DEVICE_TOKEN.match(token)
    if match is None:
        return None
    return match[1], _hash(match[2])


def check_device_secret(stored_hash: str | None, secret_hash: str) -> bool:
    """Constant-time comparison of a presented token's hash with the stored one."""
    return stored_hash is not None and hmac.compare_digest(stored_hash, secret_hash)


def device_principal(device_id: str) -> Principal:
    """The principal recorded for what a device does (never used for role checks: device
    routes act only on the device's own data)."""
    return Principal(name=f"device:{device_id}", role="viewer")
