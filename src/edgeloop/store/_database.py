"""Engine, sessions and migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock instead of failing with
"database is locked" when a read lock cannot be upgraded. Read sessions use a plain deferred
``BEGIN`` and never block writers. PostgreSQL (psycopg 3) needs neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from edgeloop.errors import BackendUnavailable, ValidationFailed

__all__ = ["Database"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_SQLITE_BUSY_TIMEOUT_S = 60.0
_READ_ONLY = "edgeloop_read_only"
_PG_MIGRATION_LOCK = 0x6564676C  # "edgl"


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA case_sensitive_like = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and two session factories (write, read); create once per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if _is_sqlite(url):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(
                    url,
                    connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
                )
                _configure_sqlite(engine)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
            raise ValidationFailed(
                f"EDGELOOP_DB_URL {url!r} is not a usable database URL: {exc}; "
                "use sqlite:///path or postgresql+psycopg://user:pass@host/db"
            ) from exc
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(
            engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed if the block returns, rolled back if it raises."""
        with _translated(self.url), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _translated(self.url), self._read() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to head; safe when several processes start at once."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with _translated(self.url):
            with self.engine.connect() as conn:
                if MigrationContext.configure(conn).get_current_revision() == head:
                    conn.rollback()
                    return
                conn.rollback()
            from alembic import command

            # One transaction holds the lock for the whole upgrade: BEGIN IMMEDIATE on
            # SQLite, an advisory transaction lock on PostgreSQL. A second process waits,
            # then finds the schema at head and does nothing.
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated(url: str) -> Iterator[None]:
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise BackendUnavailable(
            f"database {_redact(url)} is unavailable: {exc.orig or exc}"
        ) from exc


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
