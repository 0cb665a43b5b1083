"""The device check-in, the server's hottest route, answered below FastAPI's routing.

Every device calls ``POST /api/v1/device/checkin`` every poll interval, so a fleet of
thousands makes it most of the server's traffic. :class:`CheckinPath` is an ASGI middleware
that answers a well-formed check-in itself: it parses the body with the pydantic model the
route declares, authenticates the device token and runs :func:`edgeloop.fleet.checkin` in one
worker thread (on SQLite, a heartbeat that only reads runs on the event loop itself: WAL
readers never wait), and sends the JSON answer, skipping the router, dependency injection and
response validation (the route in ``_fleet_routes`` stays the documented one: same path,
same models). Anything else goes on to the app: other requests, a body without a
``Content-Length``, and a body that does not validate (replayed, so the app answers with its
usual 400). Errors of the check-in itself get the server's usual error body and status.

It sits inside :class:`~edgeloop.server._middleware.BodyLimit` and
:class:`~edgeloop.server._middleware.RequestMetrics`, which therefore apply as to any route.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeloop.errors import EdgeloopError
from edgeloop.fleet import _checkin, _devices
from edgeloop.fleet._entities import CheckinReport
from edgeloop.governance import device_principal
from edgeloop.workspace import Workspace

__all__ = ["CHECKIN_PATH", "CheckinPath", "answer_checkin", "answer_heartbeat"]

CHECKIN_PATH = "/api/v1/device/checkin"
_ROUTE = SimpleNamespace(path=CHECKIN_PATH)  # what RequestMetrics labels the request with
_JSON = [(b"content-type", b"application/json")]
log = logging.getLogger("edgeloop.server")


def answer_checkin(
    ws: Workspace,
    token: str | None,
    report: CheckinReport,
    seen: _checkin.LastSeenWriter | None,
) -> bytes:
    """Authenticate the device token and record the check-in: the answer's JSON bytes."""
    device_id = _devices.authenticate_device(ws, token)
    acting = ws.acting_as(device_principal(device_id))
    return _checkin.checkin(acting, device_id, report, seen=seen).model_dump_json().encode()


def answer_heartbeat(
    ws: Workspace, token: str | None, report: CheckinReport, seen: _checkin.LastSeenWriter
) -> bytes | None:
    """Like :func:`answer_checkin` for a check-in that only reads (see
    :func:`edgeloop.fleet.heartbeat`), else None."""
    device_id = _devices.authenticate_device(ws, token)
    acting = ws.acting_as(device_principal(device_id))
    answer = _checkin.heartbeat(acting, device_id, report, seen=seen)
    return None if answer is None else answer.model_dump_json().encode()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _declares_length(scope: Scope) -> bool:
    return any(name == b"content-length" for name, _ in scope["headers"])


class CheckinPath:
    """Answers ``POST /api/v1/device/checkin`` (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != CHECKIN_PATH
            or scope["method"] != "POST"
            or not _declares_length(scope)
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            report = CheckinReport.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)  # the app's 400 body
            return
        state = scope["app"].state
        scope["route"] = _ROUTE
        ws: Workspace = state.workspace
        seen: _checkin.LastSeenWriter | None = getattr(state, "last_seen", None)
        token = _bearer(scope)
        try:
            data = None
            if seen is not None and ws.db.dialect == "sqlite":
                # A heartbeat only reads, and SQLite readers (WAL) never wait: answered
                # here, without the cost of handing it to a worker thread and back.
                data = answer_heartbeat(ws, token, report, seen)
            if data is None:
                data = await run_in_threadpool(answer_checkin, ws, token, report, seen)
        except EdgeloopError as exc:
            if exc.http_status >= 500:
                log.error("%s: %s", exc.code, exc.message)
            await _send(send, exc.http_status, _error_bytes(exc))
            return
        await _send(send, 200, data)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def _error_bytes(exc: EdgeloopError) -> bytes:
    body: dict[str, Any] = exc.to_body()  # as JSONResponse renders it
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def _send(send: Send, status: int, data: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
