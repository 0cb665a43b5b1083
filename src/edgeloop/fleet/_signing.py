"""The workspace's fleet signing key and the public key devices receive at enrollment."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop.fleet._keys import load_or_create_signing_key
from edgeloop.fleet.bundle import public_key_b64
from edgeloop.workspace import Workspace

__all__ = ["fleet_public_key", "signing_key"]


def signing_key(ws: Workspace) -> Ed25519PrivateKey:
    """The Ed25519 key that signs releases: ``EDGELOOP_FLEET_SIGNING_KEY`` if set, else
    ``<home>/fleet-signing.key`` (mode 0600, created on first use)."""
    return load_or_create_signing_key(ws.settings.home)


def fleet_public_key(ws: Workspace) -> str:
    """Base64 of the 32 raw bytes of the fleet's public key (what devices verify with)."""
    return public_key_b64(signing_key(ws))
