"""The standard-library SQLite access matches the ORM tables and the migrations."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from edgeloop.store import PipelineRun, StepRun
from edgeloop.store._lite import PIPELINE_RUN_COLUMNS, STEP_RUN_COLUMNS, LiteSQLite, schema_head


def test_columns_match_the_tables() -> None:
    assert set(PIPELINE_RUN_COLUMNS) == {c.name for c in PipelineRun.__table__.columns}
    assert set(STEP_RUN_COLUMNS) == {c.name for c in StepRun.__table__.columns} - {"id"}


def test_schema_head_is_alembics_head() -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(schema_head.__code__.co_filename).with_name("migrations"))
    )
    assert schema_head() == ScriptDirectory.from_config(config).get_current_head()


def test_open_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    assert LiteSQLite.open("postgresql+psycopg://u@h/db") is None
    assert LiteSQLite.open(f"sqlite:///{tmp_path / 'absent.db'}") is None
    assert not (tmp_path / "absent.db").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    assert LiteSQLite.open(f"sqlite:///{tmp_path / 'empty.db'}") is None
