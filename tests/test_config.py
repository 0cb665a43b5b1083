"""Settings from edgeloop.toml and the environment, and what they resolve to."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.config import load_settings
from edgeloop.errors import ValidationFailed


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings()
    assert s.home == Path(".edgeloop")
    assert s.database_url == f"sqlite:///{(tmp_path / '.edgeloop' / 'edgeloop.db')}"
    assert s.artifacts_uri == str(tmp_path / ".edgeloop" / "artifacts")
    assert s.auth == "auto"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "edgeloop.toml").write_text(
        '[edgeloop]\nhome = "from-file"\nartifacts = "s3://bucket/prefix"\nauth = "on"\n'
    )
    monkeypatch.setenv("EDGELOOP_HOME", "from-env")
    s = load_settings()
    assert s.home == Path("from-env")
    assert s.artifacts_uri == "s3://bucket/prefix"
    assert s.auth == "on"
    assert load_settings(home="explicit").home == Path("explicit")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("home = [1", "cannot read"),
        ("colour = 'red'", "unknown setting"),
        ("auth = 'maybe'", "auth must be one of"),
        ("max_body_bytes = -1", "must be positive"),
    ],
)
def test_bad_files_name_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "edgeloop.toml").write_text(text)
    with pytest.raises(ValidationFailed, match=message):
        load_settings()


def test_bad_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_MAX_ARTIFACT_BYTES", "lots")
    with pytest.raises(ValidationFailed, match="EDGELOOP_MAX_ARTIFACT_BYTES"):
        load_settings()
