"""What changed between two versions: schema, rows, labels and per-column distributions."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from edgeloop.datasets._entities import DatasetDiff
from edgeloop.datasets._service import get_profile, load_table
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.drift import jensen_shannon_distance, population_stability_index
from edgeloop.workspace import Workspace

__all__ = ["diff_versions"]


def _row_hashes(table: pa.Table, columns: list[str]) -> list[str]:
    """A stable digest per row over ``columns`` (any Arrow type, lists included)."""
    pylists = [table.column(c).to_pylist() for c in columns]
    return [
        hashlib.sha1(
            repr(tuple(col[i] for col in pylists)).encode(), usedforsecurity=False
        ).hexdigest()
        for i in range(table.num_rows)
    ]


def _row_changes(a: pa.Table, b: pa.Table, key: str | None) -> dict[str, Any]:
    shared = [c for c in a.column_names if c in b.column_names]
    if key:
        for side, table in (("first", a), ("second", b)):
            if key not in table.column_names:
                raise ValidationFailed(f"key column {key!r} is not in the {side} version")
        value_cols = [c for c in shared if c != key]
        ka = [str(v) for v in a.column(key).to_pylist()]
        kb = [str(v) for v in b.column(key).to_pylist()]
        ha = dict(zip(ka, _row_hashes(a, value_cols), strict=True))
        hb = dict(zip(kb, _row_hashes(b, value_cols), strict=True))
        added = sorted(set(hb) - set(ha))
        removed = sorted(set(ha) - set(hb))
        changed = sorted(k for k in set(ha) & set(hb) if ha[k] != hb[k])
        return {
            "by": f"key:{key}",
            "added": len(added),
            "removed": len(removed),
            "changed": len(changed),
            "unchanged": len(set(ha) & set(hb)) - len(changed),
            "samples": {"added": added[:10], "removed": removed[:10], "changed": changed[:10]},
        }
    ca: dict[str, int] = {}
    for h in _row_hashes(a, shared):
        ca[h] = ca.get(h, 0) + 1
    cb: dict[str, int] = {}
    for h in _row_hashes(b, shared):
        cb[h] = cb.get(h, 0) + 1
    n_added = sum(max(0, n - ca.get(h, 0)) for h, n in cb.items())
    n_removed = sum(max(0, n - cb.get(h, 0)) for h, n in ca.items())
    return {
        "by": "row hash",
        "added": n_added,
        "removed": n_removed,
        "changed": None,
        "unchanged": a.num_rows - n_removed,
    }


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    counts = pc.value_counts(table.column(column).cast(pa.string()).fill_null("<null>"))
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def _numeric(table: pa.Table, column: str) -> np.ndarray:
    values = table.column(column)
    if pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
        values = pc.list_flatten(values)
    arr = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    return arr[~np.isnan(arr)]


def _is_numeric(arrow_type: pa.DataType) -> bool:
    if pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type))


def diff_versions(ws: Workspace, ref_a: str, ref_b: str, key: str | None = None) -> DatasetDiff:
    """Compare two versions (of one dataset or two)."""
    va, a = load_table(ws, ref_a, allow_quarantined=True)
    vb, b = load_table(ws, ref_b, allow_quarantined=True)
    types_a = {f.name: str(f.type) for f in a.schema}
    types_b = {f.name: str(f.type) for f in b.schema}
    schema_changes = {
        "added": sorted(set(types_b) - set(types_a)),
        "removed": sorted(set(types_a) - set(types_b)),
        "changed": [
            {"column": c, "from": types_a[c], "to": types_b[c]}
            for c in sorted(set(types_a) & set(types_b))
            if types_a[c] != types_b[c]
        ],
    }
    key = (
        key
        or va.key
        or ("sample_id" if "sample_id" in types_a and "sample_id" in types_b else None)
    )
    rows = _row_changes(a, b, key)
    rows.update({"rows_a": a.num_rows, "rows_b": b.num_rows})

    labels: dict[str, dict[str, int]] = {}
    label = va.label if va.label and va.label in types_b else None
    if label:
        la, lb = _counts(a, label), _counts(b, label)
        labels = {
            k: {"a": la.get(k, 0), "b": lb.get(k, 0), "delta": lb.get(k, 0) - la.get(k, 0)}
            for k in sorted(set(la) | set(lb))
        }

    edges = get_profile(ws, va.uri).edges()
    columns: dict[str, dict[str, Any]] = {}
    for column in sorted(set(types_a) & set(types_b)):
        if column in (key, label):
            continue
        if _is_numeric(a.schema.field(column).type) and column in edges:
            cut = np.asarray(edges[column], dtype=np.float64)
            xa, xb = _numeric(a, column), _numeric(b, column)
            ha = np.bincount(np.searchsorted(cut, xa, side="right"), minlength=len(cut) + 1)
            hb = np.bincount(np.searchsorted(cut, xb, side="right"), minlength=len(cut) + 1)
            columns[column] = {
                "kind": "numeric",
                "psi": population_stability_index(ha, hb),
                "mean_a": float(xa.mean()) if xa.size else None,
                "mean_b": float(xb.mean()) if xb.size else None,
            }
        elif not _is_numeric(a.schema.field(column).type):
            ca, cb = _counts(a, column), _counts(b, column)
            cats = sorted(set(ca) | set(cb))
            ref = np.array([ca.get(c, 0) for c in cats])
            cur = np.array([cb.get(c, 0) for c in cats])
            columns[column] = {
                "kind": "categorical",
                "psi": population_stability_index(ref, cur),
                "jensen_shannon": jensen_shannon_distance(ref, cur),
                "new_values": sorted(set(cb) - set(ca))[:10],
            }
    return DatasetDiff(
        a=va.uri,
        b=vb.uri,
        schema_changes=schema_changes,
        rows=rows,
        labels=labels,
        columns=columns,
    )
