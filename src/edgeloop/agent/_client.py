"""The fleet protocol's device side (``docs/fleet-protocol.md``), over a :class:`Transport`.

Errors come back as the :mod:`edgeloop.errors` tree: an error body is rebuilt with
:func:`~edgeloop.errors.error_from_code`, any 5xx and any connection failure is
:class:`~edgeloop.errors.BackendUnavailable` (transient: the agent backs off and retries).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from edgeloop.agent._transport import Request, Response, Transport
from edgeloop.errors import (
    BackendUnavailable,
    Conflict,
    EdgeloopError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
    error_from_code,
)

__all__ = ["API_PREFIX", "FleetClient"]

API_PREFIX = "/api/v1"
MAX_JSON_BYTES = 4 << 20
_BY_STATUS: dict[int, type[EdgeloopError]] = {
    400: ValidationFailed,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
}


def read_limited(response: Response, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the server sent more than {limit} bytes")
        chunks.append(chunk)


def http_error(status: int, body: bytes, url: str) -> EdgeloopError:
    """The exception for an error response."""
    code, message, details = "", f"HTTP {status} from {url}", None
    try:
        error = json.loads(body)["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace").strip()
        if text:
            message = f"{message}: {text}"
    if status >= 500:
        return BackendUnavailable(message, details=details)
    if code and code != EdgeloopError.code:
        return error_from_code(code, message, details)
    return _BY_STATUS.get(status, EdgeloopError)(message, details=details)


class FleetClient:
    """Calls the server at ``server_url`` (its origin; ``/api/v1`` is added)."""

    def __init__(self, server_url: str, transport: Transport, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(server_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationFailed(f"--server must be an http(s) URL, got {server_url!r}")
        path = parts.path[: -len(API_PREFIX)] if parts.path.endswith(API_PREFIX) else parts.path
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base = self.origin + path + API_PREFIX
        self._transport = transport
        self._timeout = timeout

    def url(self, path_or_url: str) -> str:
        """An absolute URL: ``devices/enroll`` is under ``/api/v1``; an absolute path (the
        assignment's ``/api/v1/device/releases/…``) is on the server's origin; a full URL
        stays as it is."""
        return urllib.parse.urljoin(self.base + "/", path_or_url)

    def _same_origin(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def open(
        self,
        method: str,
        path_or_url: str,
        *,
        token: str = "",
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send a request; the caller reads and closes the response (any status)."""
        url = self.url(path_or_url)
        sent: dict[str, str] = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            sent["Content-Type"] = "application/json"
        if token and self._same_origin(url):  # never hand the token to another host
            sent["Authorization"] = f"Bearer {token}"
        try:
            return self._transport(Request(method, url, sent, data, self._timeout))
        except (OSError, http.client.HTTPException) as exc:
            raise BackendUnavailable(f"cannot reach the fleet server at {url}: {exc}") from exc

    def call(
        self,
        method: str,
        path_or_url: str,
        *,
        token: str = "",
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A JSON call: the decoded body of a 2xx answer, else the matching exception."""
        response = self.open(method, path_or_url, token=token, body=body)
        try:
            data = self._read(response)
            if response.status >= 400:
                raise http_error(response.status, data, self.url(path_or_url))
        finally:
            response.close()
        if not data.strip():
            return {}
        try:
            decoded = json.loads(data)
        except ValueError as exc:
            raise BackendUnavailable(f"the server sent invalid JSON: {exc}") from exc
        if not isinstance(decoded, dict):
            raise BackendUnavailable("the server sent JSON that is not an object")
        return decoded

    def get_bytes(self, path_or_url: str, *, token: str, limit: int) -> bytes:
        """A whole (small) body such as a manifest or a signature, at most ``limit`` bytes."""
        response = self.open("GET", path_or_url, token=token)
        try:
            if response.status >= 400:
                raise http_error(response.status, self._read(response), self.url(path_or_url))
            return self._read(response, limit)
        finally:
            response.close()

    @staticmethod
    def _read(response: Response, limit: int = MAX_JSON_BYTES) -> bytes:
        try:
            return read_limited(response, limit)
        except (OSError, http.client.HTTPException) as exc:
            raise BackendUnavailable(f"the connection broke while reading: {exc}") from exc
