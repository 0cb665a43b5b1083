"""Derived data: recorded splits and folds of a version, and sensor windows as new versions."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from edgeloop.datasets._entities import AddResult, SplitInfo
from edgeloop.datasets._refs import format_ref
from edgeloop.datasets._service import _resolve, add_version, load_table
from edgeloop.datasets._splits import FoldSpec, SplitSpec, assign_folds, assign_split
from edgeloop.datasets._windows import WindowSpec, make_windows
from edgeloop.errors import ValidationFailed
from edgeloop.store import DatasetSplit, DatasetStore
from edgeloop.tracking import check_name
from edgeloop.workspace import Workspace, now_ms

__all__ = ["create_split", "get_split", "list_splits", "window"]

_SPLIT_FIELDS = {"method", "test", "validation", "seed", "label", "group"}
_FOLD_FIELDS = {"method", "k", "seed", "label", "group"}


def _split_info(name: str, row: DatasetSplit) -> SplitInfo:
    return SplitInfo(
        dataset=name,
        version=row.version,
        name=row.name,
        kind=row.kind,
        spec=dict(row.spec),
        digest=row.digest,
        counts={k: int(v) for k, v in row.counts.items()},
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _spec(kind: str, spec: dict[str, Any], label: str | None) -> SplitSpec | FoldSpec:
    allowed = _SPLIT_FIELDS if kind == "split" else _FOLD_FIELDS
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValidationFailed(
            f"unknown {kind} option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    values = dict(spec)
    if values.get("method") == "stratified" and not values.get("label"):
        values["label"] = label
    try:
        return SplitSpec(**values) if kind == "split" else FoldSpec(**values)
    except TypeError as exc:
        raise ValidationFailed(f"{kind} options are not valid: {exc}") from exc


def create_split(
    ws: Workspace, ref: str, name: str, spec: dict[str, Any], *, kind: str = "split"
) -> SplitInfo:
    """Assign every row of the version to train/val/test (``kind="split"``) or to a fold
    (``kind="folds"``), deterministically for the seed, and record it under ``name``."""
    check_name("split", name)
    if kind not in ("split", "folds"):
        raise ValidationFailed(f"kind must be split or folds, got {kind!r}")
    version, table = load_table(ws, ref, allow_quarantined=True)
    parsed = _spec(kind, spec, version.label)
    assignment: np.ndarray = (
        assign_split(table, parsed)
        if isinstance(parsed, SplitSpec)
        else assign_folds(table, parsed)
    )
    buffer = io.BytesIO()
    np.save(buffer, assignment, allow_pickle=False)
    blob = ws.artifacts.put_bytes(buffer.getvalue())
    values, counts = np.unique(assignment, return_counts=True)
    with ws.db.write() as s:
        store = DatasetStore(s)
        dataset, row = _resolve(store, version.uri)
        split = store.add_split(
            DatasetSplit(
                dataset_id=dataset.id,
                version=row.version,
                name=name,
                kind=kind,
                spec={**spec, **{k: v for k, v in vars(parsed).items() if v is not None}},
                digest=blob.digest,
                counts={
                    str(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)
                },
                created_at=now_ms(),
                created_by=ws.principal.name,
            )
        )
        return _split_info(dataset.name, split)


def get_split(ws: Workspace, ref: str, name: str) -> tuple[SplitInfo, np.ndarray]:
    """The recorded split and its per-row assignment (in the version's row order)."""
    with ws.db.read() as s:
        store = DatasetStore(s)
        dataset, row = _resolve(store, ref)
        info = _split_info(dataset.name, store.split(dataset, row.version, name))
    assignment = np.load(io.BytesIO(ws.artifacts.get_bytes(info.digest)), allow_pickle=False)
    return info, assignment


def list_splits(ws: Workspace, ref: str) -> list[SplitInfo]:
    with ws.db.read() as s:
        store = DatasetStore(s)
        dataset, row = _resolve(store, ref)
        return [_split_info(dataset.name, r) for r in store.splits(dataset.id, row.version)]


def window(
    ws: Workspace,
    ref: str,
    *,
    length_ms: float,
    stride_ms: float,
    into: str | None = None,
    pad: str = "drop",
) -> AddResult:
    """Cut a sensor version's recordings into fixed windows, stored as a derived version."""
    version, table = load_table(ws, ref)
    sensor = version.sensor
    if not sensor.get("axes") or not sensor.get("sample_rate"):
        raise ValidationFailed(
            f"{version.uri} is not sensor data with a known sample rate: window needs recordings"
        )
    if pad not in ("drop", "zero"):
        raise ValidationFailed("pad must be drop or zero")
    spec = WindowSpec(
        length_ms=length_ms,
        stride_ms=stride_ms,
        sample_rate=float(sensor["sample_rate"]),
        pad=pad,  # type: ignore[arg-type]
    )
    result = make_windows(table, spec, axes=sensor["axes"], label=version.label)
    target = into or f"{version.name}-windows"
    samples = round(length_ms * spec.sample_rate / 1000)
    return add_version(
        ws,
        target,
        result.table,
        label=version.label,
        key=None,
        sensor={**sensor, "length_min": samples, "length_max": samples, "window_ms": length_ms},
        source={"derived_from": format_ref(version.name, version.version)},
        parent=version.uri,
        transformation={
            "kind": "window",
            "length_ms": length_ms,
            "stride_ms": stride_ms,
            "pad": pad,
            "windows": result.windows,
            "dropped_recordings": result.dropped,
        },
    )
