"""``LocalBackend``: the services, called in-process on a local workspace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from edgeloop import datasets, governance, pipelines, registry, tracking
from edgeloop.client._backend import Backend
from edgeloop.config import Settings
from edgeloop.datasets import (
    AddResult,
    DatasetDiff,
    DatasetInfo,
    DatasetVersionInfo,
    LabelChangeInfo,
    SplitInfo,
)
from edgeloop.governance import TokenInfo
from edgeloop.pages import Page
from edgeloop.pipelines import PipelineRunInfo, QueueEntry
from edgeloop.registry import AliasChange, ModelVersion, RegisteredModel
from edgeloop.tracking import ArtifactEntry, Experiment, Metric, MetricPoint, Run, RunInput
from edgeloop.workspace import Workspace

__all__ = ["LocalBackend"]


class LocalBackend(Backend):
    """Calls the service layer directly on ``settings``' workspace (``./.edgeloop`` by default)."""

    def __init__(
        self, settings: Settings | None = None, *, workspace: Workspace | None = None
    ) -> None:
        self.ws = workspace or Workspace.open(settings)
        self._owns = workspace is None

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        return tracking.create_experiment(self.ws, name, description, tags)

    def get_experiment(self, ref: int | str) -> Experiment:
        return tracking.get_experiment(self.ws, ref)

    def list_experiments(self, cursor: str | None = None, limit: int = 100) -> Page[Experiment]:
        return tracking.list_experiments(self.ws, cursor, limit)

    def create_run(
        self,
        experiment: int | str,
        name: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        inputs: Sequence[RunInput] = (),
        parent_run_id: str | None = None,
    ) -> Run:
        return tracking.create_run(
            self.ws,
            experiment,
            name,
            params=params,
            tags=tags,
            lineage=lineage,
            inputs=inputs,
            parent_run_id=parent_run_id,
        )

    def get_run(self, run_id: str) -> Run:
        return tracking.get_run(self.ws, run_id)

    def set_run_status(self, run_id: str, status: str) -> Run:
        return tracking.set_run_status(self.ws, run_id, status)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        tracking.log_params(self.ws, run_id, params)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        tracking.set_tags(self.ws, run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        tracking.delete_tag(self.ws, run_id, key)

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> int:
        return tracking.log_metrics(self.ws, run_id, points)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return tracking.metric_history(self.ws, run_id, key)

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        tracking.log_inputs(self.ws, run_id, inputs)

    def upload_artifact(self, run_id: str, path: str, data: BinaryIO) -> ArtifactEntry:
        return tracking.put_artifact(self.ws, run_id, path, data)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        return tracking.list_artifacts(self.ws, run_id, prefix)

    def download_artifact(self, run_id: str, path: str) -> bytes:
        entry = tracking.read_artifact(self.ws, run_id, path)
        return self.ws.artifacts.get_bytes(entry.digest)

    def search_runs(
        self,
        experiments: Sequence[int | str] | int | str = (),
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        cursor: str | None = None,
    ) -> Page[Run]:
        return tracking.search_runs(self.ws, experiments, filter, order_by, max_results, cursor)

    def create_model(self, name: str, description: str = "") -> RegisteredModel:
        return registry.create_model(self.ws, name, description)

    def get_model(self, name: str) -> RegisteredModel:
        return registry.get_model(self.ws, name)

    def list_models(self, cursor: str | None = None, limit: int = 100) -> Page[RegisteredModel]:
        return registry.list_models(self.ws, cursor, limit)

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        path: str = "model",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        return registry.create_model_version(
            self.ws, name, run_id=run_id, path=path, description=description, tags=tags
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return registry.get_model_version(self.ws, name, version)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return registry.list_model_versions(self.ws, name)

    def model_version_files(self, name: str, version: int | str) -> list[ArtifactEntry]:
        return registry.model_version_files(self.ws, name, version)

    def download_model_file(self, name: str, version: int | str, path: str) -> bytes:
        entry = registry.model_version_file(self.ws, name, version, path)
        return self.ws.artifacts.get_bytes(entry.digest)

    def set_alias(self, name: str, alias: str, version: int | str, reason: str = "") -> AliasChange:
        return registry.set_alias(self.ws, name, alias, version, reason)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> AliasChange:
        return registry.delete_alias(self.ws, name, alias, reason)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return registry.alias_history(self.ws, name, alias)

    def resolve_model_uri(self, uri: str) -> ModelVersion:
        return registry.resolve_model_uri(self.ws, uri)

    def add_dataset_version(
        self,
        name: str,
        data: pa.Table,
        *,
        label: str | None = None,
        key: str | None = None,
        sensor: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        policy: str | None = None,
    ) -> AddResult:
        return datasets.add_version(
            self.ws, name, data, label=label, key=key, sensor=sensor, source=source, policy=policy
        )

    def get_dataset(self, name: str) -> DatasetInfo:
        return datasets.get_dataset(self.ws, name)

    def list_datasets(self, cursor: str | None = None, limit: int = 100) -> Page[DatasetInfo]:
        return datasets.list_datasets(self.ws, cursor, limit)

    def get_dataset_version(self, ref: str) -> DatasetVersionInfo:
        return datasets.get_version(self.ws, ref)

    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]:
        return datasets.list_versions(self.ws, name)

    def download_dataset(self, ref: str, *, allow_quarantined: bool = False) -> bytes:
        version = datasets.get_version(self.ws, ref)
        datasets.check_loadable(version, allow_quarantined=allow_quarantined)
        return self.ws.artifacts.get_bytes(version.digest)

    def get_dataset_profile(self, ref: str) -> dict[str, Any]:
        return datasets.get_profile(self.ws, ref).to_dict()

    def accept_dataset_version(self, ref: str, note: str = "") -> DatasetVersionInfo:
        return datasets.accept_version(self.ws, ref, note)

    def get_dataset_schema(self, name: str) -> str:
        return datasets.get_schema(self.ws, name)

    def set_dataset_schema(self, name: str, yaml_text: str) -> str:
        datasets.set_schema(self.ws, name, yaml_text)
        return datasets.get_schema(self.ws, name)

    def set_dataset_policy(self, name: str, policy: str) -> DatasetInfo:
        return datasets.set_policy(self.ws, name, policy)

    def diff_datasets(self, a: str, b: str, key: str | None = None) -> DatasetDiff:
        return datasets.diff_versions(self.ws, a, b, key)

    def relabel_dataset(
        self, ref: str, changes: Mapping[str, str], reason: str
    ) -> DatasetVersionInfo:
        return datasets.relabel(self.ws, ref, changes, reason)

    def label_history(self, name: str, sample: str) -> list[LabelChangeInfo]:
        return datasets.label_history(self.ws, name, sample)

    def create_split(
        self, ref: str, name: str, spec: Mapping[str, Any], kind: str = "split"
    ) -> SplitInfo:
        return datasets.create_split(self.ws, ref, name, dict(spec), kind=kind)

    def get_split(self, ref: str, name: str) -> tuple[SplitInfo, np.ndarray]:
        return datasets.get_split(self.ws, ref, name)

    def list_splits(self, ref: str) -> list[SplitInfo]:
        return datasets.list_splits(self.ws, ref)

    def window_dataset(
        self,
        ref: str,
        *,
        length_ms: float,
        stride_ms: float,
        into: str | None = None,
        pad: str = "drop",
    ) -> AddResult:
        return datasets.window(
            self.ws, ref, length_ms=length_ms, stride_ms=stride_ms, into=into, pad=pad
        )

    def list_pipeline_runs(
        self, pipeline: str | None = None, limit: int = 50
    ) -> list[PipelineRunInfo]:
        return pipelines.list_pipeline_runs(self.ws, pipeline, limit)

    def get_pipeline_run(self, run_id: str) -> PipelineRunInfo:
        return pipelines.get_pipeline_run(self.ws, run_id)

    def trigger_pipeline(
        self, pipeline: str, kind: str = "manual", detail: Mapping[str, Any] | None = None
    ) -> QueueEntry:
        return pipelines.enqueue(self.ws, pipeline, kind, detail)

    def pipeline_queue(self) -> list[QueueEntry]:
        return pipelines.queued(self.ws)

    def create_token(self, name: str, role: str) -> tuple[TokenInfo, str]:
        return governance.create_token(self.ws, name, role)

    def list_tokens(self) -> list[TokenInfo]:
        return governance.list_tokens(self.ws)

    def revoke_token(self, token_id: str) -> TokenInfo:
        return governance.revoke_token(self.ws, token_id)

    def close(self) -> None:
        if self._owns:
            self.ws.close()
