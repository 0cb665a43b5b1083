"""``HttpBackend``: the same contract over the REST API of an ``edgeloop server``."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, TypeAdapter

from edgeloop.client._backend import Backend
from edgeloop.datasets import (
    AddResult,
    DatasetDiff,
    DatasetInfo,
    DatasetVersionInfo,
    LabelChangeInfo,
    SplitInfo,
    canonical_parquet,
    parse_ref,
)
from edgeloop.errors import BackendUnavailable, EdgeloopError, ValidationFailed, error_from_code
from edgeloop.governance import TokenInfo
from edgeloop.pages import Page
from edgeloop.pipelines import PipelineRunInfo, QueueEntry
from edgeloop.registry import AliasChange, ModelVersion, RegisteredModel
from edgeloop.tracking import ArtifactEntry, Experiment, Metric, MetricPoint, Run, RunInput

__all__ = ["HttpBackend"]

M = TypeVar("M", bound=BaseModel)
METRIC_CHUNK = 10_000


def _q(part: str | int) -> str:
    return quote(str(part), safe="")


def _qpath(path: str) -> str:
    return quote(path, safe="/")


class HttpBackend(Backend):
    """Talks to ``url`` (``EDGELOOP_URL``). Pass ``client`` to use another transport, e.g. a
    ``fastapi.testclient.TestClient`` that calls the app in-process."""

    def __init__(
        self,
        url: str = "",
        token: str = "",
        *,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if client is None:
            client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        client.headers.update(headers)
        self._client = client
        self._url = url or str(client.base_url)

    # transport ---------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, "/api/v1" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"cannot reach edgeloop server at {self._url}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @staticmethod
    def _error(response: httpx.Response) -> EdgeloopError:
        try:
            body = response.json()["error"]
            return error_from_code(body["code"], body["message"], body.get("details"))
        except (ValueError, KeyError, TypeError):
            return EdgeloopError(
                f"server answered HTTP {response.status_code}: {response.text[:200]}"
            )

    def _json(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._request(method, path, **kwargs).json())

    def _list(self, path: str, model: type[M], **kwargs: Any) -> list[M]:
        data = self._request("GET", path, **kwargs).json()
        return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]

    # experiments and runs ----------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return self._json("POST", "/experiments", Experiment, json=body)

    def get_experiment(self, ref: int | str) -> Experiment:
        return self._json("GET", f"/experiments/{_q(ref)}", Experiment)

    def list_experiments(self, cursor: str | None = None, limit: int = 100) -> Page[Experiment]:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._json("GET", "/experiments", Page[Experiment], params=params)

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
        body = {
            "experiment": str(experiment),
            "name": name,
            "params": {k: str(v) for k, v in (params or {}).items()},
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "lineage": dict(lineage or {}),
            "inputs": [i.model_dump() for i in inputs],
            "parent_run_id": parent_run_id,
        }
        return self._json("POST", "/runs", Run, json=body)

    def get_run(self, run_id: str) -> Run:
        return self._json("GET", f"/runs/{_q(run_id)}", Run)

    def set_run_status(self, run_id: str, status: str) -> Run:
        return self._json("PATCH", f"/runs/{_q(run_id)}", Run, json={"status": status})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        body = {"params": {k: str(v) for k, v in params.items()}}
        self._request("POST", f"/runs/{_q(run_id)}/params", json=body)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        body = {"tags": {k: str(v) for k, v in tags.items()}}
        self._request("POST", f"/runs/{_q(run_id)}/tags", json=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._request("DELETE", f"/runs/{_q(run_id)}/tags/{_qpath(key)}")

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> int:
        stored = 0
        for start in range(0, len(points), METRIC_CHUNK):
            chunk = points[start : start + METRIC_CHUNK]
            body = {"points": [p.model_dump() for p in chunk]}
            response = self._request("POST", f"/runs/{_q(run_id)}/metrics", json=body)
            stored += int(response.json()["stored"])
        return stored

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._list(f"/runs/{_q(run_id)}/metrics/{_qpath(key)}", Metric)

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        body = {"inputs": [i.model_dump() for i in inputs]}
        self._request("POST", f"/runs/{_q(run_id)}/inputs", json=body)

    def upload_artifact(self, run_id: str, path: str, data: BinaryIO) -> ArtifactEntry:
        return self._json(
            "PUT",
            f"/runs/{_q(run_id)}/artifacts/{_qpath(path)}",
            ArtifactEntry,
            content=data.read(),
            headers={"Content-Type": "application/octet-stream"},
        )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        return self._list(f"/runs/{_q(run_id)}/artifacts", ArtifactEntry, params={"prefix": prefix})

    def download_artifact(self, run_id: str, path: str) -> bytes:
        return self._request("GET", f"/runs/{_q(run_id)}/artifacts/{_qpath(path)}").content

    def search_runs(
        self,
        experiments: Sequence[int | str] | int | str = (),
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        cursor: str | None = None,
    ) -> Page[Run]:
        refs = [experiments] if isinstance(experiments, int | str) else list(experiments)
        body = {
            "experiments": [str(r) for r in refs],
            "filter": filter,
            "order_by": list(order_by or []),
            "max_results": max_results,
            "cursor": cursor,
        }
        return self._json("POST", "/runs/search", Page[Run], json=body)

    # registry ----------------------------------------------------------------------

    def create_model(self, name: str, description: str = "") -> RegisteredModel:
        body = {"name": name, "description": description}
        return self._json("POST", "/models", RegisteredModel, json=body)

    def get_model(self, name: str) -> RegisteredModel:
        return self._json("GET", f"/models/{_q(name)}", RegisteredModel)

    def list_models(self, cursor: str | None = None, limit: int = 100) -> Page[RegisteredModel]:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._json("GET", "/models", Page[RegisteredModel], params=params)

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        path: str = "model",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        body = {"run_id": run_id, "path": path, "description": description, "tags": tags or {}}
        return self._json("POST", f"/models/{_q(name)}/versions", ModelVersion, json=body)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self._json("GET", f"/models/{_q(name)}/versions/{_q(version)}", ModelVersion)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return self._list(f"/models/{_q(name)}/versions", ModelVersion)

    def model_version_files(self, name: str, version: int | str) -> list[ArtifactEntry]:
        return self._list(f"/models/{_q(name)}/versions/{_q(version)}/files", ArtifactEntry)

    def download_model_file(self, name: str, version: int | str, path: str) -> bytes:
        url = f"/models/{_q(name)}/versions/{_q(version)}/files/{_qpath(path)}"
        return self._request("GET", url).content

    def set_alias(self, name: str, alias: str, version: int | str, reason: str = "") -> AliasChange:
        body = {"version": str(version), "reason": reason}
        return self._json("PUT", f"/models/{_q(name)}/aliases/{_q(alias)}", AliasChange, json=body)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> AliasChange:
        return self._json(
            "DELETE",
            f"/models/{_q(name)}/aliases/{_q(alias)}",
            AliasChange,
            params={"reason": reason},
        )

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        params = {"alias": alias} if alias else {}
        return self._list(f"/models/{_q(name)}/alias-history", AliasChange, params=params)

    def resolve_model_uri(self, uri: str) -> ModelVersion:
        return self._json("GET", "/resolve", ModelVersion, params={"uri": uri})

    # datasets ----------------------------------------------------------------------

    @staticmethod
    def _version_path(ref: str) -> str:
        name, version = parse_ref(ref)
        return f"/datasets/{_q(name)}/versions/{'latest' if version is None else version}"

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
        params: dict[str, Any] = {
            "meta": json.dumps({"sensor": dict(sensor or {}), "source": dict(source or {})})
        }
        params.update({k: v for k, v in (("label", label), ("key", key), ("policy", policy)) if v})
        body, _digest = canonical_parquet(data)
        return self._json(
            "POST",
            f"/datasets/{_q(name)}/versions",
            AddResult,
            content=body,
            params=params,
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )

    def get_dataset(self, name: str) -> DatasetInfo:
        return self._json("GET", f"/datasets/{_q(name)}", DatasetInfo)

    def list_datasets(self, cursor: str | None = None, limit: int = 100) -> Page[DatasetInfo]:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._json("GET", "/datasets", Page[DatasetInfo], params=params)

    def get_dataset_version(self, ref: str) -> DatasetVersionInfo:
        return self._json("GET", self._version_path(ref), DatasetVersionInfo)

    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]:
        return self._list(f"/datasets/{_q(name)}/versions", DatasetVersionInfo)

    def download_dataset(self, ref: str, *, allow_quarantined: bool = False) -> bytes:
        params = {"allow_quarantined": "true"} if allow_quarantined else {}
        return self._request("GET", self._version_path(ref) + "/data", params=params).content

    def get_dataset_profile(self, ref: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", self._version_path(ref) + "/profile").json()
        return data

    def accept_dataset_version(self, ref: str, note: str = "") -> DatasetVersionInfo:
        return self._json(
            "POST", self._version_path(ref) + "/accept", DatasetVersionInfo, json={"note": note}
        )

    def get_dataset_schema(self, name: str) -> str:
        return self._request("GET", f"/datasets/{_q(name)}/schema").text

    def set_dataset_schema(self, name: str, yaml_text: str) -> str:
        return self._request(
            "PUT",
            f"/datasets/{_q(name)}/schema",
            content=yaml_text.encode(),
            headers={"Content-Type": "application/yaml"},
        ).text

    def set_dataset_policy(self, name: str, policy: str) -> DatasetInfo:
        return self._json(
            "PUT", f"/datasets/{_q(name)}/policy", DatasetInfo, json={"policy": policy}
        )

    def diff_datasets(self, a: str, b: str, key: str | None = None) -> DatasetDiff:
        return self._json("POST", "/datasets/diff", DatasetDiff, json={"a": a, "b": b, "key": key})

    def relabel_dataset(
        self, ref: str, changes: Mapping[str, str], reason: str
    ) -> DatasetVersionInfo:
        body = {"changes": dict(changes), "reason": reason}
        return self._json(
            "POST", self._version_path(ref) + "/relabel", DatasetVersionInfo, json=body
        )

    def label_history(self, name: str, sample: str) -> list[LabelChangeInfo]:
        return self._list(
            f"/datasets/{_q(name)}/label-history", LabelChangeInfo, params={"sample": sample}
        )

    def create_split(
        self, ref: str, name: str, spec: Mapping[str, Any], kind: str = "split"
    ) -> SplitInfo:
        body = {"name": name, "kind": kind, "spec": dict(spec)}
        return self._json("POST", self._version_path(ref) + "/splits", SplitInfo, json=body)

    def get_split(self, ref: str, name: str) -> tuple[SplitInfo, np.ndarray]:
        response = self._request("GET", self._version_path(ref) + f"/splits/{_q(name)}")
        info = SplitInfo.model_validate_json(response.headers["x-edgeloop-split"])
        return info, np.load(io.BytesIO(response.content), allow_pickle=False)

    def list_splits(self, ref: str) -> list[SplitInfo]:
        return self._list(self._version_path(ref) + "/splits", SplitInfo)

    def window_dataset(
        self,
        ref: str,
        *,
        length_ms: float,
        stride_ms: float,
        into: str | None = None,
        pad: str = "drop",
    ) -> AddResult:
        body = {"length_ms": length_ms, "stride_ms": stride_ms, "into": into, "pad": pad}
        return self._json("POST", self._version_path(ref) + "/windows", AddResult, json=body)

    # pipelines ---------------------------------------------------------------------

    def list_pipeline_runs(
        self, pipeline: str | None = None, limit: int = 50
    ) -> list[PipelineRunInfo]:
        params: dict[str, Any] = {"limit": limit, **({"pipeline": pipeline} if pipeline else {})}
        return self._list("/pipelines/runs", PipelineRunInfo, params=params)

    def get_pipeline_run(self, run_id: str) -> PipelineRunInfo:
        return self._json("GET", f"/pipelines/runs/{_q(run_id)}", PipelineRunInfo)

    def trigger_pipeline(
        self, pipeline: str, kind: str = "manual", detail: Mapping[str, Any] | None = None
    ) -> QueueEntry:
        if kind == "alert":
            body: dict[str, Any] = {"pipeline": pipeline, "alert": dict(detail or {})}
            return self._json("POST", "/triggers/alert", QueueEntry, json=body)
        if kind != "manual":
            raise ValidationFailed(
                f"trigger {kind!r} is not sent over the API: use manual or alert"
            )
        return self._json(
            "POST",
            f"/pipelines/{_q(pipeline)}/trigger",
            QueueEntry,
            json={"detail": dict(detail or {})},
        )

    def pipeline_queue(self) -> list[QueueEntry]:
        return self._list("/pipelines/queue", QueueEntry)

    # tokens ------------------------------------------------------------------------

    def create_token(self, name: str, role: str) -> tuple[TokenInfo, str]:
        data = self._request("POST", "/tokens", json={"name": name, "role": role}).json()
        return TokenInfo.model_validate(data["info"]), str(data["token"])

    def list_tokens(self) -> list[TokenInfo]:
        return self._list("/tokens", TokenInfo)

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._json("DELETE", f"/tokens/{_q(token_id)}", TokenInfo)

    def close(self) -> None:
        self._client.close()
