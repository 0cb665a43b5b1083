"""Resumable file downloads: ``Range: bytes=N-`` from what a partial file already holds,
never more than the manifest's size for the file."""

from __future__ import annotations

import http.client
import logging
import os
from pathlib import Path

from edgeloop.agent._client import FleetClient, http_error, read_limited
from edgeloop.agent._crash import crash_point
from edgeloop.agent._journal import Journal
from edgeloop.errors import BackendUnavailable
from edgeloop.fleet.bundle import BundleRejected

__all__ = ["fetch_file"]

log = logging.getLogger("edgeloop.agent")
CHUNK = 64 * 1024
ATTEMPTS = 4  # connections in a row without progress before waiting for the next check-in


def _too_long(name: str, size: int) -> BundleRejected:
    return BundleRejected(
        f"the server sent more than the {size} bytes the signed manifest lists for {name!r}",
        reason="size",
        details={"path": name, "expected": size},
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _content_range_start(value: str | None) -> int | None:
    """``N`` of ``Content-Range: bytes N-M/T``."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def fetch_file(
    client: FleetClient,
    url: str,
    *,
    token: str,
    part: Path,
    size: int,
    name: str,
    journal: Journal,
) -> int:
    """Download ``url`` into ``part`` until it holds ``size`` bytes, resuming from what it
    holds; returns the bytes transferred. A short body is resumed with a new request; after
    :data:`ATTEMPTS` connections in a row that bring no byte, :class:`BackendUnavailable`
    leaves the partial file for the next try. More bytes than ``size`` is a
    :class:`BundleRejected` (``size``)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    part.touch()
    offset = part.stat().st_size
    if offset > size:
        part.unlink()
        part.touch()
        offset = 0
    journal.append("downloading", file=name, offset=offset)
    transferred = 0
    attempt = 0
    while offset < size:
        attempt += 1
        if attempt > ATTEMPTS:
            raise BackendUnavailable(f"the download of {name!r} stopped at {offset}/{size} bytes")
        before = offset
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = client.open("GET", url, token=token, headers=headers)
        try:
            status = response.status
            if status == 416 or (
                status == 206 and _content_range_start(response.header("Content-Range")) != offset
            ):
                part.unlink(missing_ok=True)  # the server cannot resume from here: restart
                offset = 0
                continue
            if status >= 400:
                raise http_error(status, read_limited(response, 1 << 16), url)
            if status == 200 and offset:
                part.unlink(missing_ok=True)  # no Range support: the whole file again
                offset = 0
            length = response.header("Content-Length")
            if length is not None and length.isdigit() and offset + int(length) > size:
                raise _too_long(name, size)
            # unbuffered: every byte received is in the file, so a kill -9 loses none of it
            fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                half = size // 2
                while True:
                    chunk = response.read(min(CHUNK, size - offset + 1))
                    if not chunk:
                        break
                    if offset + len(chunk) > size:
                        raise _too_long(name, size)
                    _write_all(fd, chunk)
                    offset += len(chunk)
                    transferred += len(chunk)
                    if offset >= half > offset - len(chunk):
                        crash_point("download-partial")
                os.fsync(fd)
            finally:
                os.close(fd)
        except (OSError, http.client.HTTPException) as exc:
            log.info("download of %s interrupted at %d/%d bytes: %s", name, offset, size, exc)
            offset = part.stat().st_size if part.exists() else 0
        finally:
            response.close()
        if offset > before:
            attempt = 0  # count only connections in a row that brought nothing
        if offset < size:
            log.info("download of %s stopped at %d/%d bytes; resuming", name, offset, size)
    journal.append("downloading", file=name, offset=offset, done=True)
    return transferred
