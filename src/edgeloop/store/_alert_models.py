"""Tables of alert rules, the alerts they raised and the actions those ran (migration
``0010_alerts``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edgeloop.store._models import Base, Json

__all__ = ["Alert", "AlertAction", "AlertRule"]


class AlertRule(Base):
    """A condition on a monitor's reports or on the fleet's health over a scope, with the
    actions to run when it fires. Deleting a rule only marks it (its alerts keep their rule)."""

    __tablename__ = "alert_rules"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    monitor: Mapped[str | None] = mapped_column(String(256), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    group_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    condition: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(256))
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    windows: Mapped[int] = mapped_column(Integer, default=1)
    window_ms: Mapped[int] = mapped_column(BigInteger)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cooldown_ms: Mapped[int] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_alert_rules_monitor", "monitor"),)


class Alert(Base):
    """One breach of a rule for one subject, from when it fired until it resolved.
    ``open_key`` is set while the alert is open (unique): one open alert per rule and
    subject. ``evidence`` is what fired it; ``latest`` what the last evaluation saw."""

    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id"))
    subject: Mapped[str] = mapped_column(String(256))
    open_key: Mapped[str | None] = mapped_column(String(300), nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(256))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[Json] = mapped_column(default=dict)
    latest: Mapped[Json] = mapped_column(default=dict)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    acked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolve_reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        Index("ix_alerts_rule_subject", "rule_id", "subject", "resolved_at"),
        Index("ix_alerts_status_opened", "status", "opened_at"),
    )


class AlertAction(Base):
    """One action an alert ran (or is to run): its configuration, status, attempts, result
    and error."""

    __tablename__ = "alert_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[Json] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[Json] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        Index("ix_alert_actions_alert", "alert_id", "position"),
        Index("ix_alert_actions_status", "status", "id"),
    )
