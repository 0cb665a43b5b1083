"""Fixtures of the monitor tests: a workspace (SQLite and PostgreSQL) with model ``pump``
version 1 and its monitoring reference."""

from __future__ import annotations

import pytest

from edgeloop.monitoring.reference import Reference
from edgeloop.workspace import Workspace
from tests.monitors._monitors import make_reference, register_version


@pytest.fixture
def reference() -> Reference:
    return make_reference()


@pytest.fixture
def ws(workspace: Workspace, reference: Reference) -> Workspace:
    """A workspace with model ``pump`` version 1 and its reference."""
    assert register_version(workspace, reference=reference) == 1
    return workspace
