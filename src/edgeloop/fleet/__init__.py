"""Fleet: devices, signed bundles, releases, rollouts with waves and gates, the reconciler,
and a simulated fleet.

Names load on first use: a device importing :mod:`edgeloop.fleet.bundle` pays for numpy and
``cryptography`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.fleet._checkin import checkin
    from edgeloop.fleet._collection import (
        disable_data_collection,
        get_collection,
        list_collections,
        request_collection,
        upload_samples,
    )
    from edgeloop.fleet._collection_close import close_collection, close_due_collections
    from edgeloop.fleet._collection_entities import CollectionInfo
    from edgeloop.fleet._devices import (
        accept_device,
        create_enrollment_token,
        enroll_device,
        get_device,
        list_devices,
        reject_device,
    )
    from edgeloop.fleet._groups import create_group, get_group, list_groups, parse_query
    from edgeloop.fleet._reconciler import Reconciler, reconcile_once
    from edgeloop.fleet._releases import create_release, get_release, list_releases
    from edgeloop.fleet._rollouts import (
        abort_rollout,
        approve_rollout,
        create_rollout,
        get_rollout,
        list_rollouts,
        pause_rollout,
        resume_rollout,
        rollback_rollout,
        start_rollout,
    )
    from edgeloop.fleet._simulator import DeviceFleet, run_fleet
    from edgeloop.fleet._telemetry import record_telemetry
    from edgeloop.fleet.bundle import Bundle, BundleRejected, build_bundle, verify_bundle

__all__ = [
    "Bundle",
    "BundleRejected",
    "CollectionInfo",
    "DeviceFleet",
    "Reconciler",
    "abort_rollout",
    "accept_device",
    "approve_rollout",
    "build_bundle",
    "checkin",
    "close_collection",
    "close_due_collections",
    "create_enrollment_token",
    "create_group",
    "create_release",
    "create_rollout",
    "disable_data_collection",
    "enroll_device",
    "get_collection",
    "get_device",
    "get_group",
    "get_release",
    "get_rollout",
    "list_collections",
    "list_devices",
    "list_groups",
    "list_releases",
    "list_rollouts",
    "parse_query",
    "pause_rollout",
    "reconcile_once",
    "record_telemetry",
    "reject_device",
    "request_collection",
    "resume_rollout",
    "rollback_rollout",
    "run_fleet",
    "start_rollout",
    "upload_samples",
    "verify_bundle",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._checkin": ("checkin",),
        "._collection": (
            "disable_data_collection",
            "get_collection",
            "list_collections",
            "request_collection",
            "upload_samples",
        ),
        "._collection_close": ("close_collection", "close_due_collections"),
        "._collection_entities": ("CollectionInfo",),
        "._devices": (
            "accept_device",
            "create_enrollment_token",
            "enroll_device",
            "get_device",
            "list_devices",
            "reject_device",
        ),
        "._groups": ("create_group", "get_group", "list_groups", "parse_query"),
        "._reconciler": ("Reconciler", "reconcile_once"),
        "._releases": ("create_release", "get_release", "list_releases"),
        "._rollouts": (
            "abort_rollout",
            "approve_rollout",
            "create_rollout",
            "get_rollout",
            "list_rollouts",
            "pause_rollout",
            "resume_rollout",
            "rollback_rollout",
            "start_rollout",
        ),
        "._simulator": ("DeviceFleet", "run_fleet"),
        "._telemetry": ("record_telemetry",),
        ".bundle": ("Bundle", "BundleRejected", "build_bundle", "verify_bundle"),
    },
)
