"""One recording: shaft tones, resonance, bearing impulses, noise and sensor effects."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed
from edgeloop.sim._machines import (
    Condition,
    Drift,
    Recording,
    _condition,
    _identifier,
    _integer,
    _machine_type,
    _number,
    _text,
)

__all__ = ["simulate_recording"]

Floats = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]

G = 9.80665  # m/s^2 per g
MAX_SAMPLES = 5_000_000  # per axis and recording
RPM_JITTER = 0.005  # +-0.5 % shaft speed per recording (load, supply frequency)
RESONANCE_LEVEL = 1.2  # noise-excited resonance RMS, as a multiple of noise_g
RESONANCE_TEMPCO = -0.0015  # relative resonance shift per degC above the type's nominal
NOISE_CORNER_HZ = 1000.0  # machine noise rolls off (first order) above this
NOISE_BAND_HZ = 500.0  # noise_g is the RMS over 0..NOISE_BAND_HZ
SENSOR_NOISE_DENSITY = 200e-6  # g/sqrt(Hz), a MEMS accelerometer
SENSOR_FULL_SCALE = 16.0  # g; the output clips here
T_REF_C = 25.0  # the sensor's calibration temperature
OFFSET_TEMPCO = (1.0e-3, -1.0e-3, 1.0e-3)  # g/degC zero-g offset drift per axis, nominal
WANDER_C = (0.05, 0.05)  # thermal wander amplitude in degC: base + per degC of shift
AXIAL_NOISE = 0.7  # axial (z) share of broadband noise and resonance response
BURST_G = 0.5  # peak of one bearing-fault burst at severity 1 (g)
BURST_AXES = (1.0, 0.8, 0.4)  # bearing bursts per axis (radial load, weak axial)
BURST_JITTER = 0.01  # impact timing jitter, fraction of the BPFO period (rolling slip)
TAYLOR_TERMS = 16  # fractional-delay series for exact impulse placement
# Vibration velocity (mm/s RMS) of shaft harmonics per condition at severity 1:
# (harmonic, radial, axial). Normal residuals come from the machine's own balance grade.
FAULT_TONES: dict[Condition, tuple[tuple[int, float, float], ...]] = {
    "normal": (),
    "imbalance": ((1, 6.0, 0.6),),
    "misalignment": ((1, 1.5, 2.0), (2, 3.5, 3.0), (3, 1.2, 1.0)),
    "bearing_fault": (),
}
NOISE_RAISE: dict[Condition, float] = {  # broadband noise factor at severity 1, minus 1
    "normal": 0.0,
    "imbalance": 0.0,
    "misalignment": 0.1,
    "bearing_fault": 0.5,
}
HEAT_C: dict[Condition, float] = {  # extra housing temperature at severity 1
    "normal": 0.0,
    "imbalance": 1.0,
    "misalignment": 3.0,
    "bearing_fault": 5.0,
}
BPFO_TONES_MM_S = (0.4, 0.2)  # direct lines at 1x and 2x BPFO for a bearing fault


@dataclass(frozen=True)
class _Traits:
    """What makes one machine unlike its siblings (seeded by its id alone)."""

    rpm_factor: float
    resonance_factor: float
    axis_gain: Floats
    residual_mm_s: tuple[float, float]  # 1x and 2x velocity from balance grade / fit
    noise_factor: float
    temperature_offset_c: float
    tilt_rad: tuple[float, float]
    bias_g: Floats
    tempco: Floats


def _rng(*key: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``key`` (never Python's ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(map(str, ("edgeloop.sim", *key))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _traits(machine_id: str) -> _Traits:
    rng = _rng("machine", machine_id)
    return _Traits(
        rpm_factor=1.0 + float(rng.uniform(-0.01, 0.01)),
        resonance_factor=1.0 + float(rng.uniform(-0.08, 0.08)),
        axis_gain=rng.uniform(0.85, 1.15, 3),
        residual_mm_s=(float(rng.uniform(0.5, 1.2)), float(rng.uniform(0.2, 0.5))),
        noise_factor=float(rng.uniform(0.85, 1.2)),
        temperature_offset_c=float(np.clip(rng.normal(0.0, 2.0), -5.0, 5.0)),
        tilt_rad=(
            float(np.radians(rng.uniform(-2.0, 2.0))),
            float(np.radians(rng.uniform(-2.0, 2.0))),
        ),
        bias_g=rng.uniform(-0.01, 0.01, 3),
        tempco=np.asarray(OFFSET_TEMPCO) * rng.uniform(0.5, 1.5, 3),
    )


def simulate_recording(
    *,
    machine_id: str,
    machine_type: str,
    condition: Condition,
    seconds: float = 2.0,
    sample_rate: float = 1000.0,
    seed: int,
    site: str = "plant-1",
    drift: Drift = Drift(),
    severity: float = 1.0,
    index: int = 0,
) -> Recording:
    """Simulate one tri-axial accelerometer recording of a machine in ``condition``.

    The same arguments give a byte-identical signal. The random draws depend only on
    ``(seed, machine_id, condition, index)``; the machine's own traits (speed, resonance,
    mounting gains, sensor offsets) on ``machine_id`` alone. ``severity`` (0-10) scales the
    fault (ignored for ``normal``); ``drift`` is applied as described on :class:`Drift`.
    Physics and formulas: see the :mod:`edgeloop.sim` docstring.
    """
    machine_id = _identifier("machine_id", machine_id)
    kind = _machine_type("machine_type", machine_type)
    state = _condition(condition)
    seconds = _number("seconds", seconds, low=0.0, low_open=True)
    fs = _number("sample_rate", sample_rate, low=1.0, high=1_000_000.0)
    seed = _integer("seed", seed, low=-(2**63))
    site = _text("site", site)
    if not isinstance(drift, Drift):
        raise ValidationFailed(f"drift must be an edgeloop.sim.Drift; got {drift!r}")
    if drift.new_machine_type is not None:
        kind = _machine_type("drift.new_machine_type", drift.new_machine_type)
    severity = _number("severity", severity, low=0.0, high=10.0)
    index = _integer("index", index, low=0)
    n = round(seconds * fs)
    if not 2 <= n <= MAX_SAMPLES:
        raise ValidationFailed(
            f"seconds * sample_rate must give 2 to {MAX_SAMPLES} samples; got {n} "
            f"({seconds:g} s at {fs:g} Hz): change seconds or split into several recordings"
        )
    s = 0.0 if state == "normal" else severity
    traits = _traits(machine_id)
    rng = _rng("recording", seed, machine_id, state, index)

    shaft_hz = kind.rpm / 60.0 * traits.rpm_factor * (1.0 + rng.uniform(-RPM_JITTER, RPM_JITTER))
    load = float(rng.uniform(0.9, 1.1))
    temperature = (
        kind.temperature_c
        + traits.temperature_offset_c
        + HEAT_C[state] * s
        + float(rng.normal(0.0, 0.3))
        + drift.temperature_shift_c
    )
    resonance_hz = (
        kind.resonance_hz
        * traits.resonance_factor
        * max(0.5, 1.0 + RESONANCE_TEMPCO * (temperature - kind.temperature_c))
    )
    t = np.arange(n, dtype=np.float64) / fs
    gain = traits.axis_gain

    # Broadband machine noise and the noise-excited resonance, built in the frequency domain.
    freqs = np.fft.rfftfreq(n, 1.0 / fs).astype(np.float64)
    resonance = _bandpass(freqs, resonance_hz, kind.damping)
    noise_scale = kind.noise_g * traits.noise_factor * (1.0 + NOISE_RAISE[state] * s) * load
    axis_noise = gain * np.array([1.0, 1.0, AXIAL_NOISE])
    white = np.fft.rfft(rng.standard_normal((n, 2, 3)), axis=0)
    density = noise_scale / math.sqrt(NOISE_BAND_HZ)  # g/sqrt(Hz), one-sided
    lowpass = 1.0 / (1.0 + 1j * freqs / NOISE_CORNER_HZ)
    spectrum = white[:, 0, :] * (density * math.sqrt(fs / 2.0) * lowpass)[:, None]
    # white noise of one-sided PSD S through the resonance has variance S * pi * zeta * f_n
    res_psd = (RESONANCE_LEVEL * noise_scale) ** 2 / (math.pi * kind.damping * resonance_hz)
    spectrum += white[:, 1, :] * (math.sqrt(res_psd * fs / 2.0) * resonance)[:, None]
    spectrum *= axis_noise[None, :]

    bpfo = kind.bearing.bpfo(shaft_hz)
    if state == "bearing_fault" and s > 0:
        period = 1.0 / bpfo
        count = math.ceil(seconds * bpfo) + 1
        times = rng.uniform(0.0, period) + period * (
            np.arange(count) + rng.normal(0.0, BURST_JITTER, count)
        )
        amplitude = BURST_G * s * load * rng.uniform(0.85, 1.15, count)
        weights = amplitude / (2.0 * kind.damping * 2.0 * math.pi * resonance_hz)
        inside = (times >= 0.0) & (times < n / fs)
        bursts = fs * _impulses(times[inside], weights[inside], fs, n) * resonance
        spectrum += bursts[:, None] * (np.asarray(BURST_AXES) * gain)[None, :]
    signal = np.fft.irfft(spectrum, n, axis=0)

    # Discrete tones: shaft harmonics, blade pass, bearing-fault lines. Radial x/y 90 deg apart.
    tones: list[tuple[float, float, float]] = [
        (shaft_hz, traits.residual_mm_s[0] * load, 0.3 * traits.residual_mm_s[0] * load),
        (2 * shaft_hz, traits.residual_mm_s[1], 0.3 * traits.residual_mm_s[1]),
    ]
    tones += [(k * shaft_hz, r * s * load, a * s * load) for k, r, a in FAULT_TONES[state]]
    if kind.blades:
        tones.append((kind.blades * shaft_hz, kind.blade_pass_mm_s * load, 0.0))
    if state == "bearing_fault":
        tones += [
            ((k + 1) * bpfo, v * s * load, 0.3 * v * s * load)
            for k, v in enumerate(BPFO_TONES_MM_S)
        ]
    phases = rng.uniform(0.0, 2.0 * math.pi, (len(tones), 2))
    for (freq, radial, axial), (phase, axial_phase) in zip(tones, phases, strict=True):
        if freq >= fs / 2.0:
            continue  # above Nyquist: removed by the sensor's anti-alias filter
        peak = math.sqrt(2.0) * 2.0 * math.pi * freq * 1e-3 / G  # g per mm/s RMS
        angle = 2.0 * math.pi * freq * t
        signal[:, 0] += gain[0] * peak * radial * np.cos(angle + phase)
        signal[:, 1] += gain[1] * peak * radial * np.sin(angle + phase)
        signal[:, 2] += gain[2] * peak * axial * np.cos(angle + axial_phase)

    # Sensor: gravity through the mounting tilt, zero-g bias, thermal offset with a slow
    # wander, white sensor noise; then the gain and the full-scale clip.
    tx, ty = traits.tilt_rad
    gravity = np.array([math.sin(tx), math.sin(ty), math.cos(tx) * math.cos(ty)])
    wander_c = (WANDER_C[0] + WANDER_C[1] * abs(drift.temperature_shift_c)) * _wander(rng, t)
    offset = traits.bias_g + traits.tempco * (temperature - T_REF_C)
    signal += gravity + offset + wander_c[:, None] * traits.tempco[None, :]
    signal += rng.normal(0.0, SENSOR_NOISE_DENSITY * math.sqrt(fs / 2.0), (n, 3))
    signal *= drift.gain
    np.clip(signal, -SENSOR_FULL_SCALE, SENSOR_FULL_SCALE, out=signal)
    out = np.ascontiguousarray(signal, dtype=np.float32)
    out.setflags(write=False)
    return Recording(
        machine_id=machine_id,
        machine_type=kind.name,
        condition=state,
        site=site,
        sample_rate=fs,
        signal=out,
        temperature_c=round(temperature, 2),
        index=index,
        rpm=shaft_hz * 60.0,
    )


def _bandpass(freqs: Floats, center_hz: float, damping: float) -> Complex:
    """Second-order resonance, unit gain at ``center_hz``: ``2j z r / (1 - r^2 + 2j z r)``."""
    r = freqs / center_hz
    response: Complex = (2j * damping * r) / (1.0 - r**2 + 2j * damping * r)
    return response


def _impulses(times: Floats, weights: Floats, fs: float, n: int) -> Complex:
    """``sum_k w_k exp(-2j pi f t_k)`` on the rfft grid, with ``t_k`` between samples.

    Each time is split into a whole sample ``m_k`` and a fraction ``d_k`` in [-0.5, 0.5); the
    fractional delay ``exp(-j theta d)`` (``|theta d| <= pi/2``) is a Taylor series, so the
    sum is a few FFTs of sparse sequences instead of one exponential per impulse and bin.
    """
    position = times * fs
    whole = np.floor(position + 0.5)
    fraction = position - whole
    slots = whole.astype(np.int64) % n
    theta = 2.0 * np.pi * np.arange(n // 2 + 1) / n
    total = np.zeros(n // 2 + 1, dtype=np.complex128)
    factor = np.ones(n // 2 + 1, dtype=np.complex128)
    for p in range(TAYLOR_TERMS):
        if p:
            factor = (factor * (-1j * theta) / p).astype(np.complex128)
        sequence = np.zeros(n)
        np.add.at(sequence, slots, weights * fraction**p)
        total += factor * np.fft.rfft(sequence)
    return total


def _wander(rng: np.random.Generator, t: Floats) -> Floats:
    """A slow (0.02-0.3 Hz) smooth wander of unit RMS: three random sinusoids."""
    freqs = rng.uniform(0.02, 0.3, 3)
    phases = rng.uniform(0.0, 2.0 * math.pi, 3)
    waves = np.sin(2.0 * np.pi * freqs[None, :] * t[:, None] + phases[None, :])
    result: Floats = waves.sum(axis=1) * math.sqrt(2.0 / 3.0)
    return result
