"""What data collection returns and what devices send; the same types travel over the REST
API (docs/fleet-protocol.md, "Data collection")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COLLECTION_STATES",
    "MAX_ROWS_PER_UPLOAD",
    "CollectionDeviceInfo",
    "CollectionInfo",
    "CollectionRequest",
    "CollectionState",
    "SamplesUpload",
    "UploadResult",
]

CollectionState = Literal["open", "closing", "closed", "failed"]
COLLECTION_STATES: tuple[CollectionState, ...] = ("open", "closing", "closed", "failed")
MAX_ROWS_PER_UPLOAD = 500
"""Rows one ``POST /device/samples`` may carry (more: 413)."""


class CollectionDeviceInfo(BaseModel):
    device: str
    uploaded: int = 0
    done: bool = False
    updated_at: int


class CollectionInfo(BaseModel):
    """A request for raw samples from opted-in devices, and what became of it."""

    id: str
    dataset: str
    state: CollectionState
    state_reason: str = ""
    devices_requested: int
    samples_per_device: int
    model: str | None = None
    group: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    base_version: int
    """The dataset's latest version when the request was made (uploads follow its layout)."""
    deadline: int
    created_at: int
    created_by: str
    closed_at: int | None = None
    closed_by: str | None = None
    version: int | None = None
    """The dataset version the uploads became (None before the close, or without rows)."""
    parent: str | None = None
    rows: int = 0
    """Rows uploaded so far (after the close: rows added to the new version)."""
    chosen: int = 0
    done: int = 0
    """Chosen devices, and those that finished uploading."""
    devices: list[CollectionDeviceInfo] | None = None
    """Per-device progress (``get_collection`` only)."""

    @property
    def uri(self) -> str | None:
        return None if self.version is None else f"datasets:/{self.dataset}@{self.version}"


class CollectionRequest(BaseModel):
    """What a chosen device finds in its check-in answer (``collection``)."""

    id: str
    dataset: str
    samples: int
    """Rows the server still wants from this device."""
    uploaded: int = 0
    upload_url: str
    max_rows_per_upload: int = MAX_ROWS_PER_UPLOAD
    deadline: int
    layout: dict[str, Any] = Field(default_factory=dict)
    """How to build a row: ``columns`` (name, type), ``label``, ``id_column``, ``inputs``
    (``{"kind": "axes" | "features", "columns": [...], "length": n}``) and ``values``
    (constants for the other columns)."""


class _DeviceBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SamplesUpload(_DeviceBody):
    """``POST /device/samples``: rows for a collection addressed to the device."""

    collection: str = Field(min_length=1, max_length=32)
    upload_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    """The device's idempotency key: the same key again is answered without adding rows."""
    rows: list[dict[str, Any]] = Field(default_factory=list)
    done: bool = False
    """The device has nothing more to send for this collection."""


class UploadResult(BaseModel):
    collection: str
    accepted: int
    """Rows this upload added (0 for a repeated upload id)."""
    duplicate: bool = False
    uploaded: int
    """Rows of this device in the collection so far."""
    remaining: int
    done: bool
