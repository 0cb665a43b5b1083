"""Tables of data collection: requests for raw samples from opted-in devices, the devices
each request chose, and the uploads they sent (rows in an artifact blob, one row per upload).

A device's consent is the ``devices.data_collection`` column (set at enrollment)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from edgeloop.store._models import Base, Json

__all__ = ["Collection", "CollectionDevice", "CollectionUpload"]


class Collection(Base):
    """A request for ``samples_per_device`` raw samples from each of the chosen devices,
    for ``dataset``; closed into a new version of it (``version``)."""

    __tablename__ = "collections"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str] = mapped_column(Text, default="")
    devices_requested: Mapped[int] = mapped_column(Integer)
    samples_per_device: Mapped[int] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    group_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tags: Mapped[Json] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    layout: Mapped[Json] = mapped_column(default=dict)
    """What devices need to build rows (columns, label, axes, constants)."""
    arrow_schema: Mapped[str] = mapped_column(Text, default="")
    """The target version's Arrow schema (base64 IPC): uploads are converted to it."""
    data_schema: Mapped[Json] = mapped_column(default=dict)
    """The dataset's schema (expectations) that uploads are validated against."""
    base_version: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    closed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (Index("ix_collections_state", "state"),)


class CollectionDevice(Base):
    """One chosen device of a collection and how far its uploads got."""

    __tablename__ = "collection_devices"
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    uploaded: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_collection_devices_device", "device_id", "done"),)


class CollectionUpload(Base):
    """One upload (``upload_id`` is the device's idempotency key): its rows as a Parquet
    blob in the artifact store."""

    __tablename__ = "collection_uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))
    upload_id: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    labelled: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint(
            "collection_id", "device_id", "upload_id", name="uq_collection_uploads_key"
        ),
    )
