"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

import importlib
import pkgutil

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import edgeloop.store
from edgeloop.store import Base, Database

# Tables live in store/_models.py and in one ``store/_<area>_models.py`` module per area:
# import them all so that the metadata is complete.
for _module in pkgutil.iter_modules(edgeloop.store.__path__):
    if _module.name.endswith("_models"):
        importlib.import_module(f"edgeloop.store.{_module.name}")


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
