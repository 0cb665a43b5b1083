"""A device's check-in: heartbeat, inventory, update report and assignment poll in one call.

The report moves the device's update forward (``assigned → downloading → downloaded →
installing → verifying → healthy``, or ``failed`` and then ``rolled-back`` when the device
switched back). Reports that arrive late or out of order never move a state backwards. A
device that was sent back (``rollback``) reaches ``rolled-back`` when it reports its previous
release healthy.

The assignment is the newest unfinished update of the device: a rollback, or a forward
update of a rollout that is running, waiting for approval of its next wave, or completed.
It is sent at every check-in until the update is finished; the agent recognises the update
it is already working on.
"""

from __future__ import annotations

from typing import Any

from edgeloop.fleet._devices import JITTER_S, POLL_INTERVAL_S
from edgeloop.fleet._entities import (
    UPDATE_STATES,
    Assignment,
    CheckinReport,
    CheckinResult,
    UpdateReport,
)
from edgeloop.fleet._machine import FINAL
from edgeloop.fleet._releases import MAX_BUNDLE_BYTES
from edgeloop.store import Device, DeviceStore, DeviceUpdate, RolloutStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["API_PREFIX", "assignment_for", "checkin"]

API_PREFIX = "/api/v1"
_RANK: dict[str, int] = {state: i for i, state in enumerate(UPDATE_STATES)}
_DELIVER_FORWARD = ("running", "awaiting-approval", "completed")


def _assignment(rollout: str, release: str, rollback: bool) -> Assignment:
    base = f"{API_PREFIX}/device/releases/{release}"
    return Assignment(
        rollout=rollout,
        release=release,
        rollback=rollback,
        manifest_url=f"{base}/manifest.json",
        signature_url=f"{base}/manifest.sig",
        files_url=f"{base}/files/",
        max_bundle_bytes=MAX_BUNDLE_BYTES,
    )


def _next_state(du: DeviceUpdate, report: UpdateReport) -> tuple[str, str] | None:
    """The state and reason the report moves ``du`` to, or None to leave it as it is."""
    state, reason = report.state, report.reason
    if du.rollback:
        if report.release != du.previous_release:
            return None  # about the release it is being taken off: stale
        if state == "healthy":
            state, reason = "rolled-back", f"back on {du.previous_release}"
        elif state in ("failed", "rolled-back"):
            state, reason = "failed", f"rollback to {du.previous_release} failed: {reason}"
    elif report.release != du.release_id:
        return None
    if du.state in FINAL:
        if du.state == "failed" and state == "rolled-back" and not du.rollback:
            return state, reason or du.reason
        return None
    if state not in FINAL and _RANK[state] < _RANK[du.state]:
        return None  # an older progress report arriving late
    return state, reason


def _apply(store: RolloutStore, device: Device, report: UpdateReport, now: int) -> None:
    du = store.update_for(report.rollout, device.id, for_update=True)
    if du is None:
        return
    moved = _next_state(du, report)
    if moved is None:
        return
    same_failure = du.state == "failed" and moved[0] == "rolled-back"
    du.state, du.reason = moved
    du.bytes_downloaded = max(du.bytes_downloaded, report.bytes_downloaded)
    du.bytes_saved = max(du.bytes_saved, report.bytes_saved)
    if not same_failure:  # switching back after a failure is not a new failure
        du.updated_at = now


def assignment_for(store: RolloutStore, device_id: str) -> Assignment | None:
    for du, rollout_state in store.device_updates(device_id, limit=50):
        if du.state in FINAL:
            continue
        if du.rollback and du.previous_release:
            return _assignment(du.rollout_id, du.previous_release, True)
        if not du.rollback and rollout_state in _DELIVER_FORWARD:
            return _assignment(du.rollout_id, du.release_id, False)
    return None


def _inventory(device: Device, report: CheckinReport) -> None:
    slots: dict[str, Any] = {
        name: None if slot is None else slot.model_dump() for name, slot in report.slots.items()
    }
    device.slots = slots
    device.active_slot = report.active
    active = slots.get(report.active) if report.active else None
    device.current_release = active.get("release") if isinstance(active, dict) else None
    if report.firmware is not None:
        device.firmware = report.firmware


def checkin(
    ws: Workspace, device_id: str, report: CheckinReport, *, now: int | None = None
) -> CheckinResult:
    """Record a device's check-in and answer with its assignment (if any)."""
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        device = DeviceStore(s).get(device_id, for_update=True)
        device.last_seen = max(device.last_seen or 0, at)
        _inventory(device, report)
        store = RolloutStore(s)
        if report.update is not None:
            health = dict(device.health or {})
            health["update"] = {
                "rollout": report.update.rollout,
                "release": report.update.release,
                "state": report.update.state,
                "reason": report.update.reason,
                "at": at,
            }
            device.health = health
            _apply(store, device, report.update, at)
        assignment = assignment_for(store, device_id)
    return CheckinResult(poll_interval_s=POLL_INTERVAL_S, jitter_s=JITTER_S, assignment=assignment)
