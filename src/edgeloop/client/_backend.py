"""The contract both backends fulfil; one contract test suite runs over both."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

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

__all__ = ["Backend"]


class Backend(abc.ABC):
    """Everything the Python API and the CLI can ask of a workspace, local or remote."""

    # experiments and runs
    @abc.abstractmethod
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment(self, ref: int | str) -> Experiment: ...

    @abc.abstractmethod
    def list_experiments(self, cursor: str | None = None, limit: int = 100) -> Page[Experiment]: ...

    @abc.abstractmethod
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
    ) -> Run: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def set_run_status(self, run_id: str, status: str) -> Run: ...

    @abc.abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> int: ...

    @abc.abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    @abc.abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None: ...

    @abc.abstractmethod
    def upload_artifact(self, run_id: str, path: str, data: BinaryIO) -> ArtifactEntry: ...

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]: ...

    @abc.abstractmethod
    def download_artifact(self, run_id: str, path: str) -> bytes: ...

    @abc.abstractmethod
    def search_runs(
        self,
        experiments: Sequence[int | str] | int | str = (),
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        cursor: str | None = None,
    ) -> Page[Run]: ...

    # registry
    @abc.abstractmethod
    def create_model(self, name: str, description: str = "") -> RegisteredModel: ...

    @abc.abstractmethod
    def get_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def list_models(self, cursor: str | None = None, limit: int = 100) -> Page[RegisteredModel]: ...

    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        path: str = "model",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...

    @abc.abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def model_version_files(self, name: str, version: int | str) -> list[ArtifactEntry]: ...

    @abc.abstractmethod
    def download_model_file(self, name: str, version: int | str, path: str) -> bytes: ...

    @abc.abstractmethod
    def set_alias(
        self, name: str, alias: str, version: int | str, reason: str = ""
    ) -> AliasChange: ...

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str, reason: str = "") -> AliasChange: ...

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]: ...

    @abc.abstractmethod
    def resolve_model_uri(self, uri: str) -> ModelVersion: ...

    # datasets
    @abc.abstractmethod
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
        """Store the table ``data`` as the next version of ``name`` (see ``edgeloop.data.add``)."""

    @abc.abstractmethod
    def get_dataset(self, name: str) -> DatasetInfo: ...

    @abc.abstractmethod
    def list_datasets(self, cursor: str | None = None, limit: int = 100) -> Page[DatasetInfo]: ...

    @abc.abstractmethod
    def get_dataset_version(self, ref: str) -> DatasetVersionInfo: ...

    @abc.abstractmethod
    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]: ...

    @abc.abstractmethod
    def download_dataset(self, ref: str, *, allow_quarantined: bool = False) -> bytes: ...

    @abc.abstractmethod
    def get_dataset_profile(self, ref: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def accept_dataset_version(self, ref: str, note: str = "") -> DatasetVersionInfo: ...

    @abc.abstractmethod
    def get_dataset_schema(self, name: str) -> str: ...

    @abc.abstractmethod
    def set_dataset_schema(self, name: str, yaml_text: str) -> str: ...

    @abc.abstractmethod
    def set_dataset_policy(self, name: str, policy: str) -> DatasetInfo: ...

    @abc.abstractmethod
    def diff_datasets(self, a: str, b: str, key: str | None = None) -> DatasetDiff: ...

    @abc.abstractmethod
    def relabel_dataset(
        self, ref: str, changes: Mapping[str, str], reason: str
    ) -> DatasetVersionInfo: ...

    @abc.abstractmethod
    def label_history(self, name: str, sample: str) -> list[LabelChangeInfo]: ...

    @abc.abstractmethod
    def create_split(
        self, ref: str, name: str, spec: Mapping[str, Any], kind: str = "split"
    ) -> SplitInfo: ...

    @abc.abstractmethod
    def get_split(self, ref: str, name: str) -> tuple[SplitInfo, np.ndarray]: ...

    @abc.abstractmethod
    def list_splits(self, ref: str) -> list[SplitInfo]: ...

    @abc.abstractmethod
    def window_dataset(
        self,
        ref: str,
        *,
        length_ms: float,
        stride_ms: float,
        into: str | None = None,
        pad: str = "drop",
    ) -> AddResult: ...

    # pipelines
    @abc.abstractmethod
    def list_pipeline_runs(
        self, pipeline: str | None = None, limit: int = 50
    ) -> list[PipelineRunInfo]: ...

    @abc.abstractmethod
    def get_pipeline_run(self, run_id: str) -> PipelineRunInfo: ...

    @abc.abstractmethod
    def trigger_pipeline(
        self, pipeline: str, kind: str = "manual", detail: Mapping[str, Any] | None = None
    ) -> QueueEntry: ...

    @abc.abstractmethod
    def pipeline_queue(self) -> list[QueueEntry]: ...

    # tokens
    @abc.abstractmethod
    def create_token(self, name: str, role: str) -> tuple[TokenInfo, str]: ...

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenInfo]: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> TokenInfo: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
