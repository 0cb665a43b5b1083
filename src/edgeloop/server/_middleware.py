"""ASGI middleware: request size limits and Prometheus metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeloop.errors import PayloadTooLarge

__all__ = ["BodyLimit", "RequestMetrics"]


def _message(limit: int) -> str:
    return (
        f"request body is larger than {limit} bytes; send less (artifacts: upload files "
        "one by one; metrics: send batches of at most 10,000 points)"
    )


def _too_large(limit: int) -> bytes:
    err = PayloadTooLarge(_message(limit), details={"limit_bytes": limit})
    return json.dumps(err.to_body()).encode()


class BodyLimit:
    """Answer 413 when a body exceeds its limit, by header or by counting the stream."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app, self.json_limit, self.upload_limit = app, json_limit, upload_limit

    def _limit(self, scope: Scope) -> int:
        path, method = scope["path"], scope["method"]
        if (method == "PUT" and "/artifacts/" in path) or (
            method == "POST" and path.startswith("/api/v1/datasets/") and path.endswith("/versions")
        ):
            return self.upload_limit
        return self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        seen = 0

        async def counting_receive() -> Message:
            # Raised inside the route, so the app's HTTPException handler answers 413.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail=_message(limit))
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        body = _too_large(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Count requests and time them per route template, method and status."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry, prefix: str) -> None:
        self.app, self.prefix = app, prefix
        self.requests = Counter(
            "edgeloop_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "edgeloop_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            # Routes of included routers carry their path without the router's prefix.
            prefix = self.prefix if scope["path"].startswith(self.prefix + "/") else ""
            if route is not None and not template.startswith(prefix):
                template = prefix + template
            method = scope["method"]
            self.requests.labels(method, template, str(status)).inc()
            self.latency.labels(method, template).observe(time.perf_counter() - start)
