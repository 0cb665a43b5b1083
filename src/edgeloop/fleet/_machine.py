"""The rollout state machine: transitions, wave assignment and the gates.

Every function here runs inside the caller's write transaction, on a rollout row the caller
has locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
writers), so a transition and everything it implies (the devices a wave assigns, the
rollback of every device, the event that records it) commit together or not at all. Two
reconcilers, or a reconciler and an operator, cannot both act on one state: the second
waits for the lock and then sees the new state.

States::

    draft → awaiting-approval → running (wave i) → … → completed
              ↑    running ↔ paused          any active state → cancelled | rolled-back
              └─ (approve each wave)          completed, cancelled → rolled-back

Waves are cumulative percentages of the group's online devices (those of the release's
target). Devices are taken in the order of ``sha256("{rollout}:{device}")``, each at most
once (a unique key on (rollout, device)), skipping devices that another active rollout has
not finished with. Devices that stay offline past the rollout's offline timeout before they
finish leave the denominator of the gates.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.fleet._groups import group_devices
from edgeloop.fleet._telemetry import health_figures
from edgeloop.store import (
    DeviceBrief,
    DeviceStore,
    Release,
    ReleaseStore,
    Rollout,
    RolloutEvent,
    RolloutStore,
    UpdateRow,
)

__all__ = [
    "ACTIVE",
    "FINAL",
    "TERMINAL",
    "advance",
    "assign",
    "can_transition",
    "device_order",
    "evaluate",
    "is_offline",
    "on_breach",
    "refresh_offline",
    "start_wave",
    "step",
    "transition",
    "wave_size",
]

ACTIVE = ("awaiting-approval", "running", "paused")
"""Rollout states that still move."""
TERMINAL = ("completed", "rolled-back", "cancelled")
FINAL = ("healthy", "failed", "rolled-back")
"""Device update states a device does not leave on its own."""
_EPS = 1e-9
_ALLOWED: dict[str, tuple[str, ...]] = {
    "draft": ("awaiting-approval", "running", "cancelled"),
    "awaiting-approval": ("running", "paused", "cancelled", "rolled-back"),
    "running": ("running", "awaiting-approval", "paused", "completed", "cancelled", "rolled-back"),
    "paused": ("running", "awaiting-approval", "cancelled", "rolled-back"),
    "completed": ("rolled-back",),
    "cancelled": ("rolled-back",),
    "rolled-back": (),
}


def device_order(rollout_id: str, device_id: str) -> str:
    """The stable key that orders a rollout's devices into waves."""
    return hashlib.sha256(f"{rollout_id}:{device_id}".encode()).hexdigest()


def wave_size(percent: float, devices: int) -> int:
    """Devices a cumulative ``percent`` wave covers: at least one, rounded up."""
    if devices <= 0:
        return 0
    return min(devices, max(1, math.ceil(round(percent * devices / 100.0, 9))))


def is_offline(last_seen: int | None, enrolled_at: int, now: int, timeout_ms: int) -> bool:
    return (last_seen if last_seen is not None else enrolled_at) < now - timeout_ms


def transition(
    s: Session,
    rollout: Rollout,
    to_state: str,
    *,
    actor: str,
    reason: str,
    now: int,
    evidence: dict[str, Any] | None = None,
) -> RolloutEvent:
    """Move ``rollout`` to ``to_state`` and record who did it, why, and on what evidence."""
    from_state = rollout.state
    if to_state not in _ALLOWED.get(from_state, ()):
        raise AssertionError(f"transition {from_state} -> {to_state} is not allowed")
    rollout.state, rollout.state_reason, rollout.updated_at = to_state, reason, now
    if to_state in TERMINAL:
        rollout.ended_at = now
    event = RolloutEvent(
        rollout_id=rollout.id,
        at=now,
        from_state=from_state,
        to_state=to_state,
        wave=rollout.current_wave,
        actor=actor,
        reason=reason,
        evidence=dict(evidence or {}),
    )
    return RolloutStore(s).add_event(event)


def can_transition(from_state: str, to_state: str) -> bool:
    return to_state in _ALLOWED.get(from_state, ())


# ---- assignment -----------------------------------------------------------------------------


def _population(s: Session, rollout: Rollout, release: Release) -> list[DeviceBrief]:
    group = DeviceStore(s).find_group(rollout.group_name)
    return [] if group is None else group_devices(s, group, release.target)


def assign(
    s: Session, rollout: Rollout, release: Release, now: int, rows: list[UpdateRow] | None = None
) -> int:
    """Bring the rollout's assigned devices up to its current wave's share; returns how
    many devices this call assigned (0 when the wave is already covered). ``rows``: the
    rollout's update rows, if the caller has them."""
    population = _population(s, rollout, release)
    store = RolloutStore(s)
    rows = store.update_rows(rollout.id) if rows is None else rows
    assigned = {du.device_id for du, _, _ in rows}
    dropped = sum(
        1
        for du, seen, enrolled in rows
        if du.state not in FINAL and is_offline(seen, enrolled, now, rollout.offline_timeout_ms)
    )
    candidates = [
        d
        for d in population
        if d.id not in assigned
        and not is_offline(d.last_seen, d.enrolled_at, now, rollout.offline_timeout_ms)
    ]
    active = len(assigned) - dropped
    need = wave_size(rollout.waves[rollout.current_wave], active + len(candidates)) - active
    if need <= 0 or not candidates:
        return 0
    candidates.sort(key=lambda d: device_order(rollout.id, d.id))
    busy = store.busy_devices(rollout.id, [d.id for d in candidates])
    chosen = [d.id for d in candidates if d.id not in busy][:need]
    if not chosen:
        return 0
    DeviceStore(s).lock(chosen)
    chosen_set = set(chosen) - store.busy_devices(rollout.id, chosen)  # re-check under lock
    current = DeviceStore(s).current_releases(sorted(chosen_set))
    rows_to_add = []
    for device_id in chosen:
        if device_id not in chosen_set:
            continue
        previous = current.get(device_id)
        already = previous == release.id
        rows_to_add.append(
            {
                "rollout_id": rollout.id,
                "device_id": device_id,
                "wave": rollout.current_wave,
                "release_id": release.id,
                "previous_release": previous,
                "state": "healthy" if already else "assigned",
                "reason": "already runs this release" if already else "",
                "rollback": False,
                "offline": False,
                "bytes_downloaded": 0,
                "bytes_saved": 0,
                "assigned_at": now,
                "updated_at": now,
            }
        )
    store.add_updates(rows_to_add)
    return len(rows_to_add)


def start_wave(s: Session, rollout: Rollout, release: Release, now: int) -> int:
    """Start the rollout's current wave: its bake clock and its devices."""
    rollout.wave_started_at, rollout.resumed_at = now, None
    return assign(s, rollout, release, now)


# ---- gates ----------------------------------------------------------------------------------


def evaluate(
    s: Session,
    rollout: Rollout,
    release: Release,
    now: int,
    rows: list[UpdateRow] | None = None,
) -> dict[str, Any]:
    """The current wave's gates on the devices' reports and telemetry, as evidence.

    ``breach`` lists what is broken (share failed over ``max_failure``, a health threshold
    crossed); ``waiting`` what keeps the wave from passing (bake time, share healthy under
    ``min_success``, no telemetry yet for a health threshold, devices still updating that
    could yet push the share failed over ``max_failure``); ``passed`` is neither. A wave
    therefore never passes while its failure gate is undecided: a slow device that fails
    after the healthy share was reached still counts. Failures a paused rollout was resumed
    over are counted but do not breach again.
    """
    rows = RolloutStore(s).update_rows(rollout.id) if rows is None else rows
    since = max(rollout.wave_started_at or now, rollout.resumed_at or 0)
    counts: dict[str, int] = {}
    dropped = healthy = failed = failed_new = updating = 0
    for du, seen, enrolled in rows:
        counts[du.state] = counts.get(du.state, 0) + 1
        if du.rollback:
            continue
        if du.state not in FINAL and is_offline(seen, enrolled, now, rollout.offline_timeout_ms):
            dropped += 1
        elif du.state not in FINAL:
            updating += 1
        elif du.state == "healthy":
            healthy += 1
        elif du.state in ("failed", "rolled-back"):
            failed += 1
            if rollout.resumed_at is None or du.updated_at > rollout.resumed_at:
                failed_new += 1
    devices = len(rows) - dropped
    figures = health_figures(RolloutStore(s).telemetry_since(rollout.id, release.id, since))
    breach: list[str] = []
    waiting: list[str] = []
    share_failed = failed_new / devices if devices else 0.0
    share_healthy = healthy / devices if devices else 0.0
    if devices and failed_new > rollout.max_failure * devices + _EPS:
        breach.append(
            f"share failed {share_failed:.1%} > max {rollout.max_failure:.1%} "
            f"({failed_new} of {devices} devices)"
        )
    elif devices and failed_new + updating > rollout.max_failure * devices + _EPS:
        waiting.append(
            f"{updating} device(s) still updating could push the share failed over max "
            f"{rollout.max_failure:.1%} ({failed_new} of {devices} failed so far)"
        )
    health: dict[str, Any] = {}
    for rule in rollout.health:
        value = figures.get(rule["metric"])
        ok: bool | None = None
        if value is not None:
            ok = _holds(rule, float(value))
            if not ok:
                breach.append(f"{rule['metric']} {value:.4g} breaks {_rule_text(rule)}")
        else:
            waiting.append(f"no telemetry yet for {_rule_text(rule)}")
        health[_rule_text(rule)] = {"value": value, "ok": ok}
    if not devices:
        waiting.append("no online device assigned yet")
    elif healthy + _EPS < rollout.min_success * devices:
        waiting.append(
            f"share healthy {share_healthy:.1%} < min {rollout.min_success:.1%} "
            f"({healthy} of {devices} devices)"
        )
    baked = now - since
    if baked < rollout.bake_ms:
        waiting.append(f"baking: {baked // 1000} s of {rollout.bake_ms // 1000} s")
    return {
        "wave": rollout.current_wave,
        "percent": rollout.waves[rollout.current_wave],
        "assigned": len(rows),
        "devices": devices,
        "offline_dropped": dropped,
        "healthy": healthy,
        "failed": failed,
        "failed_since_resume": failed_new,
        "updating": updating,
        "share_healthy": round(share_healthy, 6),
        "share_failed": round(share_failed, 6),
        "min_success": rollout.min_success,
        "max_failure": rollout.max_failure,
        "states": counts,
        "health": health,
        "telemetry": {k: figures[k] for k in ("windows", "inferences", "errors")},
        "bake_ms": rollout.bake_ms,
        "baked_ms": baked,
        "breach": breach,
        "waiting": waiting,
        "passed": not breach and not waiting,
    }


def _holds(rule: dict[str, Any], observed: float) -> bool:
    op, value = rule["op"], float(rule["value"])
    return {
        "<": observed < value,
        "<=": observed <= value,
        ">": observed > value,
        ">=": observed >= value,
    }[op]


def _rule_text(rule: dict[str, Any]) -> str:
    return f"{rule['metric']}{rule['op']}{float(rule['value']):g}"


# ---- the reconciler's step --------------------------------------------------------------------


def refresh_offline(s: Session, rollout: Rollout, now: int, rows: list[UpdateRow]) -> None:
    """Flag the rollout's unfinished devices that are past the offline timeout (and clear
    the flag of those that came back)."""
    went, came = [], []
    for du, seen, enrolled in rows:
        offline = du.state not in FINAL and is_offline(
            seen, enrolled, now, rollout.offline_timeout_ms
        )
        if offline and not du.offline:
            went.append(du.device_id)
        elif not offline and du.offline:
            came.append(du.device_id)
    store = RolloutStore(s)
    store.set_offline(rollout.id, went, True)
    store.set_offline(rollout.id, came, False)


def on_breach(
    s: Session,
    rollout: Rollout,
    release: Release,
    gates: dict[str, Any],
    *,
    actor: str,
    now: int,
) -> RolloutEvent:
    """Pause or roll back, as the rollout's policy says."""
    reason = "gate breached: " + "; ".join(gates["breach"])
    if rollout.on_failure == "rollback":
        event = transition(
            s, rollout, "rolled-back", actor=actor, reason=reason, now=now, evidence=gates
        )
        RolloutStore(s).start_rollback(rollout.id, release.id, now)
        return event
    return transition(s, rollout, "paused", actor=actor, reason=reason, now=now, evidence=gates)


def advance(
    s: Session,
    rollout: Rollout,
    release: Release,
    gates: dict[str, Any],
    *,
    actor: str,
    now: int,
) -> RolloutEvent:
    """The current wave passed: complete, wait for approval, or start the next wave."""
    wave = rollout.current_wave
    if wave >= len(rollout.waves) - 1:
        return transition(
            s,
            rollout,
            "completed",
            actor=actor,
            reason=f"wave {wave + 1} of {len(rollout.waves)} passed its gates; all waves done",
            now=now,
            evidence=gates,
        )
    rollout.current_wave = wave + 1
    if rollout.approve_each_wave:
        rollout.wave_started_at, rollout.resumed_at = None, None
        return transition(
            s,
            rollout,
            "awaiting-approval",
            actor=actor,
            reason=f"wave {wave + 1} passed its gates; wave {wave + 2} waits for approval",
            now=now,
            evidence=gates,
        )
    assigned = start_wave(s, rollout, release, now)
    return transition(
        s,
        rollout,
        "running",
        actor=actor,
        reason=f"wave {wave + 1} passed its gates; wave {wave + 2} "
        f"({rollout.waves[wave + 1]:g}%) started",
        now=now,
        evidence={**gates, "newly_assigned": assigned},
    )


def step(s: Session, rollout_id: str, *, actor: str, now: int) -> tuple[list[RolloutEvent], int]:
    """One reconciler step on one rollout (locking it): refresh offline flags, top up the
    wave, then roll back / pause on a breach or advance once the gates pass. Doing it again
    with nothing new changes nothing."""
    rollout = RolloutStore(s).get(rollout_id, for_update=True)
    if rollout.state not in ("running", "paused"):
        return [], 0
    release = ReleaseStore(s).get(rollout.release_id)
    store = RolloutStore(s)
    rows = store.update_rows(rollout.id)
    refresh_offline(s, rollout, now, rows)
    if rollout.state == "paused":
        return [], 0
    assigned = assign(s, rollout, release, now, rows)
    gates = evaluate(s, rollout, release, now, store.update_rows(rollout.id) if assigned else rows)
    if gates["breach"]:
        return [on_breach(s, rollout, release, gates, actor=actor, now=now)], assigned
    if gates["passed"]:
        return [advance(s, rollout, release, gates, actor=actor, now=now)], assigned
    return [], assigned
