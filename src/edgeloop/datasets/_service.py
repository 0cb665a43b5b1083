"""Datasets: immutable, content-addressed, validated and profiled versions.

Heavy work (parsing, validation, profiling) happens before the write transaction, which only
allocates the version number and records the rows, so a long add never holds the database's
write lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from edgeloop.datasets._canonical import read_parquet_bytes, write_canonical_parquet
from edgeloop.datasets._entities import (
    AddResult,
    DatasetInfo,
    DatasetVersionInfo,
    LabelChangeInfo,
)
from edgeloop.datasets._profile import DatasetProfile
from edgeloop.datasets._profiler import profile_table
from edgeloop.datasets._readers import SensorInfo
from edgeloop.datasets._refs import format_ref, parse_ref
from edgeloop.datasets._schema import DatasetSchema, infer_schema, schema_from_yaml, schema_to_yaml
from edgeloop.datasets._validate import validate_table
from edgeloop.errors import Conflict, DataRejected, ValidationFailed
from edgeloop.pages import Page, check_limit, decode_cursor, next_cursor
from edgeloop.store import Dataset, DatasetStore, DatasetVersion, LabelChange
from edgeloop.tracking import check_name
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "accept_version",
    "add_version",
    "check_loadable",
    "get_dataset",
    "get_profile",
    "get_schema",
    "get_version",
    "label_history",
    "list_datasets",
    "list_versions",
    "load_table",
    "relabel",
    "set_policy",
    "set_schema",
]

POLICIES = ("reject", "quarantine")


def _info(store: DatasetStore, row: Dataset) -> DatasetInfo:
    return DatasetInfo(
        name=row.name,
        description=row.description,
        policy=row.policy,
        latest_version=store.latest_number(row.id),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _version(name: str, row: DatasetVersion) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        name=name,
        version=row.version,
        status=row.status,
        digest=row.digest,
        size=row.size,
        rows=row.rows,
        label=row.label,
        key=row.key,
        schema=dict(row.schema or {}),
        sensor=dict(row.sensor or {}),
        profile_digest=row.profile_digest,
        parent=row.parent,
        source=dict(row.source or {}),
        transformation=dict(row.transformation or {}),
        validation=dict(row.validation or {}),
        review=dict(row.review or {}),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _sensor(sensor: Mapping[str, Any] | None) -> SensorInfo | None:
    if not sensor:
        return None
    try:
        return SensorInfo(
            sample_rate=sensor.get("sample_rate"),
            axes=tuple(sensor.get("axes") or ()),
            length_min=int(sensor.get("length_min", 0)),
            length_max=int(sensor.get("length_max", 0)),
        )
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"sensor description {dict(sensor)!r} is not valid: {exc}") from exc


def _check_policy(policy: str | None) -> str | None:
    if policy is not None and policy not in POLICIES:
        raise ValidationFailed(f"policy {policy!r} is not allowed; use reject or quarantine")
    return policy


def _resolve(store: DatasetStore, ref: str) -> tuple[Dataset, DatasetVersion]:
    name, number = parse_ref(ref)
    dataset = store.get(name)
    if number is None:
        number = store.latest_number(dataset.id)
        if number is None:
            raise ValidationFailed(f"dataset {name!r} has no versions yet")
    return dataset, store.version(dataset, number)


# adding data --------------------------------------------------------------------------


def add_version(
    ws: Workspace,
    name: str,
    data: bytes | pa.Table,
    *,
    label: str | None = None,
    key: str | None = None,
    sensor: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    policy: str | None = None,
    parent: str | None = None,
    transformation: Mapping[str, Any] | None = None,
    label_changes: list[tuple[str, str | None, str]] | None = None,
    reason: str = "",
) -> AddResult:
    """Validate, profile and store ``data`` (Parquet bytes or a table) as the next version.

    Identical data (same canonical digest) returns the existing version. Data that breaks the
    dataset's expectations raises :class:`DataRejected` under the ``reject`` policy (nothing
    is stored) and becomes a ``quarantined`` version under ``quarantine``.
    """
    check_name("dataset", name)
    _check_policy(policy)
    table = read_parquet_bytes(data) if isinstance(data, bytes) else data
    if table.num_rows == 0:
        raise ValidationFailed("the data has no rows; add at least one row")
    ws.settings.home.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=ws.settings.home, prefix=".add-", suffix=".parquet")
    os.close(fd)
    parquet = Path(tmp_name)
    try:
        # Written to a file, not held as bytes: the encoded copy never sits in memory.
        write_canonical_parquet(table, parquet)
        return _store_version(
            ws,
            name,
            table,
            parquet,
            _file_digest(parquet),
            label=label,
            key=key,
            sensor=sensor,
            source=source,
            policy=policy,
            parent=parent,
            transformation=transformation,
            label_changes=label_changes,
            reason=reason,
        )
    finally:
        parquet.unlink(missing_ok=True)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _store_version(
    ws: Workspace,
    name: str,
    table: pa.Table,
    parquet: Path,
    digest: str,
    *,
    label: str | None,
    key: str | None,
    sensor: Mapping[str, Any] | None,
    source: Mapping[str, Any] | None,
    policy: str | None,
    parent: str | None,
    transformation: Mapping[str, Any] | None,
    label_changes: list[tuple[str, str | None, str]] | None,
    reason: str,
) -> AddResult:
    sensor_info = _sensor(sensor)

    with ws.db.read() as s:
        store = DatasetStore(s)
        existing_ds = store.find(name)
        if existing_ds is not None:
            same = store.by_digest(existing_ds.id, digest)
            if same is not None:
                return AddResult(version=_version(name, same), created=False)
            schema_yaml = existing_ds.schema_yaml
            effective_policy = policy or existing_ds.policy
        else:
            schema_yaml, effective_policy = "", policy or "reject"

    schema = (
        schema_from_yaml(schema_yaml)
        if schema_yaml
        else infer_schema(table, label=label, key=key, sensor=sensor_info)
    )
    label = label or schema.label
    key = key or schema.key
    report = validate_table(table, schema, sensor=sensor_info)
    if not report.ok and effective_policy == "reject":
        raise DataRejected(
            f"dataset {name!r} rejected the data ({report.rows} rows): {report.summary()}",
            details={"report": report.model_dump(mode="json")},
        )
    status = "ready" if report.ok else "quarantined"
    profile = profile_table(table, label=label)
    profile_blob = ws.artifacts.put_bytes(_encode_profile(profile))
    blob = ws.artifacts.put_file(parquet)

    at = now_ms()
    with ws.db.write() as s:
        store = DatasetStore(s)
        dataset = store.get_or_add(
            name,
            description="",
            policy=effective_policy,
            schema_yaml="",
            created_at=at,
            updated_at=at,
            created_by=ws.principal.name,
        )
        same = store.by_digest(dataset.id, digest)
        if same is not None:
            return AddResult(version=_version(name, same), created=False)
        if not dataset.schema_yaml:
            dataset.schema_yaml = schema_to_yaml(schema)
        dataset.policy = effective_policy
        dataset.updated_at = at
        number = (store.latest_number(dataset.id) or 0) + 1
        row = store.add_version(
            DatasetVersion(
                dataset_id=dataset.id,
                version=number,
                status=status,
                digest=digest,
                size=blob.size,
                rows=table.num_rows,
                label=label,
                key=key,
                schema=schema.model_dump(mode="json"),
                sensor=dict(sensor or {}),
                profile_digest=profile_blob.digest,
                parent=parent,
                source={**dict(source or {}), "by": ws.principal.name, "at": at},
                transformation=dict(transformation or {"kind": "add"}),
                validation=report.model_dump(mode="json"),
                review={},
                created_at=at,
                created_by=ws.principal.name,
            )
        )
        if label_changes:
            store.add_label_changes(
                [
                    LabelChange(
                        dataset_id=dataset.id,
                        version=number,
                        sample=sample,
                        old_label=old,
                        new_label=new,
                        actor=ws.principal.name,
                        at=at,
                        reason=reason,
                    )
                    for sample, old, new in label_changes
                ]
            )
        return AddResult(version=_version(name, row), created=True)


def _encode_profile(profile: DatasetProfile) -> bytes:
    return zlib.compress(json.dumps(profile.to_dict(), separators=(",", ":")).encode(), 6)


def get_profile(ws: Workspace, ref: str) -> DatasetProfile:
    """The version's profile: the reference that drift monitoring compares against."""
    version = get_version(ws, ref)
    raw = ws.artifacts.get_bytes(version.profile_digest)
    return DatasetProfile.from_dict(json.loads(zlib.decompress(raw)))


# reading ------------------------------------------------------------------------------


def get_dataset(ws: Workspace, name: str) -> DatasetInfo:
    with ws.db.read() as s:
        store = DatasetStore(s)
        return _info(store, store.get(name))


def list_datasets(ws: Workspace, cursor: str | None = None, limit: int = 100) -> Page[DatasetInfo]:
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        store = DatasetStore(s)
        rows = store.page(offset, limit + 1)
        items = [_info(store, r) for r in rows[:limit]]
    return Page[DatasetInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def get_version(ws: Workspace, ref: str) -> DatasetVersionInfo:
    with ws.db.read() as s:
        dataset, row = _resolve(DatasetStore(s), ref)
        return _version(dataset.name, row)


def list_versions(ws: Workspace, name: str) -> list[DatasetVersionInfo]:
    with ws.db.read() as s:
        store = DatasetStore(s)
        dataset = store.get(name)
        return [_version(name, r) for r in store.versions(dataset.id)]


def load_table(
    ws: Workspace, ref: str, *, allow_quarantined: bool = False
) -> tuple[DatasetVersionInfo, pa.Table]:
    """The version's data. Quarantined versions are refused until someone accepts them."""
    version = get_version(ws, ref)
    check_loadable(version, allow_quarantined=allow_quarantined)
    return version, read_parquet_bytes(ws.artifacts.get_bytes(version.digest))


def check_loadable(version: DatasetVersionInfo, *, allow_quarantined: bool = False) -> None:
    """Refuse a quarantined version (pipelines and loads) unless explicitly allowed."""
    if version.status == "quarantined" and not allow_quarantined:
        raise Conflict(
            f"{version.uri} is quarantined: it failed validation "
            f"({len(version.validation.get('results', []))} rule(s)). Review it, then "
            f"'edgeloop data accept {version.uri}'",
            details={"status": version.status},
        )


def accept_version(ws: Workspace, ref: str, note: str = "") -> DatasetVersionInfo:
    """Accept a quarantined version so pipelines may use it; who and why are recorded."""
    with ws.db.write() as s:
        dataset, row = _resolve(DatasetStore(s), ref)
        if row.status != "quarantined":
            raise Conflict(
                f"{format_ref(dataset.name, row.version)} is {row.status}, not quarantined"
            )
        row.status = "ready"
        row.review = {"accepted_by": ws.principal.name, "accepted_at": now_ms(), "note": note}
        s.flush()
        return _version(dataset.name, row)


# schema and policy --------------------------------------------------------------------


def get_schema(ws: Workspace, name: str) -> str:
    """The dataset's schema and expectations as YAML (inferred at the first add)."""
    with ws.db.read() as s:
        dataset = DatasetStore(s).get(name)
        if not dataset.schema_yaml:
            raise ValidationFailed(f"dataset {name!r} has no schema yet: add data first")
        return dataset.schema_yaml


def set_schema(ws: Workspace, name: str, yaml_text: str) -> DatasetSchema:
    """Replace the expectations new versions are validated against."""
    schema = schema_from_yaml(yaml_text)
    with ws.db.write() as s:
        dataset = DatasetStore(s).get(name, for_update=True)
        dataset.schema_yaml = schema_to_yaml(schema)
        dataset.policy = schema.policy
        dataset.updated_at = now_ms()
    return schema


def set_policy(ws: Workspace, name: str, policy: str) -> DatasetInfo:
    _check_policy(policy)
    with ws.db.write() as s:
        store = DatasetStore(s)
        dataset = store.get(name, for_update=True)
        dataset.policy = policy
        if dataset.schema_yaml:
            schema = schema_from_yaml(dataset.schema_yaml).model_copy(update={"policy": policy})
            dataset.schema_yaml = schema_to_yaml(schema)
        dataset.updated_at = now_ms()
        return _info(store, dataset)


# labels -------------------------------------------------------------------------------


def _sample_column(version: DatasetVersionInfo, table: pa.Table) -> str:
    for candidate in (version.key, "sample_id"):
        if candidate and candidate in table.column_names:
            return candidate
    raise ValidationFailed(
        f"{version.uri} has no key column to identify samples; add the data with --key COLUMN"
    )


def relabel(ws: Workspace, ref: str, changes: Mapping[str, str], reason: str) -> DatasetVersionInfo:
    """A new version with the labels of the given samples changed; each change is recorded."""
    if not reason.strip():
        raise ValidationFailed("say why the labels change: --reason is required")
    if not changes:
        raise ValidationFailed("no label changes given")
    version, table = load_table(ws, ref, allow_quarantined=True)
    if not version.label:
        raise ValidationFailed(f"{version.uri} has no label column to relabel")
    sample_col = _sample_column(version, table)
    samples = [str(v) for v in table.column(sample_col).to_pylist()]
    index = {s: i for i, s in enumerate(samples)}
    unknown = [s for s in changes if s not in index]
    if unknown:
        raise ValidationFailed(
            f"{len(unknown)} sample(s) are not in {version.uri}: {', '.join(unknown[:10])}",
            details={"unknown": unknown[:100]},
        )
    labels = table.column(version.label).to_pylist()
    recorded: list[tuple[str, str | None, str]] = []
    for sample, new in changes.items():
        old = labels[index[sample]]
        if old != new:
            recorded.append((sample, None if old is None else str(old), str(new)))
            labels[index[sample]] = new
    if not recorded:
        raise ValidationFailed("every given label equals the current one: nothing changes")
    column = pa.array(labels, type=table.schema.field(version.label).type)
    new_table = table.set_column(table.column_names.index(version.label), version.label, column)
    result = add_version(
        ws,
        version.name,
        new_table,
        label=version.label,
        key=version.key,
        sensor=version.sensor,
        source={"relabel_of": version.uri},
        parent=version.uri,
        transformation={"kind": "relabel", "changes": len(recorded), "reason": reason},
        label_changes=recorded,
        reason=reason,
    )
    if not result.created:
        raise Conflict(f"these labels are already those of {result.version.uri}")
    return result.version


def label_history(ws: Workspace, name: str, sample: str) -> list[LabelChangeInfo]:
    with ws.db.read() as s:
        store = DatasetStore(s)
        dataset = store.get(name)
        return [
            LabelChangeInfo(
                dataset=name,
                version=c.version,
                sample=c.sample,
                old_label=c.old_label,
                new_label=c.new_label,
                actor=c.actor,
                at=c.at,
                reason=c.reason,
            )
            for c in store.label_history(dataset.id, sample)
        ]
