"""SQLAlchemy tables. Times are epoch milliseconds (BigInteger) on every dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = dict[str, Any]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {Json: JSON}


class Experiment(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    parent_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    lineage: Mapped[Json] = mapped_column(default=dict)
    __table_args__ = (Index("ix_runs_experiment_start", "experiment_id", "start_time"),)


class Param(Base):
    __tablename__ = "params"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("ix_params_key_value", "key", "run_id"),)


class Tag(Base):
    __tablename__ = "tags"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Metric(Base):
    """Every logged point; ``LatestMetric`` keeps the newest per run and key for search."""

    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)


class LatestMetric(Base):
    __tablename__ = "latest_metrics"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value"),)


class RunArtifact(Base):
    __tablename__ = "run_artifacts"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class RunInput(Base):
    """Lineage: what a run consumed (dataset versions, other artifacts), by reference."""

    __tablename__ = "run_inputs"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), default="")


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    source_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_path: Mapped[str] = mapped_column(String(1024), default="")
    flavor: Mapped[str] = mapped_column(String(64), default="")
    signature: Mapped[Json] = mapped_column(default=dict)
    metrics: Mapped[Json] = mapped_column(default=dict)
    tags: Mapped[Json] = mapped_column(default=dict)
    lineage: Mapped[Json] = mapped_column(default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_number"),)


class ModelVersionFile(Base):
    __tablename__ = "model_version_files"
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class ModelFootprint(Base):
    """The footprint of a model version on one target (``edgeloop.edge.Footprint`` as JSON);
    measuring again replaces it."""

    __tablename__ = "model_footprints"
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    footprint: Mapped[Json] = mapped_column(default=dict)
    measured_at: Mapped[int] = mapped_column(BigInteger)
    measured_by: Mapped[str] = mapped_column(String(256))


class ModelAlias(Base):
    __tablename__ = "model_aliases"
    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(256))


class AliasEvent(Base):
    """Append-only history of alias moves: who moved which alias from which version to which."""

    __tablename__ = "alias_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(128))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(256))
    at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_alias_events_model_alias", "model_id", "alias", "id"),)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[str] = mapped_column(String(16), default="reject")
    schema_yaml: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))


class DatasetVersion(Base):
    """An immutable version: a normalised Parquet blob, its schema, profile and provenance."""

    __tablename__ = "dataset_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str | None] = mapped_column(String(250), nullable=True)
    key: Mapped[str | None] = mapped_column(String(250), nullable=True)
    schema: Mapped[Json] = mapped_column(default=dict)
    sensor: Mapped[Json] = mapped_column(default=dict)
    profile_digest: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    source: Mapped[Json] = mapped_column(default=dict)
    transformation: Mapped[Json] = mapped_column(default=dict)
    validation: Mapped[Json] = mapped_column(default=dict)
    review: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
        Index("ix_dataset_versions_digest", "dataset_id", "digest"),
    )


class LabelChange(Base):
    """Who changed which sample's label, in which version, and why (append-only)."""

    __tablename__ = "label_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    sample: Mapped[str] = mapped_column(String(512))
    old_label: Mapped[str | None] = mapped_column(String(250), nullable=True)
    new_label: Mapped[str] = mapped_column(String(250))
    actor: Mapped[str] = mapped_column(String(256))
    at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_label_changes_sample", "dataset_id", "sample", "id"),)


class DatasetSplit(Base):
    """A recorded split or fold assignment of one version; the assignment is a blob."""

    __tablename__ = "dataset_splits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[Json] = mapped_column(default=dict)
    digest: Mapped[str] = mapped_column(String(64))
    counts: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", "name", name="uq_dataset_splits_name"),
    )


class PipelineRun(Base):
    """One execution of a pipeline: why it ran (triggers), with what, and how it ended."""

    __tablename__ = "pipeline_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[Json] = mapped_column(default=dict)
    reasons: Mapped[Json] = mapped_column(default=dict)
    lineage: Mapped[Json] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    resumed_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    __table_args__ = (Index("ix_pipeline_runs_pipeline_started", "pipeline", "started_at"),)


class StepRun(Base):
    """One step of a pipeline run; ``cache_key`` finds earlier identical work."""

    __tablename__ = "step_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    cache_key: Mapped[str] = mapped_column(String(64), default="")
    inputs: Mapped[Json] = mapped_column(default=dict)
    outputs: Mapped[Json] = mapped_column(default=dict)
    logs_digest: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "name", name="uq_step_runs_name"),
        Index("ix_step_runs_cache_key", "cache_key", "status"),
    )


class QueuedRun(Base):
    """At most one queued run per pipeline: concurrent triggers coalesce into it."""

    __tablename__ = "pipeline_queue"
    pipeline: Mapped[str] = mapped_column(String(256), primary_key=True)
    reasons: Mapped[Json] = mapped_column(default=dict)
    queued_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Lease(Base):
    """A named lease (e.g. the scheduler's), held by one process until it expires."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[int] = mapped_column(BigInteger)


class TriggerState(Base):
    """What a trigger last saw, per pipeline (e.g. the last schedule tick that fired)."""

    __tablename__ = "trigger_state"
    pipeline: Mapped[str] = mapped_column(String(256), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# ---- fleet ------------------------------------------------------------------------------------


class Device(Base):
    """An enrolled device: its key, status, attributes (target, firmware, site, tags), the
    hash of its device token, and what it last reported (slots, active slot, health)."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(String(64))
    attributes: Mapped[Json] = mapped_column(default=dict)
    firmware: Mapped[str] = mapped_column(String(64), default="")
    token_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_signed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The device-signed timestamp of the last token collection: older ones are refused."""
    slots: Mapped[Json] = mapped_column(default=dict)
    active_slot: Mapped[str | None] = mapped_column(String(8), nullable=True)
    current_release: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_seen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    health: Mapped[Json] = mapped_column(default=dict)
    enrolled_at: Mapped[int] = mapped_column(BigInteger)
    enrolled_by: Mapped[str] = mapped_column(String(256))
    accepted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    accepted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    data_collection: Mapped[bool] = mapped_column(Boolean, default=False)
    """Opted in to sending raw samples (at enrollment; an admin may turn it off, not on)."""
    __table_args__ = (
        Index("ix_devices_token_id", "token_id"),
        Index("ix_devices_status_target", "status", "target"),
    )


class EnrollmentToken(Base):
    """A pre-shared enrollment token (``ele_<id>_<secret>``; only the hash is kept)."""

    __tablename__ = "enrollment_tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DeviceGroup(Base):
    """A static list of device ids or a tag query (``target=rpi4 and site=plant-3``)."""

    __tablename__ = "device_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    members: Mapped[list[Any]] = mapped_column(JSON, default=list)
    query: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))


class Release(Base):
    """A signed bundle of one model version for one target; the manifest and the files are
    content-addressed blobs (``files``: path -> {digest, size})."""

    __tablename__ = "releases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(8))
    manifest_digest: Mapped[str] = mapped_column(String(64))
    manifest_size: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(128))
    files: Mapped[Json] = mapped_column(default=dict)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    __table_args__ = (
        UniqueConstraint("model", "model_version", "target", name="uq_releases_version_target"),
    )


class Rollout(Base):
    """A release moving through waves of a group's devices, with its gates and policy."""

    __tablename__ = "rollouts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"))
    group_name: Mapped[str] = mapped_column(String(128))
    waves: Mapped[list[Any]] = mapped_column(JSON, default=list)
    bake_ms: Mapped[int] = mapped_column(BigInteger)
    max_failure: Mapped[float] = mapped_column(Float)
    min_success: Mapped[float] = mapped_column(Float)
    health: Mapped[list[Any]] = mapped_column(JSON, default=list)
    on_failure: Mapped[str] = mapped_column(String(16))
    approve_each_wave: Mapped[bool] = mapped_column(Boolean, default=False)
    offline_timeout_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(24))
    state_reason: Mapped[str] = mapped_column(Text, default="")
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    wave_started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resumed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_rollouts_state", "state"),)


class DeviceUpdate(Base):
    """One device in one rollout: the wave that chose it, the release it was on before, and
    how far it got. ``rollback`` means it is sent back to ``previous_release``."""

    __tablename__ = "device_updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    wave: Mapped[int] = mapped_column(Integer)
    release_id: Mapped[str] = mapped_column(String(32))
    previous_release: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_saved: Mapped[int] = mapped_column(BigInteger, default=0)
    assigned_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("rollout_id", "device_id", name="uq_device_updates_device"),
        Index("ix_device_updates_device_state", "device_id", "state"),
    )


class RolloutEvent(Base):
    """Append-only: every transition of a rollout, who or what caused it, why, and the
    gate evidence."""

    __tablename__ = "rollout_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(BigInteger)
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    wave: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[Json] = mapped_column(default=dict)
    __table_args__ = (Index("ix_rollout_events_rollout", "rollout_id", "id"),)


class DeviceTelemetry(Base):
    """One closed telemetry window of one device: counts and the latency histogram."""

    __tablename__ = "device_telemetry"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    window_start: Mapped[int] = mapped_column(BigInteger)
    window_end: Mapped[int] = mapped_column(BigInteger)
    release_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    inference_count: Mapped[int] = mapped_column(BigInteger)
    error_count: Mapped[int] = mapped_column(BigInteger)
    dropped_windows: Mapped[int] = mapped_column(Integer, default=0)
    latency: Mapped[Json] = mapped_column(default=dict)
    latency_p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    sketches: Mapped[Json | None] = mapped_column(nullable=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint(
            "device_id", "window_start", "window_end", name="uq_device_telemetry_window"
        ),
        Index("ix_device_telemetry_release_end", "release_id", "window_end"),
    )
