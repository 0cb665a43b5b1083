"""The store of data collection: requests, their chosen devices, uploads, and the devices'
consent (``devices.data_collection``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._collection_models import Collection, CollectionDevice, CollectionUpload
from edgeloop.store._models import Device, Release

__all__ = ["CollectionStore"]


class CollectionStore:
    """Collections (with their devices and uploads) over one session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # requests ----------------------------------------------------------------------------

    def add(self, row: Collection, device_ids: Sequence[str], at: int) -> Collection:
        try:
            with self.s.begin_nested():
                self.s.add(row)
                self.s.flush()
                self.s.add_all(
                    CollectionDevice(
                        collection_id=row.id, device_id=d, uploaded=0, done=False, updated_at=at
                    )
                    for d in device_ids
                )
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"collection {row.id} exists already; request again") from exc
        return row

    def find(self, collection_id: str, *, for_update: bool = False) -> Collection | None:
        stmt = select(Collection).where(Collection.id == collection_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def get(self, collection_id: str, *, for_update: bool = False) -> Collection:
        row = self.find(collection_id, for_update=for_update)
        if row is None:
            raise NotFound(
                f"collection {collection_id!r} does not exist",
                details={"collection": collection_id},
            )
        return row

    def page(
        self,
        offset: int,
        limit: int,
        *,
        state: str | None = None,
        dataset: str | None = None,
    ) -> list[Collection]:
        stmt = select(Collection)
        if state:
            stmt = stmt.where(Collection.state == state)
        if dataset:
            stmt = stmt.where(Collection.dataset == dataset)
        stmt = stmt.order_by(Collection.created_at.desc(), Collection.id)
        return list(self.s.scalars(stmt.offset(offset).limit(limit)))

    def ids_in_states(self, states: Sequence[str]) -> list[str]:
        stmt = select(Collection.id).where(Collection.state.in_(list(states)))
        return list(self.s.scalars(stmt.order_by(Collection.created_at, Collection.id)))

    # devices -----------------------------------------------------------------------------

    def devices(self, collection_id: str) -> list[CollectionDevice]:
        stmt = (
            select(CollectionDevice)
            .where(CollectionDevice.collection_id == collection_id)
            .order_by(CollectionDevice.device_id)
        )
        return list(self.s.scalars(stmt))

    def device(
        self, collection_id: str, device_id: str, *, for_update: bool = False
    ) -> CollectionDevice | None:
        stmt = select(CollectionDevice).where(
            CollectionDevice.collection_id == collection_id,
            CollectionDevice.device_id == device_id,
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def pending_for_device(self, device_id: str) -> tuple[Collection, CollectionDevice] | None:
        """The oldest open collection that waits for this device's samples (if the device
        still consents)."""
        stmt = (
            select(Collection, CollectionDevice)
            .join(CollectionDevice, CollectionDevice.collection_id == Collection.id)
            .join(Device, Device.id == CollectionDevice.device_id)
            .where(
                CollectionDevice.device_id == device_id,
                CollectionDevice.done.is_(False),
                Collection.state == "open",
                Device.data_collection.is_(True),
            )
            .order_by(Collection.created_at, Collection.id)
            .limit(1)
        )
        found = self.s.execute(stmt).first()
        return None if found is None else (found[0], found[1])

    def counts(self, collection_id: str) -> tuple[int, int]:
        """(chosen devices, devices done)."""
        stmt = select(func.count(), func.count().filter(CollectionDevice.done.is_(True))).where(
            CollectionDevice.collection_id == collection_id
        )
        total, done = self.s.execute(stmt).one()
        return int(total), int(done or 0)

    # uploads -----------------------------------------------------------------------------

    def upload(self, collection_id: str, device_id: str, upload_id: str) -> CollectionUpload | None:
        stmt = select(CollectionUpload).where(
            CollectionUpload.collection_id == collection_id,
            CollectionUpload.device_id == device_id,
            CollectionUpload.upload_id == upload_id,
        )
        return self.s.scalar(stmt)

    def add_upload(self, row: CollectionUpload) -> CollectionUpload:
        self.s.add(row)
        self.s.flush()
        return row

    def uploads(self, collection_id: str) -> list[CollectionUpload]:
        """In a fixed order (device, then arrival), so a close always builds the same table."""
        stmt = (
            select(CollectionUpload)
            .where(CollectionUpload.collection_id == collection_id)
            .order_by(CollectionUpload.device_id, CollectionUpload.id)
        )
        return list(self.s.scalars(stmt))

    # consent -----------------------------------------------------------------------------

    def opted_in(self) -> list[tuple[str, str, dict[str, object], str | None]]:
        """(id, target, attributes, current release) of the accepted, opted-in devices."""
        stmt = (
            select(Device.id, Device.target, Device.attributes, Device.current_release)
            .where(Device.status == "accepted", Device.data_collection.is_(True))
            .order_by(Device.id)
        )
        return [(r[0], r[1], dict(r[2] or {}), r[3]) for r in self.s.execute(stmt)]

    def release_models(self, release_ids: Sequence[str]) -> dict[str, str]:
        """release id -> model name."""
        ids = sorted(set(release_ids))
        if not ids:
            return {}
        stmt = select(Release.id, Release.model).where(Release.id.in_(ids))
        return {r[0]: r[1] for r in self.s.execute(stmt)}

    def set_consent(self, device_id: str, value: bool) -> None:
        self.s.execute(update(Device).where(Device.id == device_id).values(data_collection=value))
