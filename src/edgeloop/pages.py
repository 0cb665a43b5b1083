"""Cursor pagination shared by every listing: an opaque cursor and a page of items."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from edgeloop.errors import ValidationFailed

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "check_choice",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
]

T = TypeVar("T")
MAX_PAGE_SIZE = 50_000


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next one (None: the end)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(offset: int) -> str:
    raw = json.dumps({"o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"cursor {cursor!r} is not valid: pass the next_cursor of a previous page"
        ) from exc
    return offset


def check_limit(limit: int, name: str = "max_results") -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"{name} must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    return limit


def check_choice(value: str | None, choices: Sequence[str], field: str) -> str | None:
    """``value`` (a listing's filter) if it is None or one of ``choices``; else the error
    that names the field and what is allowed."""
    if value is not None and value not in choices:
        raise ValidationFailed(
            f"{field} {value!r} is not one of {', '.join(choices)}", details={"field": field}
        )
    return value


def next_cursor(offset: int, limit: int, fetched: int) -> str | None:
    """The cursor after a page read with ``limit + 1`` rows from ``offset``: the extra row,
    if ``fetched`` it, says there is more."""
    return encode_cursor(offset + limit) if fetched > limit else None
