"""The Python API for datasets: ``edgeloop.data.add("vibration", ["recordings/"])``.

Files are read and normalised here, on the caller's side (CSV, Parquet, JSON lines, or
directories of sensor recordings), then sent to the workspace as canonical Parquet, where they
are validated, profiled and stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from edgeloop.client._fluent import active_run, get_backend, log_input
from edgeloop.datasets import (
    AddResult,
    DatasetDiff,
    DatasetInfo,
    DatasetProfile,
    DatasetVersionInfo,
    LabelChangeInfo,
    SplitInfo,
    parse_label_from,
    read_parquet_bytes,
    read_paths,
)
from edgeloop.errors import ValidationFailed
from edgeloop.pages import Page

__all__ = [
    "accept",
    "add",
    "diff",
    "folds",
    "get",
    "get_split",
    "label_history",
    "list_datasets",
    "load",
    "profile",
    "read_changes",
    "relabel",
    "schema",
    "set_policy",
    "set_schema",
    "split",
    "versions",
    "window",
]


def add(
    name: str,
    paths: Sequence[str | Path] | str | Path,
    *,
    label_from: str | None = None,
    key: str | None = None,
    policy: str | None = None,
    sample_rate: float | None = None,
) -> AddResult:
    """Add files as the next version of ``name``; identical data returns the existing version.

    ``label_from``: ``column:NAME``, ``folder`` (sensor recordings in one folder per label) or
    ``file:labels.csv`` (columns ``file,label``). ``policy``: ``reject`` (default) or
    ``quarantine`` for data that breaks the dataset's expectations.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    result = read_paths(items, label_from=parse_label_from(label_from), sample_rate=sample_rate)
    sensor = None
    if result.sensor is not None:
        sensor = {
            "sample_rate": result.sensor.sample_rate,
            "axes": list(result.sensor.axes),
            "length_min": result.sensor.length_min,
            "length_max": result.sensor.length_max,
        }
    source = {"paths": [str(Path(p).resolve()) for p in items], "files": len(result.files)}
    return get_backend().add_dataset_version(
        name, result.table, label=result.label, key=key, sensor=sensor, source=source, policy=policy
    )


def get(ref: str) -> DatasetVersionInfo:
    """A version by reference: ``datasets:/name@4``, ``datasets:/name@latest`` or ``name@4``."""
    return get_backend().get_dataset_version(ref)


def versions(name: str) -> list[DatasetVersionInfo]:
    return get_backend().list_dataset_versions(name)


def list_datasets(cursor: str | None = None, limit: int = 100) -> Page[DatasetInfo]:
    return get_backend().list_datasets(cursor, limit)


def load(ref: str, *, allow_quarantined: bool = False) -> pa.Table:
    """The version's rows as an Arrow table (``.to_pandas()`` for a DataFrame).

    Inside a run, the version is recorded as one of the run's inputs.
    """
    backend = get_backend()
    version = backend.get_dataset_version(ref)
    table = read_parquet_bytes(
        backend.download_dataset(version.uri, allow_quarantined=allow_quarantined)
    )
    if active_run() is not None:
        log_input(version.uri, kind="dataset", digest=version.digest)
    return table


def profile(ref: str) -> DatasetProfile:
    return DatasetProfile.from_dict(get_backend().get_dataset_profile(ref))


def diff(a: str, b: str, *, key: str | None = None) -> DatasetDiff:
    return get_backend().diff_datasets(a, b, key)


def read_changes(path: str | Path) -> dict[str, str]:
    """Label corrections from a CSV: a sample column (``sample``, ``sample_id``, ``key`` or
    the dataset's key) and a ``label`` (or ``new_label``) column."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"cannot read label changes {source}: {exc}") from exc
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValidationFailed(f"{source} has no rows; expected columns sample,label")
    columns = list(rows[0])
    label_col = next((c for c in ("label", "new_label") if c in columns), None)
    sample_col = next((c for c in columns if c != label_col), None)
    if label_col is None or sample_col is None:
        raise ValidationFailed(
            f"{source} needs a sample column and a label column (label or new_label); "
            f"it has {', '.join(columns)}"
        )
    return {row[sample_col]: row[label_col] for row in rows}


def relabel(
    ref: str, changes: Mapping[str, str] | str | Path, *, reason: str
) -> DatasetVersionInfo:
    """A new version with corrected labels; who changed which label and why is recorded."""
    mapping = changes if isinstance(changes, Mapping) else read_changes(changes)
    return get_backend().relabel_dataset(ref, dict(mapping), reason)


def label_history(name: str, sample: str) -> list[LabelChangeInfo]:
    return get_backend().label_history(name, sample)


def accept(ref: str, note: str = "") -> DatasetVersionInfo:
    """Accept a quarantined version so pipelines may use it."""
    return get_backend().accept_dataset_version(ref, note)


def schema(name: str) -> str:
    """The dataset's schema and expectations as YAML."""
    return get_backend().get_dataset_schema(name)


def set_schema(name: str, yaml_text: str) -> str:
    return get_backend().set_dataset_schema(name, yaml_text)


def set_policy(name: str, policy: str) -> DatasetInfo:
    return get_backend().set_dataset_policy(name, policy)


def split(
    ref: str,
    name: str = "default",
    *,
    method: str = "random",
    test: float = 0.2,
    validation: float = 0.0,
    seed: int = 0,
    label: str | None = None,
    group: str | None = None,
) -> SplitInfo:
    """Record a deterministic train/val/test split: random, stratified by label, or grouped
    (no group — subject, device, session — on both sides)."""
    spec: dict[str, Any] = {"method": method, "test": test, "validation": validation, "seed": seed}
    spec.update({k: v for k, v in (("label", label), ("group", group)) if v})
    return get_backend().create_split(ref, name, spec, "split")


def folds(
    ref: str,
    name: str = "folds",
    *,
    method: str = "kfold",
    k: int = 5,
    seed: int = 0,
    label: str | None = None,
    group: str | None = None,
) -> SplitInfo:
    """Record k folds: ``kfold``, ``stratified`` or ``group`` (group k-fold)."""
    spec: dict[str, Any] = {"method": method, "k": k, "seed": seed}
    spec.update({k_: v for k_, v in (("label", label), ("group", group)) if v})
    return get_backend().create_split(ref, name, spec, "folds")


def get_split(ref: str, name: str) -> tuple[SplitInfo, np.ndarray]:
    """The recorded split and its per-row assignment, in the version's row order."""
    return get_backend().get_split(ref, name)


def window(
    ref: str, *, length_ms: float, stride_ms: float, into: str | None = None, pad: str = "drop"
) -> AddResult:
    """Cut sensor recordings into fixed windows, stored as a derived dataset version."""
    return get_backend().window_dataset(
        ref, length_ms=length_ms, stride_ms=stride_ms, into=into, pad=pad
    )
