"""The agent's network boundary: one method, ``transport(request) -> response``.

:func:`http_transport` is the real one (the standard library's :mod:`http.client`, one
connection per request); tests may hand in any callable with the same shape. A transport
raises :class:`OSError` (or :class:`http.client.HTTPException`) when the server cannot be
reached; HTTP error statuses are responses, not exceptions.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Request", "Response", "Transport", "http_transport"]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 30.0


class Response(Protocol):
    """A response whose body is read in chunks: ``read`` returns up to ``amount`` bytes as
    soon as some have arrived, and ``b""`` at the end of the body (or of the connection)."""

    @property
    def status(self) -> int: ...

    def header(self, name: str) -> str | None: ...

    def read(self, amount: int) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def __call__(self, request: Request) -> Response: ...


class _HttpResponse:
    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._conn = conn
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def read(self, amount: int) -> bytes:
        try:  # read1: what has arrived, without waiting to fill ``amount``
            return self._response.read1(amount)
        except http.client.IncompleteRead as exc:
            return bytes(exc.partial)  # the caller sees a short body and resumes

    def close(self) -> None:
        self._response.close()
        self._conn.close()


def http_transport(request: Request) -> Response:
    """Send ``request`` with :mod:`http.client` (``http`` and ``https`` URLs)."""
    parts = urllib.parse.urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {request.url!r}")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=request.timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=request.timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request(request.method, target, body=request.body, headers=dict(request.headers))
        response = conn.getresponse()
    except BaseException:
        conn.close()
        raise
    return _HttpResponse(conn, response)
