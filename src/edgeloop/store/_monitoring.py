"""Store for monitoring windows and the layout each model version's windows share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from edgeloop.store._models import Model, ModelVersion, ModelVersionFile
from edgeloop.store._monitoring_models import MonitoringLayout, MonitoringWindow
from edgeloop.store._rows import insert_once

__all__ = ["MonitoringStore", "WindowRow"]


@dataclass(frozen=True)
class WindowRow:
    """What merging reads of a stored window."""

    source: str
    window_start: int
    window_end: int
    samples: int
    tags: dict[str, Any]
    data: bytes


class MonitoringStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    # model versions ---------------------------------------------------------------------

    def version_file(self, model: str, version: int, path: str) -> tuple[bool, str | None]:
        """Whether ``model`` has ``version``, and the digest of its file ``path`` (or None)."""
        version_id = self.s.scalar(
            select(ModelVersion.id)
            .join(Model, Model.id == ModelVersion.model_id)
            .where(Model.name == model, ModelVersion.version == version)
        )
        if version_id is None:
            return False, None
        digest = self.s.scalar(
            select(ModelVersionFile.digest).where(
                ModelVersionFile.model_version_id == version_id, ModelVersionFile.path == path
            )
        )
        return True, digest

    # layouts ----------------------------------------------------------------------------

    def layout(self, model: str, version: int) -> MonitoringLayout | None:
        return self.s.get(MonitoringLayout, (model, version))

    def add_layout(self, row: MonitoringLayout) -> MonitoringLayout:
        """Store ``row``; if another writer stored one first, that one (compare digests)."""
        try:
            with self.s.begin_nested():
                self.s.add(row)
                self.s.flush()
        except sa_exc.IntegrityError:
            found = self.layout(row.model, row.model_version)
            if found is None:
                raise
            return found
        return row

    # windows ----------------------------------------------------------------------------

    def add_window(self, row: MonitoringWindow) -> bool:
        """Store a window; False if this source already sent this window of this version."""
        return insert_once(
            self.s,
            row,
            select(MonitoringWindow.id).where(
                MonitoringWindow.model == row.model,
                MonitoringWindow.model_version == row.model_version,
                MonitoringWindow.source == row.source,
                MonitoringWindow.window_start == row.window_start,
            ),
        )

    def windows(
        self,
        model: str,
        version: int,
        start: int,
        end: int,
        sources: Sequence[str] | None = None,
    ) -> list[WindowRow]:
        """Windows of ``model``/``version`` starting in ``[start, end)``, oldest first;
        ``sources`` holds exact sources or prefixes ending in ``*`` (``device:*``)."""
        w = MonitoringWindow
        stmt = select(w.source, w.window_start, w.window_end, w.samples, w.tags, w.data).where(
            w.model == model,
            w.model_version == version,
            w.window_start >= start,
            w.window_start < end,
        )
        if sources is not None:
            exact = [s for s in sources if not s.endswith("*")]
            terms: list[ColumnElement[bool]] = [w.source.in_(exact)] if exact else []
            terms += [
                w.source.startswith(s[:-1], autoescape=True) for s in sources if s.endswith("*")
            ]
            if not terms:
                return []
            stmt = stmt.where(or_(*terms))
        stmt = stmt.order_by(w.window_start, w.source)
        return [WindowRow(*row) for row in self.s.execute(stmt)]
