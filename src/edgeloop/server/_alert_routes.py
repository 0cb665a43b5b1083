"""Alert routes: alert rules (create, list, show, change, delete), and alerts (list, show with
their actions and evidence, acknowledge, resolve)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from edgeloop.monitors import _alerts, _rules
from edgeloop.monitors._alert_entities import AlertInfo, RuleInfo
from edgeloop.pages import Page
from edgeloop.server._deps import as_role
from edgeloop.workspace import Workspace

__all__ = ["router"]

router = APIRouter(tags=["alerts"])
viewer = Depends(as_role("viewer"))
editor = Depends(as_role("editor"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleIn(_Body):
    when: str
    """``METRIC OP NUMBER [for N windows]``, e.g. ``drift_share >= 0.5 for 2 windows``."""
    monitor: str | None = None
    model: str | None = None
    group: str | None = None
    actions: list[str | dict[str, Any]] = Field(default_factory=list, max_length=10)
    """``notify[:URL]``, ``retrain:PIPELINE``, ``collect:DATASET[:NxM]``, ``pause-rollout``, or
    objects like ``{"kind": "notify", "url": ..., "secret": ...}``."""
    cooldown: str | int = _rules.DEFAULT_COOLDOWN
    window: str | int = _rules.DEFAULT_WINDOW
    description: str = ""
    enabled: bool = True


class RulePatch(_Body):
    when: str | None = None
    actions: list[str | dict[str, Any]] | None = Field(default=None, max_length=10)
    cooldown: str | int | None = None
    window: str | int | None = None
    enabled: bool | None = None
    description: str | None = None


class ResolveIn(_Body):
    reason: str = ""


@router.post("/alerts/rules", status_code=201)
def create_rule(body: RuleIn, ws: Workspace = editor) -> RuleInfo:
    return _rules.create_rule(
        ws,
        body.when,
        monitor=body.monitor,
        model=body.model,
        group=body.group,
        actions=body.actions,
        cooldown=body.cooldown,
        window=body.window,
        description=body.description,
        enabled=body.enabled,
    )


@router.get("/alerts/rules")
def list_rules(monitor: str | None = None, ws: Workspace = viewer) -> list[RuleInfo]:
    return _rules.list_rules(ws, monitor=monitor)


@router.get("/alerts/rules/{rule_id}")
def get_rule(rule_id: str, ws: Workspace = viewer) -> RuleInfo:
    return _rules.get_rule(ws, rule_id)


@router.patch("/alerts/rules/{rule_id}")
def update_rule(rule_id: str, body: RulePatch, ws: Workspace = editor) -> RuleInfo:
    return _rules.update_rule(
        ws,
        rule_id,
        when=body.when,
        actions=body.actions,
        cooldown=body.cooldown,
        window=body.window,
        enabled=body.enabled,
        description=body.description,
    )


@router.delete("/alerts/rules/{rule_id}")
def delete_rule(rule_id: str, ws: Workspace = editor) -> RuleInfo:
    """Stop the rule; its open alerts resolve, its past alerts stay."""
    return _rules.delete_rule(ws, rule_id)


@router.get("/alerts")
def list_alerts(
    status: str | None = None,
    rule: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    ws: Workspace = viewer,
) -> Page[AlertInfo]:
    """Alerts, newest first (``status``: open, acknowledged, resolved, active)."""
    return _alerts.list_alerts(ws, status=status, rule=rule, cursor=cursor, limit=limit)


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: str, ws: Workspace = viewer) -> AlertInfo:
    """The alert with its evidence and its actions (status, result, error)."""
    return _alerts.get_alert(ws, alert_id)


@router.post("/alerts/{alert_id}/ack")
def ack_alert(alert_id: str, ws: Workspace = editor) -> AlertInfo:
    return _alerts.ack_alert(ws, alert_id)


@router.post("/alerts/{alert_id}/resolve")
def resolve_alert(
    alert_id: str, body: ResolveIn | None = None, ws: Workspace = editor
) -> AlertInfo:
    return _alerts.resolve_alert(ws, alert_id, body.reason if body is not None else "")
