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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgeloop.workspace import Principal

__all__ = [
    "DEVICE_TOKEN_CACHE_S",
    "DEVICE_TOKEN_PREFIX",
    "DeviceToken",
    "DeviceTokenCache",
    "check_device_secret",
    "device_principal",
    "device_token_id",
    "is_device_token",
    "new_device_token",
    "parse_device_token",
]

DEVICE_TOKEN_PREFIX = "eld_"
DEVICE_TOKEN_CACHE_S = 5.0
"""How long a server process trusts a device token it has verified without asking the
database again: the bound on how late another replica notices a rejected or removed device
or a replaced token (the replica that made the change forgets the token at once)."""
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


class DeviceTokenCache:
    """Verified device tokens of one database, trusted for ``ttl_s`` seconds.

    Keys are the SHA-256 of the presented secret, never the secret. Only successes are
    kept, so a new token works at once and a wrong one always reaches the database.
    :meth:`forget` drops a device's entry (its token was replaced, or it was rejected or
    removed); another process notices such a change within ``ttl_s``. Thread-safe; at most
    ``max_entries`` tokens are kept (the oldest go first)."""

    def __init__(
        self,
        ttl_s: float = DEVICE_TOKEN_CACHE_S,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._by_device: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_id: str, secret_hash: str) -> str | None:
        """The device id of a token verified less than ``ttl_s`` ago, else None."""
        entry = self._entries.get((token_id, secret_hash))
        if entry is None:
            return None
        if self.clock() >= entry[1]:
            with self._lock:
                if self._entries.get((token_id, secret_hash)) is entry:
                    del self._entries[(token_id, secret_hash)]
                    self._by_device.pop(entry[0], None)
            return None
        return entry[0]

    def put(self, token_id: str, secret_hash: str, device_id: str) -> None:
        """Remember that this token stands for ``device_id`` (an accepted device)."""
        key = (token_id, secret_hash)
        with self._lock:
            old = self._by_device.pop(device_id, None)
            if old is not None:
                self._entries.pop(old, None)
            while len(self._entries) >= self.max_entries:
                oldest = next(iter(self._entries))
                self._by_device.pop(self._entries.pop(oldest)[0], None)
            self._entries[key] = (device_id, self.clock() + self.ttl_s)
            self._by_device[device_id] = key

    def forget(self, device_id: str) -> None:
        """Stop trusting the device's cached token (replaced, rejected or removed)."""
        with self._lock:
            key = self._by_device.pop(device_id, None)
            if key is not None:
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_device.clear()
