"""Rollouts: create one, follow it, and steer it by hand (approve, pause, resume, abort,
roll back). The reconciler (:mod:`edgeloop.fleet._reconciler`) moves it between waves.

>>> rollout = create_rollout(ws, "rel_…", "plant-3", waves="1,10,50,100", bake="10m",
...                          max_failure="5%", min_success="95%",
...                          health="error_rate<0.02,latency_p95_ms<40")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, ValidationFailed
from edgeloop.fleet._devices import update_info
from edgeloop.fleet._entities import (
    ROLLOUT_STATES,
    DeviceUpdateInfo,
    HealthRule,
    RolloutEventInfo,
    RolloutInfo,
    WaveProgress,
)
from edgeloop.fleet._groups import group_devices
from edgeloop.fleet._machine import (
    FINAL,
    can_transition,
    evaluate,
    is_offline,
    start_wave,
    transition,
    wave_size,
)
from edgeloop.pages import Page, check_choice, check_limit, decode_cursor, next_cursor
from edgeloop.store import DeviceStore, ReleaseStore, Rollout, RolloutEvent, RolloutStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "DEFAULT_OFFLINE_TIMEOUT_MS",
    "abort_rollout",
    "approve_rollout",
    "create_rollout",
    "event_info",
    "get_rollout",
    "list_rollout_devices",
    "list_rollout_events",
    "list_rollouts",
    "parse_duration",
    "parse_health",
    "parse_share",
    "parse_waves",
    "pause_rollout",
    "resume_rollout",
    "rollback_rollout",
    "start_rollout",
]

DEFAULT_OFFLINE_TIMEOUT_MS = 30 * 60 * 1000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RULE = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_MAX_WAVES = 20


# ---- parsing the policy --------------------------------------------------------------------


def parse_waves(waves: str | Sequence[float]) -> list[float]:
    """Cumulative wave percentages, e.g. ``"1,10,50,100"``: increasing, in (0, 100], ending
    at 100."""
    items: list[Any] = waves.split(",") if isinstance(waves, str) else list(waves)
    try:
        values = [float(str(w).strip().rstrip("%")) for w in items]
    except ValueError as exc:
        raise ValidationFailed(
            f"waves {waves!r} are not numbers: write cumulative percentages like 1,10,50,100",
            details={"field": "waves"},
        ) from exc
    if not values or len(values) > _MAX_WAVES:
        raise ValidationFailed(
            f"give 1 to {_MAX_WAVES} waves, e.g. 1,10,50,100", details={"field": "waves"}
        )
    if any(not 0 < v <= 100 for v in values) or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValidationFailed(
            f"waves {values} must be increasing percentages in (0, 100], e.g. 1,10,50,100",
            details={"field": "waves"},
        )
    if values[-1] != 100:
        raise ValidationFailed(
            f"the last wave is {values[-1]:g}%: it must be 100 (all devices of the group)",
            details={"field": "waves"},
        )
    return values


def parse_duration(value: str | int, field: str = "bake") -> int:
    """Milliseconds from ``"10m"``, ``"30s"``, ``"2h"``, ``"500ms"``, ``"1d"`` or an int (ms)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValidationFailed(f"{field} must be >= 0", details={"field": field})
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValidationFailed(
            f"{field} {value!r} is not a duration: write e.g. 30s, 10m, 2h, 1d or 500ms",
            details={"field": field},
        )
    return int(float(match[1]) * _UNITS[match[2] or "s"])


def parse_share(value: str | float, field: str) -> float:
    """A share in [0, 1] from ``"5%"`` or ``0.05``."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise ValidationFailed(
            f"{field} {value!r} is not a share: write 5% or 0.05", details={"field": field}
        ) from exc
    if not 0 <= share <= 1:
        raise ValidationFailed(
            f"{field} {value!r} is not between 0% and 100% (write 5% or 0.05)",
            details={"field": field},
        )
    return share


def parse_health(rules: str | Sequence[HealthRule | Mapping[str, Any]] | None) -> list[HealthRule]:
    """Health thresholds: ``"error_rate<0.02,latency_p95_ms<40"`` or a list of rules."""
    if rules is None or (isinstance(rules, str) and not rules.strip()):
        return []
    if not isinstance(rules, str):
        try:
            return [r if isinstance(r, HealthRule) else HealthRule(**r) for r in rules]
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(
                f"health rules are not valid: {exc}", details={"field": "health"}
            ) from exc
    parsed = []
    allowed = "error_rate, latency_p95_ms"
    for part in rules.split(","):
        match = _RULE.match(part)
        if match is None:
            raise ValidationFailed(
                f"health rule {part.strip()!r} is not METRIC OP NUMBER (e.g. error_rate<0.02; "
                f"metrics: {allowed}; operators: < <= > >=)",
                details={"field": "health"},
            )
        if match[1] not in ("error_rate", "latency_p95_ms"):
            raise ValidationFailed(
                f"health metric {match[1]!r} is not known; use {allowed}",
                details={"field": "health"},
            )
        parsed.append(HealthRule(metric=match[1], op=match[2], value=float(match[3])))
    return parsed


# ---- views ----------------------------------------------------------------------------------


def event_info(row: RolloutEvent) -> RolloutEventInfo:
    return RolloutEventInfo(
        id=row.id,
        rollout=row.rollout_id,
        at=row.at,
        from_state=row.from_state,
        to_state=row.to_state,
        wave=row.wave,
        actor=row.actor,
        reason=row.reason,
        evidence=dict(row.evidence or {}),
    )


def _info(s: Session, row: Rollout, *, detail: bool, now: int | None = None) -> RolloutInfo:
    release = ReleaseStore(s).get(row.release_id)
    store = RolloutStore(s)
    at = now if now is not None else now_ms()
    counts = store.state_counts(row.id)
    downloaded, saved = store.byte_totals(row.id)
    info = RolloutInfo(
        id=row.id,
        release=row.release_id,
        model=release.model,
        model_version=release.model_version,
        target=release.target,
        group=row.group_name,
        waves=list(row.waves),
        bake_ms=row.bake_ms,
        max_failure=row.max_failure,
        min_success=row.min_success,
        health=[HealthRule(**rule) for rule in row.health],
        on_failure=row.on_failure,
        approve_each_wave=row.approve_each_wave,
        offline_timeout_ms=row.offline_timeout_ms,
        state=row.state,
        state_reason=row.state_reason,
        current_wave=row.current_wave,
        wave_started_at=row.wave_started_at,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        counts=counts,
        bytes_downloaded=downloaded,
        bytes_saved=saved,
    )
    if not detail:
        return info
    rows = store.update_rows(row.id)
    group = DeviceStore(s).find_group(row.group_name)
    population = [] if group is None else group_devices(s, group, release.target)
    assigned = {du.device_id for du, _, _ in rows}
    online = sum(
        1
        for d in population
        if d.id not in assigned
        and not is_offline(d.last_seen, d.enrolled_at, at, row.offline_timeout_ms)
    )
    dropped = sum(
        1
        for du, seen, enrolled in rows
        if du.state not in FINAL and is_offline(seen, enrolled, at, row.offline_timeout_ms)
    )
    size = len(rows) - dropped + online
    for index, percent in enumerate(row.waves):
        chosen = [(du, seen, enr) for du, seen, enr in rows if du.wave <= index]
        wave = WaveProgress(index=index, percent=percent, target=wave_size(percent, size))
        for du, seen, enrolled in chosen:
            wave.assigned += 1
            if du.rollback:
                wave.rolled_back += du.state == "rolled-back"
            elif du.state == "healthy":
                wave.healthy += 1
            elif du.state in ("failed", "rolled-back"):
                wave.failed += 1
            elif is_offline(seen, enrolled, at, row.offline_timeout_ms):
                wave.offline += 1
            else:
                wave.in_progress += 1
        info.progress.append(wave)
    if row.state in ("running", "paused") and row.wave_started_at is not None:
        info.gates = evaluate(s, row, release, at)
    return info


def get_rollout(ws: Workspace, rollout_id: str, *, now: int | None = None) -> RolloutInfo:
    """The rollout with per-wave progress, byte totals and its current gate evaluation."""
    with ws.db.read() as s:
        return _info(s, RolloutStore(s).get(rollout_id), detail=True, now=now)


def list_rollouts(
    ws: Workspace, *, state: str | None = None, cursor: str | None = None, limit: int = 100
) -> Page[RolloutInfo]:
    check_choice(state, ROLLOUT_STATES, "state")
    offset, limit = decode_cursor(cursor), check_limit(limit, "limit")
    with ws.db.read() as s:
        rows = RolloutStore(s).page(offset, limit + 1, state=state)
        items = [_info(s, r, detail=False) for r in rows[:limit]]
    return Page[RolloutInfo](items=items, next_cursor=next_cursor(offset, limit, len(rows)))


def list_rollout_events(ws: Workspace, rollout_id: str) -> list[RolloutEventInfo]:
    """Every transition of the rollout, oldest first."""
    with ws.db.read() as s:
        store = RolloutStore(s)
        store.get(rollout_id)
        return [event_info(e) for e in store.events(rollout_id)]


def list_rollout_devices(
    ws: Workspace, rollout_id: str, *, state: str | None = None
) -> list[DeviceUpdateInfo]:
    """The rollout's devices by wave, with their update state."""
    with ws.db.read() as s:
        store = RolloutStore(s)
        store.get(rollout_id)
        rows = store.updates(rollout_id)
        return [update_info(du) for du in rows if state is None or du.state == state]


# ---- creating and steering --------------------------------------------------------------------


def create_rollout(
    ws: Workspace,
    release: str,
    group: str,
    *,
    waves: str | Sequence[float] = (1, 10, 50, 100),
    bake: str | int = "10m",
    max_failure: str | float = "5%",
    min_success: str | float = "95%",
    health: str | Sequence[HealthRule | Mapping[str, Any]] | None = None,
    on_failure: str = "rollback",
    approve_each_wave: bool = False,
    offline_timeout: str | int = DEFAULT_OFFLINE_TIMEOUT_MS,
    start: bool = True,
    now: int | None = None,
) -> RolloutInfo:
    """Create a rollout of ``release`` to ``group`` (a draft), and unless ``start`` is
    False start it: its first wave is assigned at once, or it waits for approval when
    ``approve_each_wave``."""
    wave_list = parse_waves(waves)
    bake_ms = parse_duration(bake, "bake")
    offline_ms = parse_duration(offline_timeout, "offline_timeout")
    if offline_ms < 1000:
        raise ValidationFailed(
            "offline_timeout must be at least 1s", details={"field": "offline_timeout"}
        )
    failure, success = (
        parse_share(max_failure, "max_failure"),
        parse_share(min_success, "min_success"),
    )
    rules = parse_health(health)
    if on_failure not in ("rollback", "pause"):
        raise ValidationFailed(
            f"on_failure {on_failure!r} is not rollback or pause", details={"field": "on_failure"}
        )
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        release_row = ReleaseStore(s).get(release)
        group_row = DeviceStore(s).group(group)
        population = group_devices(s, group_row, release_row.target)
        if not population:
            raise ValidationFailed(
                f"group {group!r} holds no accepted device of target {release_row.target!r}, "
                f"the target of release {release}",
                details={"group": group, "target": release_row.target},
            )
        row = Rollout(
            id=f"ro_{secrets.token_hex(8)}",
            release_id=release,
            group_name=group,
            waves=wave_list,
            bake_ms=bake_ms,
            max_failure=failure,
            min_success=success,
            health=[r.model_dump() for r in rules],
            on_failure=on_failure,
            approve_each_wave=approve_each_wave,
            offline_timeout_ms=offline_ms,
            state="draft",
            state_reason="created",
            current_wave=0,
            wave_started_at=None,
            resumed_at=None,
            created_at=at,
            created_by=ws.principal.name,
            updated_at=at,
            ended_at=None,
        )
        store = RolloutStore(s)
        store.add(row)
        store.add_event(
            RolloutEvent(
                rollout_id=row.id,
                at=at,
                from_state=None,
                to_state="draft",
                wave=None,
                actor=ws.principal.name,
                reason="created",
                evidence={"devices": len(population), "release": release, "group": group},
            )
        )
        if start:
            _start(s, row, ws.principal.name, "started at creation", at)
        return _info(s, row, detail=True, now=at)


def _start(s: Session, row: Rollout, actor: str, reason: str, now: int) -> None:
    if row.approve_each_wave:
        transition(
            s,
            row,
            "awaiting-approval",
            actor=actor,
            reason=f"{reason}; wave 1 waits for approval",
            now=now,
        )
        return
    assigned = start_wave(s, row, ReleaseStore(s).get(row.release_id), now)
    transition(
        s,
        row,
        "running",
        actor=actor,
        reason=f"{reason}; wave 1 ({row.waves[0]:g}%) started",
        now=now,
        evidence={"newly_assigned": assigned},
    )


def _steer(
    ws: Workspace,
    rollout_id: str,
    to_state: str,
    act: Callable[[Session, Rollout, str, int], None],
    now: int | None,
    verb: str,
) -> RolloutInfo:
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        row = RolloutStore(s).get(rollout_id, for_update=True)
        if not can_transition(row.state, to_state) or (
            to_state == "running" and row.state == "running"
        ):
            raise Conflict(
                f"rollout {rollout_id} is {row.state}: cannot {verb} it",
                details={"rollout": rollout_id, "state": row.state, "to": to_state},
            )
        act(s, row, ws.principal.name, at)
        return _info(s, row, detail=True, now=at)


def start_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Start a draft rollout."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        if row.state != "draft":
            raise Conflict(f"rollout {rollout_id} is {row.state}, not draft")
        _start(s, row, actor, reason or "started", at)

    return _steer(ws, rollout_id, "awaiting-approval", act, now, "start")


def approve_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Approve the wave a rollout waits for: it starts at once."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        if row.state != "awaiting-approval":
            raise Conflict(
                f"rollout {rollout_id} is {row.state}: only a rollout awaiting approval can be "
                "approved",
                details={"state": row.state},
            )
        assigned = start_wave(s, row, ReleaseStore(s).get(row.release_id), at)
        wave = row.current_wave
        transition(
            s,
            row,
            "running",
            actor=actor,
            reason=reason or f"wave {wave + 1} ({row.waves[wave]:g}%) approved",
            now=at,
            evidence={"newly_assigned": assigned},
        )

    return _steer(ws, rollout_id, "running", act, now, "approve")


def pause_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Pause: no device gets a new assignment and no wave advances until resumed."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        transition(s, row, "paused", actor=actor, reason=reason or "paused by hand", now=at)

    return _steer(ws, rollout_id, "paused", act, now, "pause")


def resume_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Resume a paused rollout at the wave it was in. The wave bakes again from now, and the
    failures seen so far are accepted: only new ones count against ``max_failure``."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        if row.state != "paused":
            raise Conflict(f"rollout {rollout_id} is {row.state}, not paused")
        if row.wave_started_at is None:  # paused while its wave waited for approval
            transition(
                s,
                row,
                "awaiting-approval",
                actor=actor,
                reason=reason or "resumed; the wave waits for approval",
                now=at,
            )
            return
        row.resumed_at = at
        transition(
            s,
            row,
            "running",
            actor=actor,
            reason=reason or f"resumed at wave {row.current_wave + 1}",
            now=at,
        )

    return _steer(ws, rollout_id, "running", act, now, "resume")


def abort_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Cancel: no further assignment; devices keep what they have installed."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        transition(s, row, "cancelled", actor=actor, reason=reason or "aborted by hand", now=at)

    return _steer(ws, rollout_id, "cancelled", act, now, "abort")


def rollback_rollout(
    ws: Workspace, rollout_id: str, reason: str = "", *, now: int | None = None
) -> RolloutInfo:
    """Roll back: every device of the rollout is sent back to the release it had before
    (``rollback: true``)."""

    def act(s: Session, row: Rollout, actor: str, at: int) -> None:
        transition(
            s, row, "rolled-back", actor=actor, reason=reason or "rolled back by hand", now=at
        )
        RolloutStore(s).start_rollback(row.id, row.release_id, at)

    return _steer(ws, rollout_id, "rolled-back", act, now, "roll back")
