"""What the registry returns; the same types travel over the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["AliasChange", "ModelVersion", "RegisteredModel", "VersionStatus"]

VersionStatus = Literal["pending", "ready", "failed"]


class RegisteredModel(BaseModel):
    name: str
    description: str = ""
    created_at: int
    updated_at: int
    created_by: str
    latest_version: int | None = None
    aliases: dict[str, int] = Field(default_factory=dict)


class ModelVersion(BaseModel):
    name: str
    version: int
    status: VersionStatus
    source_run_id: str | None = None
    source_path: str = ""
    flavor: str = ""
    signature: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    created_at: int
    created_by: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class AliasChange(BaseModel):
    """One move of an alias: ``from_version`` None means it was created, ``to_version`` None
    that it was deleted."""

    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: int
    reason: str = ""
