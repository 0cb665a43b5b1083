"""Stores for monitors (with their append-only reports) and for predictions (with their
labels and reviews)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._monitor_models import Monitor, MonitorReport, Prediction, PredictionReview

__all__ = ["MonitorStore", "PredictionStore"]

_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class MonitorStore:
    """Monitors and their reports."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, monitor: Monitor) -> Monitor:
        try:
            with self.s.begin_nested():
                self.s.add(monitor)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"monitor {monitor.name!r} already exists", details={"monitor": monitor.name}
            ) from exc
        return monitor

    def find(self, name: str, *, for_update: bool = False) -> Monitor | None:
        stmt = select(Monitor).where(Monitor.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def get(self, name: str, *, for_update: bool = False) -> Monitor:
        monitor = self.find(name, for_update=for_update)
        if monitor is None:
            raise NotFound(f"monitor {name!r} does not exist", details={"monitor": name})
        return monitor

    def all(self, model: str | None = None) -> list[Monitor]:
        stmt = select(Monitor).order_by(Monitor.name)
        if model is not None:
            stmt = stmt.where(Monitor.model == model)
        return list(self.s.scalars(stmt))

    def delete(self, monitor: Monitor) -> None:
        self.s.delete(monitor)
        self.s.flush()

    def add_reports(self, reports: Sequence[MonitorReport]) -> None:
        self.s.add_all(reports)
        self.s.flush()

    def reports(
        self,
        monitor_id: int,
        *,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[MonitorReport]:
        """Reports by window (oldest first); ``since``: windows ending after it; ``limit``:
        the newest ``limit`` of them."""
        stmt = select(MonitorReport).where(MonitorReport.monitor_id == monitor_id)
        if since is not None:
            stmt = stmt.where(MonitorReport.window_end > since)
        if limit is not None:
            stmt = stmt.order_by(MonitorReport.window_start.desc(), MonitorReport.id.desc())
            return list(reversed(list(self.s.scalars(stmt.limit(limit)))))
        return list(self.s.scalars(stmt.order_by(MonitorReport.window_start, MonitorReport.id)))

    def report_count(self, monitor_id: int) -> int:
        stmt = select(func.count()).where(MonitorReport.monitor_id == monitor_id)
        return int(self.s.scalar(stmt) or 0)


class PredictionStore:
    """Predictions, their labels, and review decisions."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def existing(self, ids: Sequence[str]) -> dict[str, Prediction]:
        found: dict[str, Prediction] = {}
        for chunk in _chunks(list(ids)):
            for row in self.s.scalars(select(Prediction).where(Prediction.id.in_(chunk))):
                found[row.id] = row
        return found

    def add(self, rows: Sequence[Prediction]) -> None:
        self.s.add_all(rows)
        self.s.flush()

    def get(self, prediction_id: str) -> Prediction:
        row = self.s.get(Prediction, prediction_id)
        if row is None:
            raise NotFound(
                f"prediction {prediction_id!r} does not exist: record it first "
                "(POST /api/v1/monitoring/predictions)",
                details={"prediction_id": prediction_id},
            )
        return row

    def in_range(
        self, model: str, start: int, end: int, *, labeled_only: bool = False
    ) -> list[Prediction]:
        """Predictions of ``model`` made in ``[start, end)``, oldest first."""
        stmt = select(Prediction).where(
            Prediction.model == model, Prediction.at >= start, Prediction.at < end
        )
        if labeled_only:
            stmt = stmt.where(Prediction.label.is_not(None))
        return list(self.s.scalars(stmt.order_by(Prediction.at, Prediction.id)))

    def add_review(self, review: PredictionReview) -> None:
        self.s.add(review)
        self.s.flush()

    def reviews(self, prediction_id: str) -> list[PredictionReview]:
        stmt = select(PredictionReview).where(PredictionReview.prediction_id == prediction_id)
        return list(self.s.scalars(stmt.order_by(PredictionReview.id)))
