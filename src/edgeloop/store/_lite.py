"""Standard-library access to the embedded SQLite database, for start-up-critical paths.

The CLI's re-run of a fully cached pipeline must cost a fraction of a second, and importing
SQLAlchemy alone costs about 0.2 s. :class:`LiteSQLite` answers the few queries that path
needs and records the cached run in one ``BEGIN IMMEDIATE`` transaction, with the same
pragmas as :class:`~edgeloop.store.Database`. It works only on a database that exists and is
at the migrations' head; otherwise :meth:`LiteSQLite.open` returns ``None`` and the caller
takes the regular path (which creates and migrates). ``tests/store/test_lite.py`` checks its
columns against the ORM tables.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PIPELINE_RUN_COLUMNS", "STEP_RUN_COLUMNS", "LiteSQLite", "schema_head"]

_VERSIONS = Path(__file__).with_name("migrations") / "versions"
_BUSY_TIMEOUT_S = 60.0
PIPELINE_RUN_COLUMNS = (
    "id",
    "pipeline",
    "status",
    "params",
    "reasons",
    "lineage",
    "error",
    "resumed_from",
    "started_at",
    "ended_at",
    "created_by",
)
STEP_RUN_COLUMNS = (
    "pipeline_run_id",
    "name",
    "status",
    "cache_key",
    "inputs",
    "outputs",
    "logs_digest",
    "error",
    "started_at",
    "ended_at",
)
_JSON_COLUMNS = {"params", "reasons", "lineage", "inputs", "outputs"}


def schema_head() -> str | None:
    """The head revision of the migrations, read from their files (no Alembic import)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
        parent = re.search(r"^down_revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if revision:
            revisions.add(revision[1])
        if parent:
            parents.add(parent[1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _encode(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS else value


class LiteSQLite:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.conn = connection

    @classmethod
    def open(cls, database_url: str) -> LiteSQLite | None:
        """A connection to ``sqlite:///PATH`` if that file exists and is at head, else None."""
        prefix = "sqlite:///"
        if not database_url.startswith(prefix):
            return None
        path = Path(database_url[len(prefix) :])
        if not path.is_file():
            return None
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            conn.close()
            return None
        if row is None or row[0] != schema_head():
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def dataset_version(self, name: str, number: int | None) -> tuple[int, str, str] | None:
        """``(version, status, digest)`` of ``name@number`` (the latest if None), or None."""
        query = (
            "SELECT v.version, v.status, v.digest FROM dataset_versions v "
            "JOIN datasets d ON d.id = v.dataset_id WHERE d.name = ?"
        )
        args: list[Any] = [name]
        if number is None:
            query += " ORDER BY v.version DESC LIMIT 1"
        else:
            query += " AND v.version = ?"
            args.append(number)
        row = self.conn.execute(query, args).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def cached_outputs(self, cache_key: str) -> dict[str, str] | None:
        """Outputs of the newest succeeded step run with this key (as PipelineStore.cached)."""
        row = self.conn.execute(
            "SELECT outputs FROM step_runs WHERE cache_key = ? AND status = 'succeeded' "
            "ORDER BY id DESC LIMIT 1",
            (cache_key,),
        ).fetchone()
        if row is None:
            return None
        outputs = json.loads(row[0])
        return dict(outputs) if isinstance(outputs, dict) else None

    def add_pipeline_run(self, run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> None:
        """Insert a finished pipeline run and its step runs, in one write transaction."""
        run_sql = (
            f"INSERT INTO pipeline_runs ({', '.join(PIPELINE_RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(PIPELINE_RUN_COLUMNS))})"
        )
        step_sql = (
            f"INSERT INTO step_runs ({', '.join(STEP_RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(STEP_RUN_COLUMNS))})"
        )
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(run_sql, [_encode(c, run[c]) for c in PIPELINE_RUN_COLUMNS])
            self.conn.executemany(
                step_sql,
                [
                    [_encode(c, {**s, "pipeline_run_id": run["id"]}[c]) for c in STEP_RUN_COLUMNS]
                    for s in steps
                ],
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
