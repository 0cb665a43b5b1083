"""Tables of monitors and their reports, and of the predictions, labels and reviews that
performance is measured on (migration ``0008_monitors``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edgeloop.store._models import Base, Json

__all__ = ["Monitor", "MonitorReport", "Prediction", "PredictionReview"]


class Prediction(Base):
    """One prediction a model made in the field, and its ground truth once known.

    ``id`` is the caller's prediction id (the agent's, a serving endpoint's); ``tags`` are the
    slice tags (site, target, group names...). ``label`` is the latest ground truth: posted by
    id (``label_source = "label"``) or decided by a person (``"review"``).
    """

    __tablename__ = "predictions"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(256))
    predicted: Mapped[str] = mapped_column(String(256))
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    at: Mapped[int] = mapped_column(BigInteger)
    tags: Mapped[Json] = mapped_column(default=dict)
    label: Mapped[str | None] = mapped_column(String(256), nullable=True)
    label_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    labeled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_predictions_model_at", "model", "at"),)


class PredictionReview(Base):
    """Append-only: a person's decision on a prediction (confirm, correct, reject)."""

    __tablename__ = "prediction_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(256), nullable=True)
    reviewer: Mapped[str] = mapped_column(String(256))
    at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_prediction_reviews_prediction", "prediction_id", "id"),)


class Monitor(Base):
    """What to watch (a model, within a scope of devices or sources), per window, and how to
    judge drift; ``evaluated_until`` is the end of the last window reported."""

    __tablename__ = "monitors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(256))
    scope: Mapped[Json] = mapped_column(default=dict)
    window_ms: Mapped[int] = mapped_column(BigInteger)
    delay_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    tests: Mapped[Json] = mapped_column(default=dict)
    drift_share: Mapped[float] = mapped_column(Float)
    min_samples: Mapped[int] = mapped_column(Integer)
    slice_by: Mapped[list[Any]] = mapped_column(JSON, default=list)
    start_at: Mapped[int] = mapped_column(BigInteger)
    evaluated_until: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))


class MonitorReport(Base):
    """Append-only: one monitor's verdict on one window for one model version (or a window
    skipped, with the reason)."""

    __tablename__ = "monitor_reports"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    window_end: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    samples: Mapped[int] = mapped_column(BigInteger, default=0)
    sources: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[Json] = mapped_column(default=dict)
    features: Mapped[Json] = mapped_column(default=dict)
    details: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_monitor_reports_monitor_window", "monitor_id", "window_start"),)
