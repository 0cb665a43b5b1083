"""The simulated fleet's HTTP client: HTTP/1.1 over a pool of keep-alive asyncio streams.

Thousands of simulated devices share one process, so what a request costs the client decides
how many devices one process can simulate. A general-purpose async client spends far more
CPU per request than the server that answers it (its pool checks every connection it holds
at each request); this one sends a prepared request on an idle connection (last in, first
out) and reads the answer: the status line, the headers, and a body framed by
``Content-Length``, by ``Transfer-Encoding: chunked``, or by the end of the connection. A
kept-alive connection the server closed meanwhile is detected before use, or when a request
on it gets no answer at all (then the request is sent once more on a new connection: the
server never saw it). Everything else that goes wrong (refused, reset, cut short, timed out)
is an :class:`HttpError`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HttpError", "SimHttp", "SimResponse"]

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_NO_BODY = (204, 304)


class HttpError(Exception):
    """The request got no complete answer: refused, reset, cut short, malformed, timed out."""


class SimResponse:
    """A complete answer: status, headers (names in lower case) and body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class _NoAnswer(Exception):
    """The connection ended before the first byte of an answer."""


class SimHttp:
    """Requests to one origin (``http://host:port`` or ``https://…``) over at most
    ``connections`` keep-alive connections; each request (connecting included) must
    complete within ``timeout`` seconds.

    >>> http = SimHttp("http://127.0.0.1:8080", connections=64, timeout=30)
    >>> answer = await http.request("POST", "/api/v1/device/checkin", body={})  # doctest: +SKIP
    >>> await http.aclose()  # doctest: +SKIP
    """

    def __init__(self, origin: str, *, connections: int, timeout: float) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"origin must be an http(s) URL, got {origin!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self.timeout = timeout
        self._authority = parts.netloc.encode("idna")
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(connections)
        self._closed = False
        self.connects = 0
        """Connections opened so far (a figure for tests and benchmarks)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> SimResponse:
        """Send ``method path`` (``body`` as JSON, when given) and read the whole answer."""
        if self._closed:
            raise HttpError("the client is closed")
        data = b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._authority.decode()}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            lines.append("Content-Type: application/json")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(data)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data
        async with self._slots:
            try:
                return await asyncio.wait_for(self._request(method, message), self.timeout)
            except TimeoutError as exc:
                raise HttpError(f"no answer within {self.timeout:g} s") from exc

    async def _request(self, method: str, message: bytes) -> SimResponse:
        conn = self._reuse()
        if conn is not None:
            try:
                return await self._exchange(conn, method, message)
            except _NoAnswer:
                pass  # the server had closed it: the request never arrived
        conn = await self._connect()
        try:
            return await self._exchange(conn, method, message)
        except _NoAnswer as exc:
            raise HttpError("the server closed the connection without answering") from exc

    def _reuse(self) -> _Conn | None:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _connect(self) -> _Conn:
        try:
            conn = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.connects += 1
        return conn

    async def _exchange(self, conn: _Conn, method: str, message: bytes) -> SimResponse:
        reader, writer = conn
        head = b""
        try:
            writer.write(message)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _NoAnswer from exc
                raise
            status, headers, keep = _head(head)
            content, framed = await _body(reader, method, status, headers)
            keep = keep and framed
            response = SimResponse(status, headers, content)
        except (ConnectionResetError, BrokenPipeError) as exc:
            writer.close()
            if not head:  # reset before any answer: the request never arrived
                raise _NoAnswer from exc
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        except _NoAnswer:
            writer.close()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            writer.close()  # cancelled or timed out mid-answer: the connection is unusable
            raise
        if keep and not self._closed:
            self._idle.append(conn)
        else:
            writer.close()
        return response

    async def aclose(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        self._closed = True
        while self._idle:
            self._idle.pop()[1].close()


def _head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, headers and whether the connection stays open, from the answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or len(rest) < 3 or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    return int(rest[:3]), headers, keep


async def _body(
    reader: asyncio.StreamReader, method: str, status: int, headers: dict[str, str]
) -> tuple[bytes, bool]:
    """The body, and whether it was framed (else the connection's end ended it)."""
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks), True
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), True
    return await reader.read(), False  # ended by the end of the connection
