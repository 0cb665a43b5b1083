"""Persistence: SQLAlchemy tables, per-aggregate stores, sessions and migrations.

All SQL in edgeloop lives in this package. One backend (SQLAlchemy) runs on SQLite (the
embedded default, WAL mode) and PostgreSQL (psycopg 3); one contract suite runs on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.store._alert_models import Alert, AlertAction, AlertRule
    from edgeloop.store._alerts import AlertStore
    from edgeloop.store._collection import CollectionStore
    from edgeloop.store._collection_models import Collection, CollectionDevice, CollectionUpload
    from edgeloop.store._database import Database
    from edgeloop.store._datasets import DatasetStore
    from edgeloop.store._filter import (
        And,
        Comparison,
        Node,
        Not,
        Or,
        OrderBy,
        parse_filter,
        parse_order_by,
    )
    from edgeloop.store._fleet import (
        DeviceBrief,
        DeviceStore,
        ReleaseStore,
        RolloutStore,
        UpdateRow,
    )
    from edgeloop.store._models import (
        AliasEvent,
        Base,
        Dataset,
        DatasetSplit,
        DatasetVersion,
        Device,
        DeviceGroup,
        DeviceTelemetry,
        DeviceUpdate,
        EnrollmentToken,
        Experiment,
        LabelChange,
        Lease,
        Model,
        ModelAlias,
        ModelFootprint,
        ModelVersion,
        ModelVersionFile,
        PipelineRun,
        QueuedRun,
        Release,
        Rollout,
        RolloutEvent,
        Run,
        RunArtifact,
        RunInput,
        StepRun,
        Token,
        TriggerState,
    )
    from edgeloop.store._monitor_models import (
        Monitor,
        MonitorReport,
        Prediction,
        PredictionReview,
    )
    from edgeloop.store._monitoring import MonitoringStore, WindowRow
    from edgeloop.store._monitoring_models import MonitoringLayout, MonitoringWindow
    from edgeloop.store._monitors import MonitorStore, PredictionStore
    from edgeloop.store._pipelines import PipelineStore
    from edgeloop.store._registry import ModelStore
    from edgeloop.store._tokens import TokenStore
    from edgeloop.store._tracking import ExperimentStore, MetricRow, RunDetails, RunStore
    from edgeloop.store._triggers import TriggerStore

__all__ = [
    "Alert",
    "AlertAction",
    "AlertRule",
    "AlertStore",
    "AliasEvent",
    "And",
    "Base",
    "Collection",
    "CollectionDevice",
    "CollectionStore",
    "CollectionUpload",
    "Comparison",
    "Database",
    "Dataset",
    "DatasetSplit",
    "DatasetStore",
    "DatasetVersion",
    "Device",
    "DeviceBrief",
    "DeviceGroup",
    "DeviceStore",
    "DeviceTelemetry",
    "DeviceUpdate",
    "EnrollmentToken",
    "Experiment",
    "ExperimentStore",
    "LabelChange",
    "Lease",
    "MetricRow",
    "Model",
    "ModelAlias",
    "ModelFootprint",
    "ModelStore",
    "ModelVersion",
    "ModelVersionFile",
    "Monitor",
    "MonitorReport",
    "MonitorStore",
    "MonitoringLayout",
    "MonitoringStore",
    "MonitoringWindow",
    "Node",
    "Not",
    "Or",
    "OrderBy",
    "PipelineRun",
    "PipelineStore",
    "Prediction",
    "PredictionReview",
    "PredictionStore",
    "QueuedRun",
    "Release",
    "ReleaseStore",
    "Rollout",
    "RolloutEvent",
    "RolloutStore",
    "Run",
    "RunArtifact",
    "RunDetails",
    "RunInput",
    "RunStore",
    "StepRun",
    "Token",
    "TokenStore",
    "TriggerState",
    "TriggerStore",
    "UpdateRow",
    "WindowRow",
    "parse_filter",
    "parse_order_by",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._alert_models": ("Alert", "AlertAction", "AlertRule"),
        "._alerts": ("AlertStore",),
        "._collection": ("CollectionStore",),
        "._collection_models": ("Collection", "CollectionDevice", "CollectionUpload"),
        "._database": ("Database",),
        "._datasets": ("DatasetStore",),
        "._fleet": ("DeviceBrief", "DeviceStore", "ReleaseStore", "RolloutStore", "UpdateRow"),
        "._filter": (
            "And",
            "Comparison",
            "Node",
            "Not",
            "Or",
            "OrderBy",
            "parse_filter",
            "parse_order_by",
        ),
        "._models": (
            "AliasEvent",
            "Base",
            "Dataset",
            "DatasetSplit",
            "DatasetVersion",
            "Device",
            "DeviceGroup",
            "DeviceTelemetry",
            "DeviceUpdate",
            "EnrollmentToken",
            "Experiment",
            "LabelChange",
            "Lease",
            "Model",
            "ModelAlias",
            "ModelFootprint",
            "ModelVersion",
            "ModelVersionFile",
            "PipelineRun",
            "QueuedRun",
            "Release",
            "Rollout",
            "RolloutEvent",
            "Run",
            "RunArtifact",
            "RunInput",
            "StepRun",
            "Token",
            "TriggerState",
        ),
        "._monitor_models": ("Monitor", "MonitorReport", "Prediction", "PredictionReview"),
        "._monitors": ("MonitorStore", "PredictionStore"),
        "._monitoring": ("MonitoringStore", "WindowRow"),
        "._monitoring_models": ("MonitoringLayout", "MonitoringWindow"),
        "._pipelines": ("PipelineStore",),
        "._registry": ("ModelStore",),
        "._tokens": ("TokenStore",),
        "._tracking": ("ExperimentStore", "MetricRow", "RunDetails", "RunStore"),
        "._triggers": ("TriggerStore",),
    },
)
