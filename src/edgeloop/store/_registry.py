"""Store for registered models, their versions, files, footprints, aliases and alias history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._models import (
    AliasEvent,
    Model,
    ModelAlias,
    ModelFootprint,
    ModelVersion,
    ModelVersionFile,
)

__all__ = ["ModelStore"]


class ModelStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, **values: Any) -> Model:
        model = Model(**values)
        try:
            with self.s.begin_nested():
                self.s.add(model)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"model {values['name']!r} already exists", details={"name": values["name"]}
            ) from exc
        return model

    def find(self, name: str, *, for_update: bool = False) -> Model | None:
        stmt = select(Model).where(Model.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def get(self, name: str, *, for_update: bool = False) -> Model:
        model = self.find(name, for_update=for_update)
        if model is None:
            raise NotFound(f"model {name!r} does not exist", details={"model": name})
        return model

    def page(self, offset: int, limit: int) -> list[Model]:
        return list(self.s.scalars(select(Model).order_by(Model.name).offset(offset).limit(limit)))

    # versions ----------------------------------------------------------------------

    def next_version(self, model_id: int) -> int:
        current = self.s.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)
        )
        return int(current or 0) + 1

    def add_version(self, version: ModelVersion, files: Sequence[tuple[str, str, int]]) -> None:
        try:
            with self.s.begin_nested():
                self.s.add(version)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"version {version.version} was registered concurrently; retry") from exc
        self.s.add_all(
            ModelVersionFile(model_version_id=version.id, path=p, digest=d, size=n)
            for p, d, n in files
        )
        self.s.flush()

    def add_files(self, version_id: int, files: Sequence[tuple[str, str, int]]) -> None:
        """Add files to a version; a path it already has must keep its content."""
        existing = {f.path: f.digest for f in self.files(version_id)}
        for path, digest, size in files:
            if path in existing:
                if existing[path] != digest:
                    raise Conflict(
                        f"the version already has a different {path!r}: files of a version "
                        "never change; register a new version",
                        details={"path": path},
                    )
                continue
            self.s.add(
                ModelVersionFile(model_version_id=version_id, path=path, digest=digest, size=size)
            )
        self.s.flush()

    def version(self, model: Model, number: int) -> ModelVersion:
        mv = self.s.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == number
            )
        )
        if mv is None:
            raise NotFound(
                f"model {model.name!r} has no version {number}",
                details={"model": model.name, "version": number},
            )
        return mv

    def versions(self, model_id: int) -> list[ModelVersion]:
        stmt = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id)
            .order_by(ModelVersion.version)
        )
        return list(self.s.scalars(stmt))

    def latest_version(self, model_id: int) -> int | None:
        value = self.s.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)
        )
        return None if value is None else int(value)

    def files(self, version_id: int) -> list[ModelVersionFile]:
        stmt = (
            select(ModelVersionFile)
            .where(ModelVersionFile.model_version_id == version_id)
            .order_by(ModelVersionFile.path)
        )
        return list(self.s.scalars(stmt))

    # footprints --------------------------------------------------------------------

    def set_footprint(
        self, version_id: int, target: str, footprint: dict[str, Any], actor: str, at: int
    ) -> ModelFootprint:
        """Store the footprint of a version on ``target``, replacing an earlier one."""
        row = self.s.get(ModelFootprint, (version_id, target))
        if row is None:
            row = ModelFootprint(
                model_version_id=version_id,
                target=target,
                footprint=footprint,
                measured_at=at,
                measured_by=actor,
            )
            try:
                with self.s.begin_nested():
                    self.s.add(row)
                    self.s.flush()
                return row
            except sa_exc.IntegrityError:  # stored concurrently: replace that one
                row = self.s.get(ModelFootprint, (version_id, target), populate_existing=True)
                if row is None:
                    raise
        row.footprint, row.measured_at, row.measured_by = footprint, at, actor
        self.s.flush()
        return row

    def footprints(self, version_id: int) -> list[ModelFootprint]:
        stmt = (
            select(ModelFootprint)
            .where(ModelFootprint.model_version_id == version_id)
            .order_by(ModelFootprint.target)
        )
        return list(self.s.scalars(stmt))

    # aliases -----------------------------------------------------------------------

    def aliases(self, model_id: int) -> dict[str, int]:
        stmt = select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.model_id == model_id)
        return dict(self.s.execute(stmt).all())

    def alias(self, model_id: int, alias: str) -> ModelAlias | None:
        return self.s.get(ModelAlias, (model_id, alias))

    def set_alias(self, model_id: int, alias: str, version: int, actor: str, at: int) -> None:
        row = self.alias(model_id, alias)
        if row is None:
            self.s.add(
                ModelAlias(
                    model_id=model_id, alias=alias, version=version, updated_at=at, updated_by=actor
                )
            )
        else:
            row.version, row.updated_at, row.updated_by = version, at, actor
        self.s.flush()

    def delete_alias(self, model_id: int, alias: str) -> None:
        self.s.execute(
            delete(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
        )

    def record_alias_event(self, event: AliasEvent) -> None:
        self.s.add(event)
        self.s.flush()

    def alias_events(self, model_id: int, alias: str | None = None) -> list[AliasEvent]:
        stmt = select(AliasEvent).where(AliasEvent.model_id == model_id)
        if alias is not None:
            stmt = stmt.where(AliasEvent.alias == alias)
        return list(self.s.scalars(stmt.order_by(AliasEvent.id)))
