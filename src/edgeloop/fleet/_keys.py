"""The fleet signing key (server side): Ed25519, from the environment or a private file.

``EDGELOOP_FLEET_SIGNING_KEY`` (base64 of the 32 raw bytes) wins when set; otherwise the key
lives in ``<home>/fleet-signing.key`` (the same encoding, mode 0600), created on first use.
Devices hold the matching public key, so losing or replacing this key means re-enrolling
them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop.errors import ValidationFailed
from edgeloop.fleet.bundle import load_private_key, private_key_b64

__all__ = ["KEY_ENV", "KEY_FILE", "load_or_create_signing_key"]

KEY_ENV = "EDGELOOP_FLEET_SIGNING_KEY"
KEY_FILE = "fleet-signing.key"
_MAX_KEY_FILE_BYTES = 4096


def load_or_create_signing_key(
    home: Path, environ: Mapping[str, str] = os.environ
) -> Ed25519PrivateKey:
    """The fleet's Ed25519 signing key: from ``EDGELOOP_FLEET_SIGNING_KEY`` if set, else from
    ``<home>/fleet-signing.key``, which is created (mode 0600) when missing.

    Raises :class:`ValidationFailed` for a key that does not decode, and for a key file that
    group or others may access (fix: ``chmod 600 <file>``).
    """
    value = environ.get(KEY_ENV, "")
    if value.strip():
        try:
            return load_private_key(value)
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"{KEY_ENV} is not a fleet signing key ({exc.message}); set it to the base64 of "
                f"32 raw Ed25519 bytes, or unset it to use {Path(home) / KEY_FILE}",
                details={"field": KEY_ENV},
            ) from exc
    path = Path(home) / KEY_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        return _create(path)


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ValidationFailed(
                    f"{path} is not a regular file: move it away to create a new fleet key",
                    details={"field": "fleet_signing_key", "path": str(path)},
                )
            if mode & 0o077:
                raise ValidationFailed(
                    f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): "
                    f"the fleet signing key must be private; run chmod 600 {path}",
                    details={"field": "fleet_signing_key", "path": str(path)},
                )
            data = file.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValidationFailed(
            f"cannot read the fleet signing key {path}: {exc}",
            details={"field": "fleet_signing_key", "path": str(path)},
        ) from exc
    try:
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise ValueError("the file is too large")
        return load_private_key(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError, ValidationFailed) as exc:
        problem = exc.message if isinstance(exc, ValidationFailed) else str(exc)
        raise ValidationFailed(
            f"{path} is not a fleet signing key ({problem}): it must hold the base64 of 32 raw "
            "Ed25519 bytes; restore it from a backup, or move it away to create a new key "
            "(devices must then be re-enrolled to learn the new public key)",
            details={"field": "fleet_signing_key", "path": str(path)},
        ) from exc


def _create(path: Path) -> Ed25519PrivateKey:
    """Write a new key atomically: a private temp file (never readable by others, not even
    briefly), then published under its name unless another process published one first."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # exactly 0600, whatever the umask
            out.write(f"{private_key_b64(key)}\n".encode("ascii"))
            out.flush()
            os.fsync(out.fileno())
        try:
            # a link fails if the name exists, where a rename would replace a key that
            # another server process created (and may already sign with) a moment ago
            os.link(tmp, path)
        except FileExistsError:
            return _read(path)
        except OSError:  # a file system without hard links
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return key


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
