"""The device's identity: ``identity.json`` in the state directory, mode 0600.

It holds the device id, its Ed25519 private key (base64 of the 32 raw bytes), the enrollment
status, the device token, the fleet's public key, the server URL and the attributes sent at
enrollment. The key is written to disk before the device enrolls, so a crash can never leave
the server holding a public key the device has lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop.agent._fs import atomic_write
from edgeloop.errors import ValidationFailed

__all__ = ["IDENTITY_FILE", "Identity", "b64", "new_identity"]

IDENTITY_FILE = "identity.json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Identity:
    device_id: str
    private_key: str  # base64 of the raw 32-byte Ed25519 seed
    server_url: str = ""
    status: str = "new"  # new → pending → accepted
    device_token: str = ""
    fleet_public_key: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(self.private_key))

    def public_key(self) -> str:
        """Base64 of the raw 32-byte public key, as enrollment sends it."""
        raw = (
            self.key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        return b64(raw)

    def sign(self, message: bytes) -> str:
        return b64(self.key().sign(message))

    def save(self, state_dir: Path) -> None:
        data = json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"
        atomic_write(state_dir / IDENTITY_FILE, data, mode=0o600)

    @classmethod
    def load(cls, state_dir: Path) -> Identity | None:
        path = state_dir / IDENTITY_FILE
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ValidationFailed(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or "device_id" not in raw or "private_key" not in raw:
            raise ValidationFailed(f"{path} lacks device_id or private_key")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def new_identity(device_id: str | None, server_url: str, attributes: Mapping[str, Any]) -> Identity:
    """A fresh key pair; the id defaults to the host name plus 8 hex of the public key."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    identity = Identity(device_id or "", b64(seed), server_url, attributes=dict(attributes))
    if not identity.device_id:
        suffix = hashlib.sha256(identity.public_key().encode()).hexdigest()[:8]
        identity.device_id = f"{socket.gethostname() or 'device'}-{suffix}"
    return identity
