"""The workspace: database, artifact store, settings and the acting principal.

Every service function takes a :class:`Workspace` as its first argument. A process opens one
workspace (the server in its lifespan, the CLI and ``LocalBackend`` on first use) and shares
its engine and artifact store; :meth:`Workspace.acting_as` gives a per-request view that only
changes the principal.
"""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from edgeloop.config import Settings, load_settings

if TYPE_CHECKING:
    from edgeloop.artifacts import ArtifactStore
    from edgeloop.store import Database

__all__ = ["ROLES", "Principal", "Role", "Workspace", "now_ms"]

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Principal:
    """Who is acting: recorded on everything they create and checked against their role."""

    name: str
    role: Role

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @classmethod
    def local_user(cls) -> Principal:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(name=f"local:{user}", role="admin")


@dataclass(frozen=True)
class Workspace:
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    principal: Principal

    @classmethod
    def open(
        cls, settings: Settings | None = None, principal: Principal | None = None
    ) -> Workspace:
        """Open (and on first use create and migrate) the workspace that ``settings`` name."""
        from edgeloop.artifacts import open_artifact_store
        from edgeloop.store import Database

        settings = settings or load_settings()
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        try:
            db.migrate()
            artifacts = open_artifact_store(settings.artifacts_uri)
        except BaseException:
            db.dispose()
            raise
        return cls(settings, db, artifacts, principal or Principal.local_user())

    def acting_as(self, principal: Principal) -> Workspace:
        return replace(self, principal=principal)

    def close(self) -> None:
        self.db.dispose()
