"""The REST API server (FastAPI): ``edgeloop server`` runs it with uvicorn."""

from __future__ import annotations

from edgeloop.server._app import API, create_app, is_loopback

__all__ = ["API", "create_app", "is_loopback"]
