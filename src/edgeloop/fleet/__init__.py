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
    "DeviceFleet",
    "Reconciler",
    "abort_rollout",
    "accept_device",
    "approve_rollout",
    "build_bundle",
    "checkin",
    "create_enrollment_token",
    "create_group",
    "create_release",
    "create_rollout",
    "enroll_device",
    "get_device",
    "get_group",
    "get_release",
    "get_rollout",
    "list_devices",
    "list_groups",
    "list_releases",
    "list_rollouts",
    "parse_query",
    "pause_rollout",
    "reconcile_once",
    "record_telemetry",
    "reject_device",
    "resume_rollout",
    "rollback_rollout",
    "run_fleet",
    "start_rollout",
    "verify_bundle",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._checkin": ("checkin",),
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
