"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from edgeloop.store import Base, Database


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        db.migrate()  # a second run finds the schema at head and does nothing
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        db.dispose()
