"""A synchronous httpx transport that calls an ASGI app in-process through
``httpx.ASGITransport`` (no sockets): the sync ``HttpBackend`` talks to the app directly."""

from __future__ import annotations

from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._cm = start_blocking_portal()
        self._portal: BlockingPortal = self._cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._portal.call(call)

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def asgi_client(app: Any, **kwargs: Any) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver", **kwargs)
