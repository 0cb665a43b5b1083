"""The FastAPI application: routes under ``/api/v1``, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from edgeloop._version import __version__
from edgeloop.config import Settings, load_settings
from edgeloop.server import (
    _admin_routes,
    _alert_routes,
    _collection_routes,
    _dataset_routes,
    _fleet_routes,
    _monitor_routes,
    _monitoring_routes,
    _pipeline_routes,
    _registry_routes,
    _tracking_routes,
)
from edgeloop.server._checkin_path import CheckinPath
from edgeloop.server._errors import install_error_handlers
from edgeloop.server._middleware import BodyLimit, RequestMetrics
from edgeloop.workspace import Workspace

__all__ = ["create_app", "is_loopback"]

API = "/api/v1"


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def create_app(
    settings: Settings | None = None,
    *,
    workspace: Workspace | None = None,
    auth: bool | None = None,
) -> FastAPI:
    """Build the app. The workspace (engine, artifact store) is opened once, at start-up.

    ``auth``: None follows ``settings.auth`` (``on``/``off``; ``auto`` means off here — the
    ``edgeloop server`` command turns it on for any non-loopback bind).
    """
    settings = settings or (workspace.settings if workspace else load_settings())
    auth_on = auth if auth is not None else settings.auth == "on"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = workspace is None
        app.state.workspace = workspace or Workspace.open(settings)
        try:
            async with _fleet_routes.device_writers(app):
                yield
        finally:
            if owned:
                app.state.workspace.close()

    app = FastAPI(
        title="edgeloop",
        version=__version__,
        description="MLOps for servers and fleets of edge devices.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url=f"{API}/openapi.json",
    )
    app.state.auth = auth_on
    if workspace is not None:
        app.state.workspace = workspace
    registry = CollectorRegistry()
    install_error_handlers(app)
    # First: devices poll far more often than people call, and routes match in order.
    app.include_router(_fleet_routes.device_router, prefix=API)
    app.include_router(_collection_routes.device_router, prefix=API)
    for router in (
        _tracking_routes.router,
        _registry_routes.router,
        _dataset_routes.router,
        _pipeline_routes.router,
        _admin_routes.router,
        _fleet_routes.router,
        _collection_routes.router,
        _monitor_routes.router,
        _monitoring_routes.router,
        _alert_routes.router,
    ):
        app.include_router(router, prefix=API, dependencies=[_fleet_routes.no_device_tokens])

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        ws: Workspace = request.app.state.workspace
        try:
            with ws.db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # readiness reports any failure as not ready
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse(
            {"status": "ready", "database": ws.db.dialect, "artifacts": ws.artifacts.uri}
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(CheckinPath)  # innermost: inside the body limit and the metrics
    app.add_middleware(RequestMetrics, registry=registry, prefix=API)
    app.add_middleware(
        BodyLimit, json_limit=settings.max_body_bytes, upload_limit=settings.max_artifact_bytes
    )
    return app
