"""What is simulated: conditions, bearings, machine types, drift knobs and recordings."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed

__all__ = [
    "CONDITIONS",
    "MACHINE_TYPES",
    "BearingGeometry",
    "Condition",
    "Drift",
    "MachineType",
    "Recording",
]

Condition = Literal["normal", "imbalance", "misalignment", "bearing_fault"]
"""The machine's health state, used as the recording's label."""

CONDITIONS: tuple[Condition, ...] = get_args(Condition)
"""Every condition, in a fixed order: ``normal``, ``imbalance``, ``misalignment``,
``bearing_fault``."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite float within bounds, else :class:`ValidationFailed`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValidationFailed(f"{name} must be a number; got {value!r}")
    number = float(value)
    allowed = (
        f"{'above' if low_open else 'at least'} {low:g}" if low is not None else "",
        f"at most {high:g}" if high is not None else "",
    )
    wanted = " and ".join(a for a in allowed if a) or "finite"
    bad = not math.isfinite(number)
    bad = bad or (low is not None and (number <= low if low_open else number < low))
    bad = bad or (high is not None and number > high)
    if bad:
        raise ValidationFailed(f"{name} must be {wanted}; got {value!r}")
    return number


def _integer(name: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationFailed(f"{name} must be an integer; got {value!r}")
    if int(value) < low:
        raise ValidationFailed(f"{name} must be at least {low}; got {value!r}")
    return int(value)


def _identifier(name: str, value: object) -> str:
    """A machine id: 1-64 of ``[A-Za-z0-9_.-]``, starting with a letter or digit (it becomes
    part of sample ids and file names)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationFailed(
            f"{name} must be 1-64 characters of letters, digits, '_', '.' or '-', starting "
            f"with a letter or digit; got {value!r}"
        )
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{name} must be a non-empty string; got {value!r}")
    return value


def _condition(value: object) -> Condition:
    for condition in CONDITIONS:
        if value == condition:
            return condition
    raise ValidationFailed(f"condition must be one of {', '.join(CONDITIONS)}; got {value!r}")


def _machine_type(name: str, value: object) -> MachineType:
    if not isinstance(value, str) or value not in MACHINE_TYPES:
        raise ValidationFailed(
            f"{name} must be one of {', '.join(sorted(MACHINE_TYPES))} (or add it to "
            f"edgeloop.sim.MACHINE_TYPES); got {value!r}"
        )
    return MACHINE_TYPES[value]


@dataclass(frozen=True)
class BearingGeometry:
    """A rolling-element bearing: number of balls, ball and pitch diameters (mm) and the
    contact angle (degrees; 0 for a deep-groove ball bearing under radial load)."""

    n_balls: int
    ball_d_mm: float
    pitch_d_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.n_balls, bool) or not isinstance(self.n_balls, int):
            raise ValidationFailed(f"n_balls must be an integer; got {self.n_balls!r}")
        if self.n_balls < 3:
            raise ValidationFailed(f"n_balls must be at least 3; got {self.n_balls}")
        _number("ball_d_mm", self.ball_d_mm, low=0.0, low_open=True)
        _number("pitch_d_mm", self.pitch_d_mm, low=self.ball_d_mm, low_open=True)
        _number("contact_angle_deg", self.contact_angle_deg, low=0.0, high=60.0)

    def bpfo(self, shaft_hz: float) -> float:
        """Ball-pass frequency, outer race (Hz), for a shaft turning at ``shaft_hz``:
        ``n/2 * f_r * (1 - d/D * cos(phi))``."""
        ratio = self.ball_d_mm / self.pitch_d_mm * math.cos(math.radians(self.contact_angle_deg))
        return self.n_balls / 2.0 * shaft_hz * (1.0 - ratio)


@dataclass(frozen=True)
class MachineType:
    """The physics of one kind of machine.

    ``rpm`` is the nominal shaft speed, ``bearing`` the bearing next to the sensor,
    ``resonance_hz`` the housing's structural resonance and ``noise_g`` the broadband machine
    noise (RMS in g over 0-500 Hz). ``damping`` is the resonance's damping ratio,
    ``temperature_c`` the housing's nominal running temperature, ``blades`` the impeller vanes /
    fan blades / rotor lobes (a tone at ``blades * f_r``; 0 for none) and ``blade_pass_mm_s``
    that tone's vibration velocity (mm/s RMS).
    """

    name: str
    rpm: float
    bearing: BearingGeometry
    resonance_hz: float
    noise_g: float
    damping: float = 0.05
    temperature_c: float = 40.0
    blades: int = 0
    blade_pass_mm_s: float = 0.3

    def __post_init__(self) -> None:
        _number("rpm", self.rpm, low=1.0, high=100_000.0)
        _number("resonance_hz", self.resonance_hz, low=0.0, low_open=True)
        _number("noise_g", self.noise_g, low=0.0, high=10.0)
        _number("damping", self.damping, low=0.001, high=0.5)
        _number("temperature_c", self.temperature_c, low=-50.0, high=200.0)
        _number("blade_pass_mm_s", self.blade_pass_mm_s, low=0.0, high=100.0)
        if isinstance(self.blades, bool) or not isinstance(self.blades, int) or self.blades < 0:
            raise ValidationFailed(f"blades must be a non-negative integer; got {self.blades!r}")


MACHINE_TYPES: dict[str, MachineType] = {
    "pump-a": MachineType(
        name="pump-a",  # vertical in-line centrifugal pump, 4-pole 50 Hz motor
        rpm=1480.0,
        bearing=BearingGeometry(n_balls=9, ball_d_mm=7.94, pitch_d_mm=39.04),  # 6205
        resonance_hz=310.0,
        noise_g=0.05,
        damping=0.08,
        temperature_c=45.0,
        blades=6,
        blade_pass_mm_s=0.3,
    ),
    "fan-b": MachineType(
        name="fan-b",  # vertical-shaft roof fan, 6-pole 50 Hz motor
        rpm=985.0,
        bearing=BearingGeometry(n_balls=9, ball_d_mm=9.53, pitch_d_mm=46.0),  # 6206
        resonance_hz=260.0,
        noise_g=0.045,
        damping=0.08,
        temperature_c=35.0,
        blades=8,
        blade_pass_mm_s=0.4,
    ),
    "compressor-c": MachineType(
        name="compressor-c",  # vertical two-cylinder reciprocating compressor, 8-pole motor
        rpm=740.0,
        bearing=BearingGeometry(n_balls=8, ball_d_mm=17.46, pitch_d_mm=77.5),  # 6310
        resonance_hz=360.0,
        noise_g=0.06,
        damping=0.06,
        temperature_c=62.0,
        blades=0,
    ),
}
"""The built-in machine types by name. ``compressor-c`` (8-pole, a slower shaft, a bigger
bearing, a stiffer housing, more noise and heat) is the "new machine type" drift for fleets of
pumps and fans."""


@dataclass(frozen=True)
class Drift:
    """Drift applied to a site's recordings.

    ``temperature_shift_c`` warms (or cools) the machines: it raises ``temperature_c``, softens
    the structural resonance and moves the sensor's temperature-dependent offset (with a slow
    thermal wander). ``gain`` (< 1 for a decaying sensor) multiplies the whole sensor output.
    ``new_machine_type`` swaps in that type's physics for the site's machines.
    """

    temperature_shift_c: float = 0.0
    gain: float = 1.0
    new_machine_type: str | None = None

    def __post_init__(self) -> None:
        _number("temperature_shift_c", self.temperature_shift_c, low=-100.0, high=100.0)
        _number("gain", self.gain, low=0.0, high=10.0, low_open=True)
        if self.new_machine_type is not None and not isinstance(self.new_machine_type, str):
            raise ValidationFailed(
                f"new_machine_type must be a machine type name or None; "
                f"got {self.new_machine_type!r}"
            )


@dataclass(frozen=True, eq=False)
class Recording:
    """One simulated accelerometer recording.

    ``signal`` is float32 of shape ``(n, 3)``: axes x, y (radial) and z (axial, vertical, so it
    carries the 1 g of gravity), in g, sampled at ``sample_rate`` Hz (read-only).
    ``machine_type`` is the physics that produced it (the drifted type under
    ``Drift.new_machine_type``). ``index`` numbers the recordings of one machine and condition
    and ``rpm`` is the shaft speed during the recording (what a tachometer would read).
    Recordings compare by identity.
    """

    machine_id: str
    machine_type: str
    condition: Condition
    site: str
    sample_rate: float
    signal: npt.NDArray[np.float32] = field(repr=False)
    temperature_c: float
    index: int = 0
    rpm: float = math.nan

    @property
    def sample_id(self) -> str:
        """The stable id used by :func:`to_table`: ``machine_id/condition/index:04d``."""
        return f"{self.machine_id}/{self.condition}/{self.index:04d}"
