"""The simulated fleet's HTTP client against a scripted asyncio server: body framings,
keep-alive reuse, a kept-alive connection the server closed, and the errors it raises."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from edgeloop.fleet._sim_http import HttpError, SimHttp

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def _serve(handler: Handler) -> tuple[asyncio.Server, str, list[bytes], list[int]]:
    """A server answering each request with ``handler`` (False closes the connection)."""
    requests: list[bytes] = []
    connections: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while (request := await _read_request(reader)) is not None:
                requests.append(request)
                if not await handler(request, reader, writer):
                    break
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", requests, connections


def _answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_json_bodies_and_keep_alive_reuse() -> None:
    async def handler(request: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        body = request.split(b"\r\n\r\n", 1)[1]
        w.write(_answer(json.dumps({"echo": json.loads(body or b"null")}).encode()))
        await w.drain()
        return True

    async def scenario() -> None:
        server, url, requests, connections = await _serve(handler)
        http = SimHttp(url, connections=4, timeout=5)
        try:
            for i in range(5):
                answer = await http.request(
                    "POST", "/p", body={"i": i}, headers={"Authorization": "Bearer t"}
                )
                assert answer.status_code == 200 and answer.json() == {"echo": {"i": i}}
            empty = await http.request("GET", "/g")
            assert empty.json() == {"echo": None}
        finally:
            await http.aclose()
            server.close()
        assert len(connections) == 1 and http.connects == 1  # one kept-alive connection
        first = requests[0].decode()
        assert first.startswith("POST /p HTTP/1.1\r\n")
        assert "Authorization: Bearer t\r\n" in first and "Content-Length: 7\r\n" in first
        assert "Content-Length" not in requests[-1].decode()  # a GET without a body

    asyncio.run(scenario())


def test_chunked_and_connection_framed_bodies() -> None:
    async def handler(request: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if request.startswith(b"GET /chunked"):
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            w.write(b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n")
            await w.drain()
            return True
        w.write(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno such thing")
        await w.drain()
        return False

    async def scenario() -> None:
        server, url, _, connections = await _serve(handler)
        http = SimHttp(url, connections=2, timeout=5)
        try:
            assert (await http.request("GET", "/chunked")).content == b"hello world"
            missing = await http.request("GET", "/other")
            assert (missing.status_code, missing.content) == (404, b"no such thing")
            assert (await http.request("GET", "/chunked")).content == b"hello world"
        finally:
            await http.aclose()
            server.close()
        assert len(connections) == 2  # the connection-framed answer closed the first

    asyncio.run(scenario())


def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    async def handler(request: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(b"ok"))
        await w.drain()
        return False  # closes after answering, without saying so

    async def scenario() -> None:
        server, url, requests, connections = await _serve(handler)
        http = SimHttp(url, connections=2, timeout=5)
        try:
            for _ in range(3):
                assert (await http.request("POST", "/c", body={})).content == b"ok"
                await asyncio.sleep(0)  # let the close arrive (or not): both are handled
        finally:
            await http.aclose()
            server.close()
        assert len(requests) == 3 and len(connections) == 3

    asyncio.run(scenario())


def test_refused_cut_short_and_silent_servers_raise_http_error() -> None:
    async def cut(request: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await w.drain()
        return False

    async def silent(_q: bytes, reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> bool:
        await reader.read()  # never answers
        return False

    async def scenario() -> None:
        server, url, _, _ = await _serve(cut)
        http = SimHttp(url, connections=1, timeout=5)
        with pytest.raises(HttpError, match="IncompleteReadError"):
            await http.request("GET", "/x")
        await http.aclose()
        server.close()
        await server.wait_closed()
        refused = SimHttp(url, connections=1, timeout=5)
        with pytest.raises(HttpError, match="cannot connect"):
            await refused.request("GET", "/x")
        server, url, _, _ = await _serve(silent)
        slow = SimHttp(url, connections=1, timeout=0.2)
        with pytest.raises(HttpError, match="no answer within"):
            await slow.request("GET", "/x")
        await slow.aclose()
        server.close()
        with pytest.raises(HttpError, match="closed"):
            await slow.request("GET", "/x")

    asyncio.run(scenario())


def test_the_origin_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        SimHttp("ftp://example.org", connections=1, timeout=1)
