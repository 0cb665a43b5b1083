"""The one exception tree of edgeloop.

Every error that edgeloop raises on purpose is an :class:`EdgeloopError`. The server maps the
tree to HTTP status codes in one handler, the CLI maps it to exit codes, and
:class:`edgeloop.client.HttpBackend` turns an error body back into the same class, so callers
catch the same exception whichever backend they use::

    EdgeloopError                 500  exit 1
    ├── ValidationFailed          400  exit 2   bad input; says which field and what is allowed
    │   ├── FilterSyntaxError     400  exit 2   a search filter that does not parse (has a position)
    │   ├── DataRejected          422  exit 2   data that broke its dataset's expectations
    │   └── PayloadTooLarge       413  exit 2
    ├── Unauthenticated           401  exit 5   no token, or a token that is unknown or revoked
    ├── PermissionDenied          403  exit 5   the token's role is too low
    ├── NotFound                  404  exit 3
    ├── Conflict                  409  exit 4   duplicate name, rewritten param, wrong state
    ├── IntegrityError            500  exit 6   stored bytes do not match their digest
    └── BackendUnavailable        503  exit 7   the server or database cannot be reached
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "DataRejected",
    "EdgeloopError",
    "FilterSyntaxError",
    "IntegrityError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unauthenticated",
    "ValidationFailed",
    "error_from_code",
]


class EdgeloopError(Exception):
    """Base of every error edgeloop raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_body(self) -> dict[str, Any]:
        """The error body the REST API sends: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(EdgeloopError):
    """Input that cannot be accepted; the message names the field and what is allowed."""

    code = "validation_failed"
    http_status = 400
    exit_code = 2


class FilterSyntaxError(ValidationFailed):
    """A search filter that does not parse; ``details`` holds ``position`` (0-based)."""

    code = "filter_syntax"

    @classmethod
    def at(cls, message: str, *, text: str, position: int) -> FilterSyntaxError:
        """The error for ``text`` with a caret under ``position``."""
        caret = f"\n  {text}\n  {' ' * position}^"
        return cls(
            f"{message} at position {position}{caret}",
            details={"position": position, "filter": text},
        )

    @property
    def position(self) -> int:
        return int(self.details.get("position", 0))


class DataRejected(ValidationFailed):
    """Data that violates its dataset's expectations under the ``reject`` policy; nothing was
    stored. ``details["report"]`` holds the validation report."""

    code = "data_rejected"
    http_status = 422


class PayloadTooLarge(ValidationFailed):
    code = "payload_too_large"
    http_status = 413


class Unauthenticated(EdgeloopError):
    code = "unauthenticated"
    http_status = 401
    exit_code = 5


class PermissionDenied(EdgeloopError):
    code = "permission_denied"
    http_status = 403
    exit_code = 5


class NotFound(EdgeloopError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class Conflict(EdgeloopError):
    code = "conflict"
    http_status = 409
    exit_code = 4


class IntegrityError(EdgeloopError):
    """Stored bytes that do not match their digest: never returned, always raised."""

    code = "integrity_error"
    http_status = 500
    exit_code = 6


class BackendUnavailable(EdgeloopError):
    code = "backend_unavailable"
    http_status = 503
    exit_code = 7


_BY_CODE: dict[str, type[EdgeloopError]] = {
    cls.code: cls
    for cls in (
        EdgeloopError,
        ValidationFailed,
        FilterSyntaxError,
        DataRejected,
        PayloadTooLarge,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        Conflict,
        IntegrityError,
        BackendUnavailable,
    )
}


def error_from_code(
    code: str, message: str, details: dict[str, Any] | None = None
) -> EdgeloopError:
    """Rebuild the exception a server sent as an error body (used by the HTTP client)."""
    cls = _BY_CODE.get(code, EdgeloopError)
    return cls(message, details=details)
