"""The simulated devices' own state: identity, failure mode, what is installed, and the
statistics a simulated fleet reports."""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["FAILURE_MODES", "FailureMode", "FleetStats", "SimulatedDevice"]

FailureMode = Literal["crash-install", "corrupt-download", "self-test", "inference", "offline"]
FAILURE_MODES: tuple[FailureMode, ...] = get_args(FailureMode)
API_PREFIX = "/api/v1"
LATENCY_EDGES = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
_LATENCY_SHAPE = (0.0, 0.04, 0.38, 0.46, 0.09, 0.02, 0.01, 0.0, 0.0)  # share per bin
_MAX_BUNDLE_BYTES = 256 << 20
_MAX_MANIFEST_BYTES = 1 << 20


class _Transient(Exception):
    """The server could not be reached or answered 5xx: try again at the next check-in."""


class _Failed(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass
class SimulatedDevice:
    """One simulated device: identity, key, failure mode and what it has installed."""

    id: str
    target: str
    attributes: dict[str, Any]
    key: Ed25519PrivateKey
    rng: random.Random
    failure: FailureMode | None = None
    token: str = ""
    status: str = "new"  # new, pending, accepted
    release: str | None = None
    model_version: int | None = None
    manifest: dict[str, Any] | None = None
    manifest_digest: str | None = None
    slots: dict[str, dict[str, Any] | None] = field(default_factory=lambda: {"a": None, "b": None})
    active: str | None = None
    done: set[tuple[str, str]] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)  # outcomes not yet reported
    states: list[str] = field(default_factory=list)  # reported states, repeats collapsed
    failures: list[str] = field(default_factory=list)  # reasons of reported failures
    bad_release: str | None = None  # installed while faulty (inference mode)
    down_until: float = 0.0
    online_until: float = math.inf
    offline_until: float = 0.0
    offline_periods: list[tuple[float, float]] = field(default_factory=list)
    checkin_times: list[float] = field(default_factory=list)
    window_start_ms: int = 0
    collect: bool = False  # opted in to data collection
    collected: set[str] = field(default_factory=set)  # collections it answered

    @property
    def public_key(self) -> str:
        return base64.b64encode(self.key.public_key().public_bytes_raw()).decode()

    def signature(self, timestamp: int) -> str:
        return base64.b64encode(self.key.sign(f"{self.id}:{timestamp}".encode())).decode()

    def idle_slot(self) -> str:
        return "b" if self.active == "a" else "a"


@dataclass
class FleetStats:
    """What a fleet did: requests, check-in latency, reported states, failures, bytes."""

    devices: int
    faulty: dict[str, int]
    enrolled: int
    elapsed_s: float
    checkins: int
    checkins_per_s: float
    latency_ms: dict[str, float]
    requests: dict[str, int]
    errors: dict[str, int]
    states: dict[str, int]
    failures: dict[str, int]
    releases: dict[str, int]
    telemetry_windows: int
    bytes_downloaded: int
    bytes_saved: int
    bytes_fetched: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "p50": round(rank(0.50), 3),
        "p95": round(rank(0.95), 3),
        "p99": round(rank(0.99), 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def _flipped(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one byte inverted (a corrupted download)."""
    if not data:
        return b"\xff"
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _p95(counts: Sequence[int]) -> float:
    total = sum(counts)
    rank, seen = 0.95 * total, 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_EDGES[i - 1] if i > 0 else 0.0
            high = LATENCY_EDGES[i] if i < len(LATENCY_EDGES) else low * 2
            return round(low + (high - low) * (rank - seen) / count, 3)
        seen += count
    return 0.0
