"""Model registry: models, numbered versions, aliases (with history) and model formats."""

from __future__ import annotations

from edgeloop.registry._entities import AliasChange, ModelVersion, RegisteredModel, VersionStatus
from edgeloop.registry._formats import (
    MODEL_META,
    Predictor,
    infer_signature,
    load_predictor,
    save_sklearn,
)
from edgeloop.registry._service import (
    alias_history,
    attach_files,
    create_model,
    create_model_version,
    delete_alias,
    get_model,
    get_model_version,
    list_model_versions,
    list_models,
    model_version_file,
    model_version_files,
    parse_model_uri,
    parse_version,
    resolve_model_uri,
    set_alias,
)

__all__ = [
    "MODEL_META",
    "AliasChange",
    "ModelVersion",
    "Predictor",
    "RegisteredModel",
    "VersionStatus",
    "alias_history",
    "attach_files",
    "create_model",
    "create_model_version",
    "delete_alias",
    "get_model",
    "get_model_version",
    "infer_signature",
    "list_model_versions",
    "list_models",
    "load_predictor",
    "model_version_file",
    "model_version_files",
    "parse_model_uri",
    "parse_version",
    "resolve_model_uri",
    "save_sklearn",
    "set_alias",
]
