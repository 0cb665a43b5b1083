"""Tables of monitoring windows: the sketches devices and other sources send, per model
version. Times are epoch milliseconds."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgeloop.store._models import Base, Json

__all__ = ["MonitoringLayout", "MonitoringWindow"]


class MonitoringLayout(Base):
    """What every window of one model version shares (feature names, histogram edges,
    quantile accuracy, classes): stored once, fixed by the version's reference (or its first
    window when it has none)."""

    __tablename__ = "monitoring_layouts"
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    layout: Mapped[Json] = mapped_column()
    created_at: Mapped[int] = mapped_column(BigInteger)


class MonitoringWindow(Base):
    """One closed window of one source (``device:<id>``, ``endpoint:<name>``, ``batch:<name>``)
    for one model version: its tags and its packed sketch counts (the layout is apart)."""

    __tablename__ = "monitoring_windows"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(256))
    window_start: Mapped[int] = mapped_column(BigInteger)
    window_end: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(BigInteger)
    tags: Mapped[Json] = mapped_column(default=dict)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint(
            "model", "model_version", "source", "window_start", name="uq_monitoring_windows_window"
        ),
        Index("ix_monitoring_windows_version_start", "model", "model_version", "window_start"),
    )
