"""Stores for the fleet: devices (with enrollment tokens, groups and telemetry), releases, and
rollouts (with their device updates and events)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, literal, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._models import (
    Device,
    DeviceGroup,
    DeviceTelemetry,
    DeviceUpdate,
    EnrollmentToken,
    Release,
    Rollout,
    RolloutEvent,
)
from edgeloop.store._rows import insert_once

__all__ = [
    "CheckinState",
    "DeviceBrief",
    "DeviceStore",
    "OpenUpdate",
    "ReleaseStore",
    "RolloutStore",
    "UpdateRow",
]

ACTIVE_ROLLOUT_STATES = ("awaiting-approval", "running", "paused")
"""Rollout states in which a device stays tied to the rollout."""
FINAL_UPDATE_STATES = ("healthy", "failed", "rolled-back")
_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


UpdateRow = tuple[DeviceUpdate, int | None, int]
"""A device update with its device's last-seen and enrolled times."""


@dataclass(frozen=True, slots=True)
class DeviceBrief:
    """What group queries and wave selection read of a device (cheaper than the row)."""

    id: str
    target: str
    firmware: str
    attributes: dict[str, Any]
    last_seen: int | None
    enrolled_at: int


@dataclass(frozen=True, slots=True)
class CheckinState:
    """What a check-in compares with the device's report: its stored inventory."""

    slots: dict[str, Any]
    active_slot: str | None
    current_release: str | None
    firmware: str
    data_collection: bool


@dataclass(frozen=True, slots=True)
class OpenUpdate:
    """An unfinished device update with its rollout's state (what a check-in may assign)."""

    rollout_id: str
    release_id: str
    previous_release: str | None
    rollback: bool
    rollout_state: str


# Built once: a check-in runs these on every call, so SQLAlchemy reuses their compiled form.
_CHECKIN_STATE = select(
    Device.slots,
    Device.active_slot,
    Device.current_release,
    Device.firmware,
    Device.data_collection,
).where(Device.id == bindparam("device_id"))
_TOKEN_OWNERS = select(Device.id, Device.token_hash, Device.status).where(
    Device.token_id == bindparam("token_id")
)
_OPEN_UPDATES = (
    select(
        DeviceUpdate.rollout_id,
        DeviceUpdate.release_id,
        DeviceUpdate.previous_release,
        DeviceUpdate.rollback,
        Rollout.state,
    )
    .join(Rollout, Rollout.id == DeviceUpdate.rollout_id)
    .where(
        DeviceUpdate.device_id == bindparam("device_id"),
        DeviceUpdate.state.not_in(FINAL_UPDATE_STATES),
    )
    .order_by(DeviceUpdate.id.desc())
)
_TOUCH = (
    update(Device)
    .where(
        Device.id == bindparam("device_id"),
        or_(Device.last_seen.is_(None), Device.last_seen < bindparam("seen")),
    )
    .values(last_seen=bindparam("seen"))
)


class DeviceStore:
    """Devices, pre-shared enrollment tokens, device groups and telemetry windows."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # devices -----------------------------------------------------------------------------

    def add(self, device: Device) -> Device:
        try:
            with self.s.begin_nested():
                self.s.add(device)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"device {device.id!r} enrolled concurrently; enroll again",
                details={"device": device.id},
            ) from exc
        return device

    def find(self, device_id: str, *, for_update: bool = False) -> Device | None:
        stmt = select(Device).where(Device.id == device_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def get(self, device_id: str, *, for_update: bool = False) -> Device:
        device = self.find(device_id, for_update=for_update)
        if device is None:
            raise NotFound(f"device {device_id!r} does not exist", details={"device": device_id})
        return device

    def delete(self, device: Device) -> None:
        """Delete a device with its updates and telemetry."""
        self.s.execute(delete(DeviceTelemetry).where(DeviceTelemetry.device_id == device.id))
        self.s.execute(delete(DeviceUpdate).where(DeviceUpdate.device_id == device.id))
        self.s.delete(device)
        self.s.flush()

    def token_owners(self, token_id: str) -> list[tuple[str, str | None, str]]:
        """``(device id, token hash, status)`` of the devices whose token has this id."""
        rows = self.s.connection().execute(_TOKEN_OWNERS, {"token_id": token_id})
        return [(row[0], row[1], row[2]) for row in rows]

    def checkin_state(self, device_id: str) -> CheckinState:
        """The device's stored inventory (one primary-key lookup, no ORM object)."""
        row = self.s.connection().execute(_CHECKIN_STATE, {"device_id": device_id}).first()
        if row is None:
            raise NotFound(f"device {device_id!r} does not exist", details={"device": device_id})
        return CheckinState(dict(row[0] or {}), row[1], row[2], row[3], bool(row[4]))

    def touch(self, seen: Mapping[str, int]) -> None:
        """Move each device's ``last_seen`` forward to the given time (never backwards, so
        several server processes may write in any order); unknown ids are ignored."""
        if seen:
            params = [{"device_id": d, "seen": at} for d, at in sorted(seen.items())]
            self.s.connection().execute(_TOUCH, params)

    def page(
        self, offset: int, limit: int, *, status: str | None = None, target: str | None = None
    ) -> list[Device]:
        stmt = select(Device)
        if status:
            stmt = stmt.where(Device.status == status)
        if target:
            stmt = stmt.where(Device.target == target)
        return list(self.s.scalars(stmt.order_by(Device.id).offset(offset).limit(limit)))

    def existing_ids(self, device_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(device_ids)):
            found.update(self.s.scalars(select(Device.id).where(Device.id.in_(chunk))))
        return found

    def current_releases(self, device_ids: Sequence[str]) -> dict[str, str | None]:
        """The release each device last reported in its active slot."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(list(device_ids)):
            stmt = select(Device.id, Device.current_release).where(Device.id.in_(chunk))
            found.update((device_id, release) for device_id, release in self.s.execute(stmt))
        return found

    def briefs(self, target: str | None = None) -> list[DeviceBrief]:
        """The accepted devices (of ``target`` only, if given), by id."""
        stmt = select(
            Device.id,
            Device.target,
            Device.firmware,
            Device.attributes,
            Device.last_seen,
            Device.enrolled_at,
        ).where(Device.status == "accepted")
        if target is not None:
            stmt = stmt.where(Device.target == target)
        return [DeviceBrief(*row) for row in self.s.execute(stmt.order_by(Device.id))]

    def lock(self, device_ids: Sequence[str]) -> None:
        """Lock these device rows (in id order, so lockers never deadlock) until commit."""
        for chunk in _chunks(sorted(device_ids)):
            self.s.execute(
                select(Device.id).where(Device.id.in_(chunk)).order_by(Device.id).with_for_update()
            )

    # enrollment tokens --------------------------------------------------------------------

    def add_enrollment_token(self, token: EnrollmentToken) -> EnrollmentToken:
        self.s.add(token)
        self.s.flush()
        return token

    def enrollment_token(
        self, token_id: str, *, for_update: bool = False
    ) -> EnrollmentToken | None:
        stmt = select(EnrollmentToken).where(EnrollmentToken.id == token_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def enrollment_tokens(self) -> list[EnrollmentToken]:
        stmt = select(EnrollmentToken).order_by(EnrollmentToken.created_at, EnrollmentToken.id)
        return list(self.s.scalars(stmt))

    # groups -------------------------------------------------------------------------------

    def add_group(self, group: DeviceGroup) -> DeviceGroup:
        try:
            with self.s.begin_nested():
                self.s.add(group)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"device group {group.name!r} already exists", details={"group": group.name}
            ) from exc
        return group

    def find_group(self, name: str) -> DeviceGroup | None:
        return self.s.scalar(select(DeviceGroup).where(DeviceGroup.name == name))

    def group(self, name: str) -> DeviceGroup:
        group = self.find_group(name)
        if group is None:
            raise NotFound(f"device group {name!r} does not exist", details={"group": name})
        return group

    def groups(self) -> list[DeviceGroup]:
        return list(self.s.scalars(select(DeviceGroup).order_by(DeviceGroup.name)))

    def delete_group(self, group: DeviceGroup) -> None:
        self.s.delete(group)
        self.s.flush()

    # telemetry ----------------------------------------------------------------------------

    def add_telemetry(self, row: DeviceTelemetry) -> bool:
        """Store a telemetry window; False if this device already sent that window."""
        return insert_once(
            self.s,
            row,
            select(DeviceTelemetry.id).where(
                DeviceTelemetry.device_id == row.device_id,
                DeviceTelemetry.window_start == row.window_start,
                DeviceTelemetry.window_end == row.window_end,
            ),
        )


class ReleaseStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, release: Release) -> Release:
        try:
            with self.s.begin_nested():
                self.s.add(release)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"models:/{release.model}/{release.model_version} already has a release for "
                f"target {release.target!r}",
                details={"model": release.model, "version": release.model_version},
            ) from exc
        return release

    def find(self, release_id: str) -> Release | None:
        return self.s.get(Release, release_id)

    def get(self, release_id: str) -> Release:
        release = self.find(release_id)
        if release is None:
            raise NotFound(
                f"release {release_id!r} does not exist", details={"release": release_id}
            )
        return release

    def for_version(self, model: str, version: int, target: str) -> Release | None:
        return self.s.scalar(
            select(Release).where(
                Release.model == model,
                Release.model_version == version,
                Release.target == target,
            )
        )

    def page(self, offset: int, limit: int, *, model: str | None = None) -> list[Release]:
        stmt = select(Release)
        if model:
            stmt = stmt.where(Release.model == model)
        stmt = stmt.order_by(Release.created_at.desc(), Release.id).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))


class RolloutStore:
    """Rollouts, the device updates they make, and their append-only events."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # rollouts -----------------------------------------------------------------------------

    def add(self, rollout: Rollout) -> Rollout:
        self.s.add(rollout)
        self.s.flush()
        return rollout

    def get(self, rollout_id: str, *, for_update: bool = False) -> Rollout:
        stmt = select(Rollout).where(Rollout.id == rollout_id)
        if for_update:
            stmt = stmt.with_for_update()
        rollout = self.s.scalar(stmt)
        if rollout is None:
            raise NotFound(
                f"rollout {rollout_id!r} does not exist", details={"rollout": rollout_id}
            )
        return rollout

    def page(self, offset: int, limit: int, *, state: str | None = None) -> list[Rollout]:
        stmt = select(Rollout)
        if state:
            stmt = stmt.where(Rollout.state == state)
        stmt = stmt.order_by(Rollout.created_at.desc(), Rollout.id).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))

    def ids_in_states(self, states: Sequence[str]) -> list[str]:
        stmt = select(Rollout.id).where(Rollout.state.in_(states)).order_by(Rollout.created_at)
        return list(self.s.scalars(stmt))

    # device updates -----------------------------------------------------------------------

    def updates(self, rollout_id: str) -> list[DeviceUpdate]:
        stmt = (
            select(DeviceUpdate)
            .where(DeviceUpdate.rollout_id == rollout_id)
            .order_by(DeviceUpdate.wave, DeviceUpdate.id)
        )
        return list(self.s.scalars(stmt))

    def update_rows(self, rollout_id: str) -> list[UpdateRow]:
        """Each device update of the rollout with its device's last-seen and enrolled times."""
        stmt = (
            select(DeviceUpdate, Device.last_seen, Device.enrolled_at)
            .join(Device, Device.id == DeviceUpdate.device_id)
            .where(DeviceUpdate.rollout_id == rollout_id)
            .order_by(DeviceUpdate.id)
        )
        return [(du, seen, enrolled) for du, seen, enrolled in self.s.execute(stmt).all()]

    def add_updates(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.s.add_all(DeviceUpdate(**row) for row in rows)
            self.s.flush()

    def state_counts(self, rollout_id: str) -> dict[str, int]:
        stmt = (
            select(DeviceUpdate.state, func.count())
            .where(DeviceUpdate.rollout_id == rollout_id)
            .group_by(DeviceUpdate.state)
        )
        return {state: int(n) for state, n in self.s.execute(stmt).all()}

    def update_for(
        self, rollout_id: str, device_id: str, *, for_update: bool = False
    ) -> DeviceUpdate | None:
        stmt = select(DeviceUpdate).where(
            DeviceUpdate.rollout_id == rollout_id, DeviceUpdate.device_id == device_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    def device_updates(self, device_id: str, limit: int = 20) -> list[tuple[DeviceUpdate, str]]:
        """The device's newest updates with their rollout's state."""
        stmt = (
            select(DeviceUpdate, Rollout.state)
            .join(Rollout, Rollout.id == DeviceUpdate.rollout_id)
            .where(DeviceUpdate.device_id == device_id)
            .order_by(DeviceUpdate.id.desc())
            .limit(limit)
        )
        return [(du, state) for du, state in self.s.execute(stmt).all()]

    def open_updates(self, device_id: str) -> list[OpenUpdate]:
        """The device's unfinished updates, newest first (the (device, state) index)."""
        rows = self.s.connection().execute(_OPEN_UPDATES, {"device_id": device_id})
        return [OpenUpdate(*row) for row in rows]

    def busy_devices(self, rollout_id: str | None, device_ids: Sequence[str]) -> set[str]:
        """Those of ``device_ids`` that an active rollout (other than ``rollout_id``) has not
        finished with."""
        busy: set[str] = set()
        other = DeviceUpdate.rollout_id != rollout_id if rollout_id else literal(True)
        for chunk in _chunks(list(device_ids)):
            stmt = (
                select(DeviceUpdate.device_id)
                .join(Rollout, Rollout.id == DeviceUpdate.rollout_id)
                .where(
                    DeviceUpdate.device_id.in_(chunk),
                    other,
                    or_(
                        and_(
                            Rollout.state.in_(ACTIVE_ROLLOUT_STATES),
                            DeviceUpdate.state.not_in(FINAL_UPDATE_STATES),
                        ),
                        and_(
                            DeviceUpdate.rollback.is_(True),
                            DeviceUpdate.state.not_in(FINAL_UPDATE_STATES),
                        ),
                    ),
                )
            )
            busy.update(self.s.scalars(stmt))
        return busy

    def start_rollback(self, rollout_id: str, release_id: str, now: int) -> None:
        """Send every device of the rollout back to its previous release: devices already
        there (they failed and switched back, never had another release, or had this one
        before) are marked rolled-back at once; the others get a rollback assignment."""
        pending = and_(DeviceUpdate.rollout_id == rollout_id, DeviceUpdate.rollback.is_(False))
        self.s.execute(
            update(DeviceUpdate)
            .where(pending, DeviceUpdate.state.in_(("failed", "rolled-back")))
            .values(
                rollback=True,
                state="rolled-back",
                reason="already back on the previous release after failing",
                updated_at=now,
            )
        )
        self.s.execute(
            update(DeviceUpdate)
            .where(
                pending,
                or_(
                    DeviceUpdate.previous_release.is_(None),
                    DeviceUpdate.previous_release == release_id,
                ),
            )
            .values(
                rollback=True,
                state="rolled-back",
                reason="no earlier release to return to: the assignment is withdrawn",
                updated_at=now,
            )
        )
        self.s.execute(
            update(DeviceUpdate)
            .where(pending)
            .values(
                rollback=True,
                state="assigned",
                reason=literal("rollback; the update was ") + DeviceUpdate.state,
                updated_at=now,
            )
        )
        self.s.expire_all()

    def set_offline(self, rollout_id: str, device_ids: Sequence[str], offline: bool) -> None:
        for chunk in _chunks(list(device_ids)):
            self.s.execute(
                update(DeviceUpdate)
                .where(DeviceUpdate.rollout_id == rollout_id, DeviceUpdate.device_id.in_(chunk))
                .values(offline=offline)
            )

    def can_fetch(self, device_id: str, release_id: str) -> bool:
        """Whether ``release_id`` was ever assigned to the device (forward or as a rollback)."""
        stmt = select(func.count()).where(
            DeviceUpdate.device_id == device_id,
            or_(
                DeviceUpdate.release_id == release_id,
                and_(
                    DeviceUpdate.rollback.is_(True),
                    DeviceUpdate.previous_release == release_id,
                ),
            ),
        )
        return bool(self.s.scalar(stmt))

    def byte_totals(self, rollout_id: str) -> tuple[int, int]:
        """Bytes downloaded and bytes saved by delta transfer, over the rollout's devices."""
        row = self.s.execute(
            select(
                func.coalesce(func.sum(DeviceUpdate.bytes_downloaded), 0),
                func.coalesce(func.sum(DeviceUpdate.bytes_saved), 0),
            ).where(DeviceUpdate.rollout_id == rollout_id)
        ).one()
        return int(row[0]), int(row[1])

    # telemetry for the health gates -------------------------------------------------------

    def telemetry_since(
        self, rollout_id: str, release_id: str, since: int
    ) -> list[DeviceTelemetry]:
        """Telemetry windows about ``release_id`` from the rollout's devices ending at or
        after ``since``."""
        stmt = (
            select(DeviceTelemetry)
            .join(
                DeviceUpdate,
                and_(
                    DeviceUpdate.device_id == DeviceTelemetry.device_id,
                    DeviceUpdate.rollout_id == rollout_id,
                ),
            )
            .where(DeviceTelemetry.release_id == release_id, DeviceTelemetry.window_end >= since)
            .order_by(DeviceTelemetry.id)
        )
        return list(self.s.scalars(stmt))

    # events -------------------------------------------------------------------------------

    def add_event(self, event: RolloutEvent) -> RolloutEvent:
        self.s.add(event)
        self.s.flush()
        return event

    def events(self, rollout_id: str) -> list[RolloutEvent]:
        stmt = (
            select(RolloutEvent)
            .where(RolloutEvent.rollout_id == rollout_id)
            .order_by(RolloutEvent.id)
        )
        return list(self.s.scalars(stmt))
