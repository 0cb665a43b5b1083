"""What the dataset service returns; the same types travel over the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "AddResult",
    "DatasetDiff",
    "DatasetInfo",
    "DatasetVersionInfo",
    "LabelChangeInfo",
    "SplitInfo",
    "VersionStatus",
]

VersionStatus = Literal["ready", "quarantined"]


class DatasetInfo(BaseModel):
    name: str
    description: str = ""
    policy: Literal["reject", "quarantine"] = "reject"
    latest_version: int | None = None
    created_at: int
    updated_at: int
    created_by: str


class DatasetVersionInfo(BaseModel):
    name: str
    version: int
    status: VersionStatus
    digest: str
    size: int
    rows: int
    label: str | None = None
    key: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    sensor: dict[str, Any] = Field(default_factory=dict)
    profile_digest: str
    parent: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    transformation: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    review: dict[str, Any] = Field(default_factory=dict)
    created_at: int
    created_by: str

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}@{self.version}"


class AddResult(BaseModel):
    """The version an add produced, or the existing one holding identical data."""

    version: DatasetVersionInfo
    created: bool


class LabelChangeInfo(BaseModel):
    dataset: str
    version: int
    sample: str
    old_label: str | None
    new_label: str
    actor: str
    at: int
    reason: str = ""


class SplitInfo(BaseModel):
    dataset: str
    version: int
    name: str
    kind: Literal["split", "folds"]
    spec: dict[str, Any]
    digest: str
    counts: dict[str, int]
    created_at: int
    created_by: str


class DatasetDiff(BaseModel):
    a: str
    b: str
    schema_changes: dict[str, Any]
    rows: dict[str, Any]
    labels: dict[str, dict[str, int]]
    columns: dict[str, dict[str, Any]]
