"""Datasets: immutable, content-addressed versions of tabular and sensor data, validated
against their expectations and profiled with mergeable sketches.

Versions are referenced as ``datasets:/name@4`` or ``datasets:/name@latest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.datasets._canonical import canonical_parquet, read_parquet_bytes
    from edgeloop.datasets._derive import create_split, get_split, list_splits, window
    from edgeloop.datasets._diff import diff_versions
    from edgeloop.datasets._entities import (
        AddResult,
        DatasetDiff,
        DatasetInfo,
        DatasetVersionInfo,
        LabelChangeInfo,
        SplitInfo,
        VersionStatus,
    )
    from edgeloop.datasets._profile import ColumnProfile, DatasetProfile
    from edgeloop.datasets._profiler import profile_parquet, profile_table, reference_edges
    from edgeloop.datasets._readers import (
        LabelFrom,
        ReadResult,
        SensorInfo,
        parse_label_from,
        read_paths,
    )
    from edgeloop.datasets._refs import format_ref, parse_ref
    from edgeloop.datasets._schema import (
        DatasetSchema,
        infer_schema,
        schema_from_yaml,
        schema_to_yaml,
    )
    from edgeloop.datasets._service import (
        accept_version,
        add_version,
        check_loadable,
        get_dataset,
        get_profile,
        get_schema,
        get_version,
        label_history,
        list_datasets,
        list_versions,
        load_table,
        relabel,
        set_policy,
        set_schema,
    )
    from edgeloop.datasets._splits import FoldSpec, SplitSpec, assign_folds, assign_split
    from edgeloop.datasets._validate import RuleResult, ValidationReport, validate_table
    from edgeloop.datasets._windows import WindowSpec, make_windows

__all__ = [
    "AddResult",
    "ColumnProfile",
    "DatasetDiff",
    "DatasetInfo",
    "DatasetProfile",
    "DatasetSchema",
    "DatasetVersionInfo",
    "FoldSpec",
    "LabelChangeInfo",
    "LabelFrom",
    "ReadResult",
    "RuleResult",
    "SensorInfo",
    "SplitInfo",
    "SplitSpec",
    "ValidationReport",
    "VersionStatus",
    "WindowSpec",
    "accept_version",
    "add_version",
    "assign_folds",
    "assign_split",
    "canonical_parquet",
    "check_loadable",
    "create_split",
    "diff_versions",
    "format_ref",
    "get_dataset",
    "get_profile",
    "get_schema",
    "get_split",
    "get_version",
    "infer_schema",
    "label_history",
    "list_datasets",
    "list_splits",
    "list_versions",
    "load_table",
    "make_windows",
    "parse_label_from",
    "parse_ref",
    "profile_parquet",
    "profile_table",
    "read_parquet_bytes",
    "read_paths",
    "reference_edges",
    "relabel",
    "schema_from_yaml",
    "schema_to_yaml",
    "set_policy",
    "set_schema",
    "validate_table",
    "window",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._canonical": ("canonical_parquet", "read_parquet_bytes"),
        "._derive": ("create_split", "get_split", "list_splits", "window"),
        "._diff": ("diff_versions",),
        "._entities": (
            "AddResult",
            "DatasetDiff",
            "DatasetInfo",
            "DatasetVersionInfo",
            "LabelChangeInfo",
            "SplitInfo",
            "VersionStatus",
        ),
        "._profile": ("ColumnProfile", "DatasetProfile"),
        "._profiler": ("profile_parquet", "profile_table", "reference_edges"),
        "._readers": ("LabelFrom", "ReadResult", "SensorInfo", "parse_label_from", "read_paths"),
        "._refs": ("format_ref", "parse_ref"),
        "._schema": ("DatasetSchema", "infer_schema", "schema_from_yaml", "schema_to_yaml"),
        "._service": (
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
        ),
        "._splits": ("FoldSpec", "SplitSpec", "assign_folds", "assign_split"),
        "._validate": ("RuleResult", "ValidationReport", "validate_table"),
        "._windows": ("WindowSpec", "make_windows"),
    },
)
