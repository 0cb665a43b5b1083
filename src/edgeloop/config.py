"""Settings, read from environment variables and ``edgeloop.toml``.

Precedence, highest first: explicit keyword arguments, ``EDGELOOP_*`` environment variables,
``edgeloop.toml`` in the current directory (top-level keys or an ``[edgeloop]`` table),
defaults. Example ``edgeloop.toml``::

    home = ".edgeloop"
    db_url = "postgresql+psycopg://edgeloop@db/edgeloop"
    artifacts = "s3://models/edgeloop"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeloop.errors import ValidationFailed

__all__ = ["Settings", "load_settings"]

_ENV = {
    "home": "EDGELOOP_HOME",
    "db_url": "EDGELOOP_DB_URL",
    "artifacts": "EDGELOOP_ARTIFACTS",
    "url": "EDGELOOP_URL",
    "token": "EDGELOOP_TOKEN",
    "auth": "EDGELOOP_AUTH",
    "max_body_bytes": "EDGELOOP_MAX_BODY_BYTES",
    "max_artifact_bytes": "EDGELOOP_MAX_ARTIFACT_BYTES",
}
_AUTH_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Settings:
    """Where state lives and how the server behaves. Build with :func:`load_settings`."""

    home: Path = field(default_factory=lambda: Path(".edgeloop"))
    db_url: str = ""
    artifacts: str = ""
    url: str = ""
    token: str = ""
    auth: str = "auto"
    max_body_bytes: int = 16 * 1024 * 1024
    max_artifact_bytes: int = 2 * 1024 * 1024 * 1024

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL; SQLite inside ``home`` unless ``db_url`` is set."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.home / 'edgeloop.db').resolve()}"

    @property
    def artifacts_uri(self) -> str:
        """Where blobs go: a local directory, or ``s3://bucket/prefix``."""
        return self.artifacts or str((self.home / "artifacts").resolve())

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationFailed(f"cannot read {path}: {exc}") from exc
    section = data.get("edgeloop", data)
    if not isinstance(section, dict):
        raise ValidationFailed(f"{path}: [edgeloop] must be a table")
    unknown = sorted(set(section) - set(_ENV))
    if unknown:
        raise ValidationFailed(
            f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(_ENV)}"
        )
    return dict(section)


def _coerce(key: str, value: Any, origin: str) -> Any:
    if key == "home":
        return Path(str(value)).expanduser()
    if key in ("max_body_bytes", "max_artifact_bytes"):
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(f"{origin}: {key} must be an integer, got {value!r}") from exc
        if number <= 0:
            raise ValidationFailed(f"{origin}: {key} must be positive, got {number}")
        return number
    if key == "auth":
        mode = str(value).lower()
        if mode not in _AUTH_MODES:
            raise ValidationFailed(f"{origin}: auth must be one of {', '.join(_AUTH_MODES)}")
        return mode
    return str(value)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``overrides`` > environment > ``edgeloop.toml`` > defaults."""
    values: dict[str, Any] = {}
    path = config_file or Path("edgeloop.toml")
    if path.is_file():
        for key, value in _read_toml(path).items():
            values[key] = _coerce(key, value, str(path))
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = _coerce(key, os.environ[env], env)
    for key, value in overrides.items():
        if key not in _ENV:
            raise ValidationFailed(f"unknown setting {key!r}; allowed: {', '.join(_ENV)}")
        if value is not None:
            values[key] = _coerce(key, value, key)
    return Settings(**values)
