"""Request bodies of the REST API (responses are the services' own types)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgeloop.tracking import MetricPoint, RunInput


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentIn(_Body):
    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class RunIn(_Body):
    experiment: str = "Default"
    name: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    inputs: list[RunInput] = Field(default_factory=list)
    parent_run_id: str | None = None


class RunPatch(_Body):
    status: str


class ParamsIn(_Body):
    params: dict[str, str]


class TagsIn(_Body):
    tags: dict[str, str]


class MetricsIn(_Body):
    points: list[MetricPoint] = Field(max_length=10_000)


class InputsIn(_Body):
    inputs: list[RunInput]


class SearchIn(_Body):
    experiments: list[str] = Field(default_factory=list)
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    max_results: int = 1000
    cursor: str | None = None


class ModelIn(_Body):
    name: str
    description: str = ""


class VersionIn(_Body):
    run_id: str
    path: str = "model"
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class AliasIn(_Body):
    version: str
    reason: str = ""


class TokenIn(_Body):
    name: str
    role: str
