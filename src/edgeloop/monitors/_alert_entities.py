"""What the alert services return: rules, alerts, their actions, and a tick's report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ACTION_KINDS",
    "ALERT_STATUSES",
    "ActionInfo",
    "ActionSpec",
    "AlertInfo",
    "EvaluationReport",
    "RuleInfo",
    "TickReport",
]

ActionKind = Literal["notify", "pause_rollout", "retrain", "collect"]
ACTION_KINDS: tuple[ActionKind, ...] = ("notify", "pause_rollout", "retrain", "collect")
AlertStatus = Literal["open", "acknowledged", "resolved"]
ALERT_STATUSES: tuple[AlertStatus, ...] = ("open", "acknowledged", "resolved")
ActionStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]


class ActionSpec(BaseModel):
    """One action of a rule. ``notify``: the log, and a signed webhook POST to ``url`` if
    given (the HMAC secret is ``secret``, or the environment variable ``secret_env``);
    ``pause_rollout``: pause the running rollouts of the scope's model; ``retrain``: queue
    ``pipeline`` with an ``alert`` trigger; ``collect``: ask ``devices`` opted-in devices for
    ``samples_per_device`` raw samples each, for ``dataset``."""

    kind: ActionKind
    url: str | None = None
    secret: str | None = None
    secret_env: str | None = None
    pipeline: str | None = None
    dataset: str | None = None
    devices: int | None = None
    samples_per_device: int | None = None

    def public(self) -> dict[str, Any]:
        """The configuration without the webhook secret (shown as ``***``)."""
        data = self.model_dump(exclude_none=True)
        if "secret" in data:
            data["secret"] = "***"
        return data


class RuleInfo(BaseModel):
    id: str
    when: str
    """The canonical condition, e.g. ``drift_share >= 0.5 for 2 windows``."""
    metric: str
    op: str
    threshold: float
    windows: int
    source: Literal["monitor", "fleet"]
    monitor: str | None = None
    model: str | None = None
    group: str | None = None
    window_ms: int
    """The telemetry window a fleet-health rule judges (per ``for N windows``)."""
    cooldown_ms: int
    actions: list[dict[str, Any]] = Field(default_factory=list)
    enabled: bool = True
    description: str = ""
    created_at: int
    created_by: str
    updated_at: int


class ActionInfo(BaseModel):
    id: int
    alert: str
    position: int
    kind: str
    config: dict[str, Any] = Field(default_factory=dict)
    status: ActionStatus
    attempts: int = 0
    result: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None


class AlertInfo(BaseModel):
    id: str
    rule: str
    subject: str
    status: AlertStatus
    when: str
    metric: str
    value: float | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    """What fired the alert: the rule text, the report ids or telemetry windows, the figures."""
    latest: dict[str, Any] = Field(default_factory=dict)
    """What the last evaluation saw (the same as ``evidence`` until it changes)."""
    occurrences: int = 1
    opened_at: int
    last_seen_at: int
    acked_at: int | None = None
    acked_by: str | None = None
    resolved_at: int | None = None
    resolved_by: str | None = None
    resolve_reason: str = ""
    actions: list[ActionInfo] = Field(default_factory=list)


class EvaluationReport(BaseModel):
    """What one pass over the rules did (alert ids; ``suppressed``: rule ids in cool-down)."""

    rules: int = 0
    opened: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    suppressed: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    """Rules that could not be evaluated, by id, and why."""


class TickReport(BaseModel):
    """One pass of :func:`edgeloop.monitors.tick`."""

    at: int
    reports: dict[str, int] = Field(default_factory=dict)
    """New reports per monitor."""
    monitor_errors: dict[str, str] = Field(default_factory=dict)
    evaluation: EvaluationReport = Field(default_factory=EvaluationReport)
    actions: list[ActionInfo] = Field(default_factory=list)
    elapsed_ms: float = 0.0
