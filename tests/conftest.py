"""Shared fixtures, written as factories.

- ``make_settings``: settings for a fresh workspace under ``tmp_path``.
- ``workspace``: a workspace on **SQLite and on PostgreSQL** (the store suite runs on both;
  PostgreSQL gets a schema of its own per test). PostgreSQL comes from
  ``EDGELOOP_TEST_PG_URL``, which ``make test`` sets after starting the server.
- ``backend``: the Python API's backend, **LocalBackend and HttpBackend** (the contract
  suite runs on both; the HTTP one calls the FastAPI app in-process).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import edgeloop.client._fluent as fluent
from edgeloop.client import Backend, HttpBackend, LocalBackend, set_backend
from edgeloop.config import Settings, load_settings
from edgeloop.server import create_app
from edgeloop.workspace import Workspace
from tests._asgi import asgi_client

PG_URL = os.environ.get("EDGELOOP_TEST_PG_URL", "")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's EDGELOOP_* settings or leaves a backend behind."""
    for name in list(os.environ):
        if name.startswith("EDGELOOP_") and name != "EDGELOOP_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
    fluent._stack.clear()
    set_backend(None)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        home = tmp_path / f"home-{uuid.uuid4().hex[:8]}"
        return load_settings(home=str(home), **overrides)

    return factory


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        pytest.skip("EDGELOOP_TEST_PG_URL is not set (make test sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_workspace(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Workspace]]:
    opened: list[Workspace] = []

    def factory(**overrides: Any) -> Workspace:
        ws = Workspace.open(make_settings(**overrides))
        opened.append(ws)
        return ws

    yield factory
    for ws in opened:
        ws.close()


@pytest.fixture
def workspace(make_workspace: Callable[..., Workspace], db_url: str) -> Workspace:
    """A fresh workspace on each database engine."""
    return make_workspace(db_url=db_url)


def http_backend_for(ws: Workspace, *, auth: bool = False, token: str = "") -> HttpBackend:
    """An HttpBackend whose requests go to the app in-process (no sockets)."""
    client = asgi_client(create_app(workspace=ws, auth=auth))
    return HttpBackend("http://testserver", token, client=client)


@pytest.fixture(params=["local", "http"])
def backend(
    request: pytest.FixtureRequest, make_workspace: Callable[..., Workspace]
) -> Iterator[Backend]:
    """The same workspace behind each backend; also installed as the Python API's backend."""
    ws = make_workspace()
    be: Backend = LocalBackend(workspace=ws) if request.param == "local" else http_backend_for(ws)
    set_backend(be)
    yield be
    set_backend(None)
    be.close()
