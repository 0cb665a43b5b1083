"""Store for datasets, their versions, label changes and splits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._models import Dataset, DatasetSplit, DatasetVersion, LabelChange

__all__ = ["DatasetStore"]


class DatasetStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, **values: Any) -> Dataset:
        dataset = Dataset(**values)
        try:
            with self.s.begin_nested():
                self.s.add(dataset)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"dataset {values['name']!r} already exists") from exc
        return dataset

    def find(self, name: str, *, for_update: bool = False) -> Dataset | None:
        stmt = select(Dataset).where(Dataset.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def get(self, name: str, *, for_update: bool = False) -> Dataset:
        dataset = self.find(name, for_update=for_update)
        if dataset is None:
            raise NotFound(f"dataset {name!r} does not exist", details={"dataset": name})
        return dataset

    def get_or_add(self, name: str, **values: Any) -> Dataset:
        """The dataset, locked; created first if absent (safe against a concurrent create)."""
        dataset = self.find(name, for_update=True)
        if dataset is not None:
            return dataset
        try:
            return self.add(name=name, **values)
        except Conflict:
            return self.get(name, for_update=True)

    def page(self, offset: int, limit: int) -> list[Dataset]:
        stmt = select(Dataset).order_by(Dataset.name).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))

    # versions ----------------------------------------------------------------------

    def latest_number(self, dataset_id: int) -> int | None:
        value = self.s.scalar(
            select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset_id)
        )
        return None if value is None else int(value)

    def add_version(self, version: DatasetVersion) -> DatasetVersion:
        self.s.add(version)
        self.s.flush()
        return version

    def version(self, dataset: Dataset, number: int) -> DatasetVersion:
        row = self.s.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == number
            )
        )
        if row is None:
            raise NotFound(
                f"dataset {dataset.name!r} has no version {number}",
                details={"dataset": dataset.name, "version": number},
            )
        return row

    def by_digest(self, dataset_id: int, digest: str) -> DatasetVersion | None:
        stmt = (
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.digest == digest)
            .order_by(DatasetVersion.version)
            .limit(1)
        )
        return self.s.scalar(stmt)

    def versions(self, dataset_id: int) -> list[DatasetVersion]:
        stmt = (
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.version)
        )
        return list(self.s.scalars(stmt))

    # labels and splits ---------------------------------------------------------------

    def add_label_changes(self, changes: list[LabelChange]) -> None:
        self.s.add_all(changes)
        self.s.flush()

    def label_history(self, dataset_id: int, sample: str) -> list[LabelChange]:
        stmt = (
            select(LabelChange)
            .where(LabelChange.dataset_id == dataset_id, LabelChange.sample == sample)
            .order_by(LabelChange.id)
        )
        return list(self.s.scalars(stmt))

    def add_split(self, split: DatasetSplit) -> DatasetSplit:
        try:
            with self.s.begin_nested():
                self.s.add(split)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"version {split.version} already has a split named {split.name!r}; "
                "choose another name"
            ) from exc
        return split

    def split(self, dataset: Dataset, number: int, name: str) -> DatasetSplit:
        row = self.s.scalar(
            select(DatasetSplit).where(
                DatasetSplit.dataset_id == dataset.id,
                DatasetSplit.version == number,
                DatasetSplit.name == name,
            )
        )
        if row is None:
            raise NotFound(f"datasets:/{dataset.name}@{number} has no split {name!r}")
        return row

    def splits(self, dataset_id: int, number: int) -> list[DatasetSplit]:
        stmt = (
            select(DatasetSplit)
            .where(DatasetSplit.dataset_id == dataset_id, DatasetSplit.version == number)
            .order_by(DatasetSplit.name)
        )
        return list(self.s.scalars(stmt))
