"""Alerts: judging the rules, and what people do with the alerts (acknowledge, resolve).

:func:`evaluate_rules` judges each enabled rule in one transaction that locks the rule's row,
so several workers at once neither open an alert twice nor miss one:

- a breach with an alert already open for the rule and subject updates it (de-duplication:
  ``occurrences`` counts the windows that breached, ``latest`` holds what was last seen);
- a breach without one opens an alert, with its evidence and one pending action per action
  of the rule (run by :func:`edgeloop.monitors.run_pending_actions`), unless an alert of the
  same rule and subject resolved less than the rule's cool-down ago, or nothing is newer
  than what the last alert saw;
- a clear latest window resolves the open alert (``resolved_by = "auto"``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, EdgeloopError
from edgeloop.monitors._alert_entities import (
    ALERT_STATUSES,
    ActionInfo,
    ActionSpec,
    AlertInfo,
    EvaluationReport,
)
from edgeloop.monitors._evidence import Verdict, fleet_verdicts, monitor_verdicts
from edgeloop.pages import Page, check_choice, check_limit, decode_cursor, next_cursor
from edgeloop.store import Alert, AlertAction, AlertRule, AlertStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "ack_alert",
    "action_info",
    "alert_info",
    "evaluate_rules",
    "get_alert",
    "list_alerts",
    "resolve_alert",
]


def action_info(row: AlertAction) -> ActionInfo:
    config = ActionSpec.model_validate({"kind": row.kind, **(row.config or {})}).public()
    config.pop("kind", None)
    return ActionInfo(
        id=row.id,
        alert=row.alert_id,
        position=row.position,
        kind=row.kind,
        config=config,
        status=row.status,
        attempts=row.attempts,
        result=dict(row.result or {}),
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def alert_info(row: Alert, actions: Sequence[AlertAction] = ()) -> AlertInfo:
    return AlertInfo(
        id=row.id,
        rule=row.rule_id,
        subject=row.subject,
        status=row.status,
        when=row.condition,
        metric=row.metric,
        value=row.value,
        evidence=dict(row.evidence or {}),
        latest=dict(row.latest or {}),
        occurrences=row.occurrences,
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        acked_at=row.acked_at,
        acked_by=row.acked_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolve_reason=row.resolve_reason,
        actions=[action_info(a) for a in actions],
    )


# ---- judging ----------------------------------------------------------------------------------


def _open(s: Session, rule: AlertRule, verdict: Verdict, now: int) -> Alert:
    alert = Alert(
        id=f"alert_{secrets.token_hex(8)}",
        rule_id=rule.id,
        subject=verdict.subject,
        open_key=f"{rule.id}|{verdict.subject}",
        status="open",
        condition=rule.condition,
        metric=rule.metric,
        value=verdict.value,
        evidence={**verdict.evidence, "key": verdict.key},
        latest={**verdict.evidence, "key": verdict.key},
        occurrences=1,
        opened_at=now,
        last_seen_at=now,
        resolve_reason="",
    )
    store = AlertStore(s)
    store.add_alert(alert)
    store.add_actions(
        [
            AlertAction(
                alert_id=alert.id,
                position=index,
                kind=spec["kind"],
                config={k: v for k, v in spec.items() if k != "kind"},
                status="pending",
                attempts=0,
                result={},
                error="",
                created_at=now,
            )
            for index, spec in enumerate(rule.actions or [])
        ]
    )
    return alert


def _apply(
    s: Session, rule: AlertRule, verdict: Verdict, now: int, report: EvaluationReport
) -> None:
    store = AlertStore(s)
    current = store.open_alert(rule.id, verdict.subject)
    if verdict.breach is None:
        return
    if not verdict.breach:
        if current is not None:
            current.status, current.open_key = "resolved", None
            current.resolved_at, current.resolved_by = now, "auto"
            current.resolve_reason = (
                f"{rule.metric} = {verdict.value:g}: no longer {rule.op} {rule.threshold:g}"
                if verdict.value is not None
                else "condition cleared"
            )
            current.latest = {**verdict.evidence, "key": verdict.key}
            current.value, current.last_seen_at = verdict.value, now
            report.resolved.append(current.id)
        return
    if current is not None:
        if (current.latest or {}).get("key") != verdict.key:
            current.occurrences += 1
            current.latest = {**verdict.evidence, "key": verdict.key}
            current.value, current.last_seen_at = verdict.value, now
            report.updated.append(current.id)
        return
    last = store.last_alert(rule.id, verdict.subject)
    if last is not None:
        if (last.latest or {}).get("key") == verdict.key:
            return  # nothing newer than what the last alert saw
        if last.resolved_at is not None and now < last.resolved_at + rule.cooldown_ms:
            report.suppressed.append(rule.id)
            return
    report.opened.append(_open(s, rule, verdict, now).id)


def _evaluate_rule(ws: Workspace, rule_id: str, now: int, report: EvaluationReport) -> None:
    with ws.db.write() as s:
        store = AlertStore(s)
        rule = store.get_rule(rule_id, for_update=True)  # one evaluator per rule at a time
        if not rule.enabled:
            return
        if rule.monitor is not None:
            open_subjects = [
                a.subject for a in store.alerts(0, 1000, status="active", rule_id=rule.id)
            ]
            verdicts = monitor_verdicts(s, rule, open_subjects)
        else:
            verdicts = fleet_verdicts(s, rule, now)
        for verdict in verdicts:
            _apply(s, rule, verdict, now, report)


def evaluate_rules(
    ws: Workspace, *, now: int | None = None, rules: Sequence[str] | None = None
) -> EvaluationReport:
    """Judge every enabled rule (or those of ``rules``): open, update and resolve alerts.
    Idempotent: judging the same data again changes nothing. A rule that cannot be judged
    (its monitor or group was deleted) is reported in ``errors`` and the others go on."""
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        ids = [r.id for r in AlertStore(s).rules(enabled_only=True)]
    if rules is not None:
        wanted = set(rules)
        ids = [i for i in ids if i in wanted]
    report = EvaluationReport(rules=len(ids))
    for rule_id in ids:
        try:
            _evaluate_rule(ws, rule_id, at, report)
        except EdgeloopError as exc:
            report.errors[rule_id] = exc.message
    return report


# ---- people -----------------------------------------------------------------------------------


def get_alert(ws: Workspace, alert_id: str) -> AlertInfo:
    """The alert with its evidence and every action it ran (status, result, error)."""
    with ws.db.read() as s:
        store = AlertStore(s)
        row = store.get_alert(alert_id)
        return alert_info(row, store.actions(row.id))


def list_alerts(
    ws: Workspace,
    *,
    status: str | None = None,
    rule: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[AlertInfo]:
    """Alerts, newest first; ``status``: open, acknowledged, resolved, or active (not
    resolved)."""
    check_choice(status, (*ALERT_STATUSES, "active"), "status")
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        rows = AlertStore(s).alerts(offset, limit + 1, status=status, rule_id=rule)
        items = [alert_info(r) for r in rows[:limit]]
    return Page[AlertInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def ack_alert(ws: Workspace, alert_id: str, *, now: int | None = None) -> AlertInfo:
    """Acknowledge: someone is on it. The alert stays open (and de-duplicates) until the
    condition clears or someone resolves it."""
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        store = AlertStore(s)
        row = store.get_alert(alert_id, for_update=True)
        if row.status == "resolved":
            raise Conflict(
                f"alert {alert_id} is resolved: there is nothing to acknowledge",
                details={"alert": alert_id, "status": row.status},
            )
        if row.status == "open":
            row.status, row.acked_at, row.acked_by = "acknowledged", at, ws.principal.name
        return alert_info(row, store.actions(row.id))


def resolve_alert(
    ws: Workspace, alert_id: str, reason: str = "", *, now: int | None = None
) -> AlertInfo:
    """Resolve by hand. The rule's cool-down starts now: a breach that goes on opens a new
    alert only after it."""
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        store = AlertStore(s)
        row = store.get_alert(alert_id, for_update=True)
        if row.status == "resolved":
            raise Conflict(
                f"alert {alert_id} is already resolved",
                details={"alert": alert_id, "status": row.status},
            )
        row.status, row.open_key = "resolved", None
        row.resolved_at, row.resolved_by = at, ws.principal.name
        row.resolve_reason = reason or "resolved by hand"
        return alert_info(row, store.actions(row.id))
