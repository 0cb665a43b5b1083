"""What the fleet services return; the same types travel over the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from edgeloop.fleet._collection_entities import CollectionRequest

__all__ = [
    "ROLLOUT_STATES",
    "UPDATE_STATES",
    "Assignment",
    "CheckinReport",
    "CheckinResult",
    "DeviceInfo",
    "DeviceTokenGrant",
    "DeviceUpdateInfo",
    "EnrollmentResult",
    "EnrollmentTokenInfo",
    "GroupInfo",
    "HealthRule",
    "LatencyHistogram",
    "ReconcileReport",
    "ReleaseInfo",
    "RolloutEventInfo",
    "RolloutInfo",
    "RolloutState",
    "SlotReport",
    "TelemetryReport",
    "UpdateReport",
    "UpdateState",
    "WaveProgress",
]

RolloutState = Literal[
    "draft", "awaiting-approval", "running", "paused", "completed", "rolled-back", "cancelled"
]
ROLLOUT_STATES: tuple[RolloutState, ...] = (
    "draft",
    "awaiting-approval",
    "running",
    "paused",
    "completed",
    "rolled-back",
    "cancelled",
)
UpdateState = Literal[
    "assigned",
    "downloading",
    "downloaded",
    "installing",
    "verifying",
    "healthy",
    "failed",
    "rolled-back",
]
UPDATE_STATES: tuple[UpdateState, ...] = (
    "assigned",
    "downloading",
    "downloaded",
    "installing",
    "verifying",
    "healthy",
    "failed",
    "rolled-back",
)


class DeviceInfo(BaseModel):
    """A device and its inventory: the bundle in each slot, last seen, health."""

    id: str
    status: Literal["pending", "accepted", "rejected"]
    status_reason: str = ""
    target: str
    firmware: str = ""
    site: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)
    public_key: str
    has_token: bool = False
    slots: dict[str, Any] = Field(default_factory=dict)
    active_slot: str | None = None
    current_release: str | None = None
    last_seen: int | None = None
    health: dict[str, Any] = Field(default_factory=dict)
    enrolled_at: int
    enrolled_by: str
    accepted_at: int | None = None
    accepted_by: str | None = None
    data_collection: bool = False
    """The device opted in to sending raw samples for data collection."""


class EnrollmentResult(BaseModel):
    """The answer to ``POST /devices/enroll``; the token and key only once accepted."""

    status: Literal["pending", "accepted", "rejected"]
    poll_interval_s: int
    device_token: str | None = None
    fleet_public_key: str | None = None


class DeviceTokenGrant(BaseModel):
    device_token: str
    fleet_public_key: str
    poll_interval_s: int


class EnrollmentTokenInfo(BaseModel):
    id: str
    name: str
    max_uses: int | None = None
    uses: int = 0
    expires_at: int | None = None
    created_at: int
    created_by: str
    revoked_at: int | None = None


class GroupInfo(BaseModel):
    name: str
    kind: Literal["static", "query"]
    members: list[str] = Field(default_factory=list)
    query: str = ""
    description: str = ""
    created_at: int
    created_by: str
    devices: list[str] | None = None
    """The accepted devices it holds now (filled in by ``get_group``)."""


class ReleaseInfo(BaseModel):
    id: str
    model: str
    model_version: int
    target: str
    runtime: Literal["int8", "trees", "onnx", "c"]
    manifest_digest: str
    size: int
    files: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """path -> {"sha256", "size"} as in the signed manifest."""
    created_at: int
    created_by: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.model_version}"


class HealthRule(BaseModel):
    """A health threshold on telemetry, e.g. ``error_rate < 0.02``."""

    metric: Literal["error_rate", "latency_p95_ms"]
    op: Literal["<", "<=", ">", ">="]
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def holds(self, observed: float) -> bool:
        if self.op == "<":
            return observed < self.value
        if self.op == "<=":
            return observed <= self.value
        if self.op == ">":
            return observed > self.value
        return observed >= self.value


class WaveProgress(BaseModel):
    """Devices chosen by one wave and how far they got."""

    index: int
    percent: float
    target: int
    """Devices this wave brings the rollout to (cumulative), at the current group size."""
    assigned: int = 0
    healthy: int = 0
    failed: int = 0
    in_progress: int = 0
    offline: int = 0
    rolled_back: int = 0


class RolloutInfo(BaseModel):
    id: str
    release: str
    model: str = ""
    model_version: int = 0
    target: str = ""
    group: str
    waves: list[float]
    bake_ms: int
    max_failure: float
    min_success: float
    health: list[HealthRule] = Field(default_factory=list)
    on_failure: Literal["rollback", "pause"]
    approve_each_wave: bool
    offline_timeout_ms: int
    state: RolloutState
    state_reason: str = ""
    current_wave: int
    wave_started_at: int | None = None
    created_at: int
    created_by: str
    updated_at: int
    ended_at: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    """Devices per update state."""
    bytes_downloaded: int = 0
    bytes_saved: int = 0
    progress: list[WaveProgress] = Field(default_factory=list)
    gates: dict[str, Any] | None = None
    """The current wave's gate evaluation (``show`` only)."""


class DeviceUpdateInfo(BaseModel):
    rollout: str
    device: str
    wave: int
    release: str
    previous_release: str | None = None
    state: UpdateState
    reason: str = ""
    rollback: bool = False
    offline: bool = False
    bytes_downloaded: int = 0
    bytes_saved: int = 0
    assigned_at: int
    updated_at: int


class RolloutEventInfo(BaseModel):
    id: int
    rollout: str
    at: int
    from_state: str | None = None
    to_state: str
    wave: int | None = None
    actor: str
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


class Assignment(BaseModel):
    """What a device should install: the release's URLs, and whether it is a rollback."""

    rollout: str
    release: str
    rollback: bool = False
    manifest_url: str
    signature_url: str
    files_url: str
    max_bundle_bytes: int


class CheckinResult(BaseModel):
    poll_interval_s: int
    jitter_s: int
    assignment: Assignment | None = None
    collection: CollectionRequest | None = None
    """A data collection request for this device (opted-in devices only; left out of the
    JSON when there is none, so answers to other devices are unchanged)."""

    @model_serializer(mode="wrap")
    def _without_empty_collection(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("collection", 0) is None:
            del data["collection"]
        return data


class ReconcileReport(BaseModel):
    """What one reconciler pass did."""

    rollouts: int
    """Rollouts it looked at."""
    transitions: list[RolloutEventInfo] = Field(default_factory=list)
    assigned: int = 0
    """Devices newly assigned."""
    elapsed_ms: float = 0.0


# ---- what devices send (docs/fleet-protocol.md); unknown fields are ignored so that newer
# agents keep working with this server -------------------------------------------------------


class _DeviceBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlotReport(_DeviceBody):
    release: str | None = Field(default=None, max_length=32)
    bundle_digest: str | None = Field(default=None, max_length=64)


class UpdateReport(_DeviceBody):
    """The state of the update a device is working on."""

    rollout: str = Field(max_length=32)
    release: str = Field(max_length=32)
    state: UpdateState
    reason: str = Field(default="", max_length=2000)
    bytes_downloaded: int = Field(default=0, ge=0)
    bytes_saved: int = Field(default=0, ge=0)


class CheckinReport(_DeviceBody):
    firmware: str | None = Field(default=None, max_length=64)
    slots: dict[str, SlotReport | None] = Field(default_factory=dict, max_length=8)
    active: str | None = Field(default=None, max_length=8)
    update: UpdateReport | None = None


class LatencyHistogram(_DeviceBody):
    edges: list[float] = Field(default_factory=list, max_length=256)
    counts: list[int] = Field(default_factory=list, max_length=257)


class TelemetryReport(_DeviceBody):
    """One closed telemetry window."""

    window_start: int = Field(ge=0)
    window_end: int = Field(ge=0)
    release: str | None = Field(default=None, max_length=32)
    model_version: int | None = None
    inference_count: int = Field(default=0, ge=0)
    error_count: int = Field(default=0, ge=0)
    latency_ms: LatencyHistogram | None = None
    latency_p95_ms: float | None = Field(default=None, ge=0)
    dropped_windows: int = Field(default=0, ge=0)
    sketches: dict[str, Any] | None = None
    predictions: list[dict[str, Any]] | None = Field(default=None, max_length=10_000)
    """The window's predictions ``{id, predicted, confidence, at}`` (ids ``<device>/...``)."""
    predictions_dropped: int = Field(default=0, ge=0)
    """Predictions left out once the device's per-window bound was reached."""
    labels: list[dict[str, Any]] | None = Field(default=None, max_length=10_000)
    """Ground truth given on site ``{prediction_id, label}`` for this device's predictions."""
    labels_dropped: int = Field(default=0, ge=0)
