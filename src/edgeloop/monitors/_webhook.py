"""Signed webhooks: the body is JSON, signed with HMAC-SHA256 over ``"{timestamp}." + body``.

Headers: ``X-Edgeloop-Timestamp`` (epoch ms), ``X-Edgeloop-Signature: v1=<hex>``,
``X-Edgeloop-Delivery`` (the action id: the same on a retry, so a receiver can drop
duplicates). A receiver checks with :func:`verify_signature`, which also refuses old
timestamps (replays)::

    ok = verify_signature(secret, request.body, request.headers["X-Edgeloop-Timestamp"],
                          request.headers["X-Edgeloop-Signature"], now=now_ms())

The HTTP call sits behind a one-method :data:`Transport` (tests hand in a function; no
sockets), with bounded retries on network errors, 429 and 5xx.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "Transport",
    "deliver",
    "http_transport",
    "sign",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Edgeloop-Timestamp"
SIGNATURE_HEADER = "X-Edgeloop-Signature"
DELIVERY_HEADER = "X-Edgeloop-Delivery"
DEFAULT_TOLERANCE_MS = 5 * 60 * 1000

Transport = Callable[[str, bytes, Mapping[str, str]], int]
"""``transport(url, body, headers) -> HTTP status``; raises ``OSError`` (or any exception)
when the request did not get an answer."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | int,
    signature: str,
    *,
    now: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp`` with ``secret``, and the
    timestamp is within ``tolerance_ms`` of ``now``."""
    try:
        at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - at) > tolerance_ms:
        return False
    return hmac.compare_digest(sign(secret, body, at), signature)


def http_transport(timeout: float = 10.0) -> Transport:
    """A transport over httpx (no redirects followed)."""
    import httpx

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            response = httpx.post(
                url, content=body, headers=dict(headers), timeout=timeout, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    return send


@dataclass
class Delivery:
    """The outcome of :func:`deliver`: every attempt's status (or error), and success."""

    ok: bool = False
    attempts: list[str] = field(default_factory=list)
    status: int | None = None


def deliver(
    transport: Transport,
    url: str,
    body: bytes,
    *,
    secret: str,
    delivery: str,
    now: Callable[[], int],
    attempts: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``body`` to ``url``, signed; up to ``attempts`` tries, waiting ``backoff``,
    ``2 * backoff``, ... between them. A 2xx succeeds; another 4xx (but 429) stops at once."""
    outcome = Delivery()
    for attempt in range(attempts):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        timestamp = now()
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, body, timestamp),
            DELIVERY_HEADER: delivery,
        }
        try:
            status = transport(url, body, headers)
        except Exception as exc:  # any transport failure is retried, then reported
            outcome.attempts.append(f"{type(exc).__name__}: {exc}")
            continue
        outcome.status = status
        outcome.attempts.append(str(status))
        if 200 <= status < 300:
            outcome.ok = True
            return outcome
        if status < 500 and status != 429:
            return outcome
    return outcome
