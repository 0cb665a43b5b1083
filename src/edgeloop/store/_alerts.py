"""Store for alert rules, alerts and their actions, and the telemetry reads of fleet-health
rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from edgeloop.errors import NotFound
from edgeloop.store._alert_models import Alert, AlertAction, AlertRule
from edgeloop.store._models import DeviceTelemetry, Release
from edgeloop.store._monitor_models import MonitorReport

__all__ = ["AlertStore"]

_CHUNK = 500


class AlertStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    # rules --------------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule) -> AlertRule:
        self.s.add(rule)
        self.s.flush()
        return rule

    def get_rule(self, rule_id: str, *, for_update: bool = False) -> AlertRule:
        stmt = select(AlertRule).where(AlertRule.id == rule_id, AlertRule.deleted_at.is_(None))
        row = self.s.scalar(stmt.with_for_update() if for_update else stmt)
        if row is None:
            raise NotFound(f"alert rule {rule_id!r} does not exist", details={"rule": rule_id})
        return row

    def rules(self, *, monitor: str | None = None, enabled_only: bool = False) -> list[AlertRule]:
        stmt = select(AlertRule).where(AlertRule.deleted_at.is_(None))
        if monitor is not None:
            stmt = stmt.where(AlertRule.monitor == monitor)
        if enabled_only:
            stmt = stmt.where(AlertRule.enabled.is_(True))
        return list(self.s.scalars(stmt.order_by(AlertRule.created_at, AlertRule.id)))

    # alerts -------------------------------------------------------------------------------

    def add_alert(self, alert: Alert) -> Alert:
        self.s.add(alert)
        self.s.flush()
        return alert

    def get_alert(self, alert_id: str, *, for_update: bool = False) -> Alert:
        stmt = select(Alert).where(Alert.id == alert_id)
        row = self.s.scalar(stmt.with_for_update() if for_update else stmt)
        if row is None:
            raise NotFound(f"alert {alert_id!r} does not exist", details={"alert": alert_id})
        return row

    def open_alert(self, rule_id: str, subject: str) -> Alert | None:
        """The open (or acknowledged) alert of ``rule_id`` for ``subject``, locked."""
        stmt = (
            select(Alert)
            .where(Alert.rule_id == rule_id, Alert.subject == subject, Alert.status != "resolved")
            .with_for_update()
        )
        return self.s.scalar(stmt)

    def last_alert(self, rule_id: str, subject: str) -> Alert | None:
        """The newest alert of ``rule_id`` for ``subject``, whatever its status."""
        stmt = (
            select(Alert)
            .where(Alert.rule_id == rule_id, Alert.subject == subject)
            .order_by(Alert.opened_at.desc(), Alert.id.desc())
            .limit(1)
        )
        return self.s.scalar(stmt)

    def alerts(
        self,
        offset: int,
        limit: int,
        *,
        status: str | None = None,
        rule_id: str | None = None,
    ) -> list[Alert]:
        stmt = select(Alert)
        if status == "active":
            stmt = stmt.where(Alert.status != "resolved")
        elif status is not None:
            stmt = stmt.where(Alert.status == status)
        if rule_id is not None:
            stmt = stmt.where(Alert.rule_id == rule_id)
        stmt = stmt.order_by(Alert.opened_at.desc(), Alert.id).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))

    # actions ------------------------------------------------------------------------------

    def add_actions(self, actions: Sequence[AlertAction]) -> None:
        self.s.add_all(actions)
        self.s.flush()

    def actions(self, alert_id: str) -> list[AlertAction]:
        stmt = (
            select(AlertAction)
            .where(AlertAction.alert_id == alert_id)
            .order_by(AlertAction.position, AlertAction.id)
        )
        return list(self.s.scalars(stmt))

    def runnable_action_ids(self, stale_before: int) -> list[int]:
        """Pending actions, and running ones whose runner stopped before ``stale_before``."""
        stmt = (
            select(AlertAction.id)
            .where(
                or_(
                    AlertAction.status == "pending",
                    (AlertAction.status == "running") & (AlertAction.started_at < stale_before),
                )
            )
            .order_by(AlertAction.id)
        )
        return list(self.s.scalars(stmt))

    def claim_action(self, action_id: int, now: int, stale_before: int) -> AlertAction | None:
        """Mark the action running for this worker (None if another worker has it)."""
        row = self.s.scalar(
            select(AlertAction).where(AlertAction.id == action_id).with_for_update()
        )
        if row is None:
            return None
        stale = row.status == "running" and (row.started_at or 0) < stale_before
        if row.status != "pending" and not stale:
            return None
        row.status, row.started_at, row.attempts = "running", now, row.attempts + 1
        self.s.flush()
        return row

    def get_action(self, action_id: int) -> AlertAction:
        row = self.s.get(AlertAction, action_id)
        if row is None:
            raise NotFound(f"alert action {action_id} does not exist")
        return row

    # monitor reports --------------------------------------------------------------------

    def recent_reports(self, monitor_id: int, limit: int) -> list[MonitorReport]:
        """The monitor's newest ``limit`` evaluated (``ok``) reports."""
        stmt = (
            select(MonitorReport)
            .where(MonitorReport.monitor_id == monitor_id, MonitorReport.status == "ok")
            .order_by(MonitorReport.window_end.desc(), MonitorReport.id.desc())
            .limit(limit)
        )
        return list(self.s.scalars(stmt))

    def version_reports(
        self, monitor_id: int, model_version: int | None, limit: int
    ) -> list[MonitorReport]:
        """The newest ``limit`` evaluated reports of one model version, oldest first."""
        version = (
            MonitorReport.model_version.is_(None)
            if model_version is None
            else MonitorReport.model_version == model_version
        )
        stmt = (
            select(MonitorReport)
            .where(MonitorReport.monitor_id == monitor_id, MonitorReport.status == "ok", version)
            .order_by(MonitorReport.window_end.desc(), MonitorReport.id.desc())
            .limit(limit)
        )
        return list(reversed(list(self.s.scalars(stmt))))

    # fleet health -------------------------------------------------------------------------

    def release_ids(self, model: str) -> list[str]:
        return list(self.s.scalars(select(Release.id).where(Release.model == model)))

    def telemetry_between(
        self,
        start: int,
        end: int,
        *,
        release_ids: Sequence[str] | None = None,
        device_ids: Sequence[str] | None = None,
    ) -> list[DeviceTelemetry]:
        """Telemetry windows ending in ``(start, end]``, of these releases and devices (None:
        any)."""
        stmt = select(DeviceTelemetry).where(
            DeviceTelemetry.window_end > start, DeviceTelemetry.window_end <= end
        )
        if release_ids is not None:
            if not release_ids:
                return []
            stmt = stmt.where(DeviceTelemetry.release_id.in_(list(release_ids)))
        if device_ids is None:
            return list(self.s.scalars(stmt.order_by(DeviceTelemetry.id)))
        rows: list[DeviceTelemetry] = []
        ids = list(device_ids)
        for at in range(0, len(ids), _CHUNK):
            chunk = ids[at : at + _CHUNK]
            rows.extend(self.s.scalars(stmt.where(DeviceTelemetry.device_id.in_(chunk))))
        return sorted(rows, key=lambda r: r.id)
