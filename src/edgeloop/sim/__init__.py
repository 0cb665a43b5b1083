r"""Simulated vibration of rotating machines: tri-axial accelerometer recordings (pure numpy).

The predictive-maintenance example and the end-to-end demo need data that looks like what an
accelerometer on a motor or pump housing records, in four conditions (``normal``,
``imbalance``, ``misalignment``, ``bearing_fault``), with knobs for drift. Nothing is
downloaded; the same arguments always give byte-identical float32 arrays.

Axes and units
--------------
The machines stand vertically (in-line pumps, roof fans, vertical compressors) with the sensor
on the bearing housing: ``x`` and ``y`` are radial (horizontal), ``z`` is axial and vertical,
so it carries gravity. Values are in g (1 g = 9.80665 m/s^2), float32, shape ``(n, 3)``.

Signal model
------------
``s`` is the fault severity (0 for ``normal``; 1 by default, 0.7-1.3 in a fleet) and
``L ~ U(0.9, 1.1)`` the load of the recording. Per axis, in g::

    a(t) = clip16( gain * ( tones(t) + machine_noise(t) + resonance(t) + bursts(t)
                            + gravity + bias + k_T * (T - 25 + w(t)) + sensor_noise(t) ) )

- Shaft frequency: ``f_r = rpm / 60 * m_r * (1 + U(-0.005, 0.005))`` with the machine's own
  factor ``m_r`` in 1 +- 1 % (slip, supply); ``Recording.rpm`` holds ``60 f_r``.
- Tones are given as vibration velocity ``v`` (mm/s RMS, the ISO 10816 unit) and converted to
  acceleration with ``a_peak = sqrt(2) * 2 pi f * v * 1e-3 / 9.80665`` g. Radial tones are a
  rotating vector, ``x = A cos(2 pi f t + p)``, ``y = A sin(2 pi f t + p)`` (90 deg apart);
  the axial tone has its own phase. Tones at or above Nyquist are dropped (anti-alias filter).

  ============== ======================================= ===========================
  condition      harmonics (radial, axial mm/s at s = 1) other
  ============== ======================================= ===========================
  every          1x: r1 L, 0.3 r1 L; 2x: r2, 0.3 r2       blade pass B f_r, radial
  imbalance      1x: +6.0, +0.6                           housing +1 degC
  misalignment   1x: +1.5, +2.0; 2x: +3.5, +3.0;          noise x1.1, +3 degC
                 3x: +1.2, +1.0
  bearing_fault  lines at BPFO (0.4, 0.12), 2 BPFO        bursts below, noise x1.5,
                 (0.2, 0.06)                              +5 degC
  ============== ======================================= ===========================

  (fault rows scale with ``s`` and ``L``; ``r1 ~ U(0.5, 1.2)``, ``r2 ~ U(0.2, 0.5)`` mm/s is
  the machine's balance grade and fit; ``B`` the vanes / blades / lobes.)
- Machine noise: white with one-sided density ``noise_g * m_n * (1 + raise * s) * L / sqrt(500)``
  g/sqrt(Hz), first-order roll-off above 1 kHz (``m_n ~ U(0.85, 1.2)`` per machine).
- Structural resonance: a second independent white noise through
  ``H(f) = 2j z r / (1 - r^2 + 2j z r)``, ``r = f / f_n``, scaled to an RMS of
  ``1.2 x`` the machine-noise level (white PSD ``S`` through ``H`` has variance
  ``S * pi * z * f_n``). ``f_n = resonance_hz * m_f * (1 - 0.0015 (T - T_nominal))`` with
  ``m_f`` in 1 +- 8 % per machine: a warmer housing is softer. Noise and resonance reach the
  axial axis at 0.7x.
- Bearing fault (outer race): impacts at
  ``BPFO = n/2 * f_r * (1 - d/D * cos(phi))``, start random, each 1 % (of the period) jittered
  for rolling slip, amplitude ``0.5 s L U(0.85, 1.15)`` g at the burst peak. Each impact rings
  the resonance: impulses of weight ``A / (2 z 2 pi f_n)`` through ``H``, placed between samples
  exactly (a Taylor series of the fractional delay), so the bursts are amplitude-modulated
  high-frequency ringing whose envelope repeats at BPFO; axes weighted 1.0, 0.8, 0.4.
- Noise, resonance and bursts are built in the frequency domain (``rfft`` grid, circular, so
  the recording is a stationary excerpt) and are band-limited to Nyquist like a real sensor.
- Sensor: gravity ``(sin tx, sin ty, cos tx cos ty)`` through a mounting tilt of up to 2 deg,
  a zero-g bias ``U(-10, 10)`` mg, an offset temperature coefficient ``k_T`` of
  ``(+1, -1, +1) mg/degC x U(0.5, 1.5)`` around the 25 degC calibration point, a slow thermal
  wander ``w(t)`` (three sinusoids at 0.02-0.3 Hz, amplitude ``0.05 + 0.05 |shift|`` degC)
  and white sensor noise of 200 ug/sqrt(Hz). The output clips at +-16 g.
- Temperature: ``T = temperature_c + o_T + heat * s + N(0, 0.3) + shift`` degC with the
  machine's offset ``o_T ~ N(0, 2)`` (clipped to +-5); ``Recording.temperature_c`` is ``T``
  rounded to 0.01.
- Per machine (seeded by ``machine_id`` only, so a machine is the same machine in every
  recording): ``m_r``, ``m_f``, ``m_n``, axis gains ``U(0.85, 1.15)`` (mounting), ``r1``,
  ``r2``, ``o_T``, tilt, bias and ``k_T``.

Drift
-----
:class:`Drift` per site: ``temperature_shift_c`` raises ``temperature_c``, lowers ``f_n`` by
0.15 %/degC and moves the offset by ``k_T * shift`` plus a larger thermal wander; ``gain``
multiplies the whole sensor output (RMS scales by exactly ``gain``, the random draws do not
change); ``new_machine_type`` swaps in that type's physics (speed, bearing, resonance, noise,
blades) for the site's machines, and ``Recording.machine_type`` reports the swapped type.

Determinism
-----------
The random draws of a recording come from ``np.random.default_rng`` seeded with the SHA-256
of ``(seed, machine_id, condition, index)``; never from Python's ``hash()``.

Built-in machine types (:data:`MACHINE_TYPES`)
----------------------------------------------
============ ==== ========================= ===== ==== ===== ==== ======
name         rpm  bearing: n, d, D (mm), phi f_n   zeta noise T    blades
============ ==== ========================= ===== ==== ===== ==== ======
pump-a       1480 6205: 9, 7.94, 39.04, 0   310   0.08 0.05  45   6
fan-b        985  6206: 9, 9.53, 46.0, 0    260   0.08 0.045 35   8
compressor-c 740  6310: 8, 17.46, 77.5, 0   360   0.06 0.06  62   0
============ ==== ========================= ===== ==== ===== ==== ======

(``f_n`` in Hz, ``noise`` = ``noise_g`` in g, ``T`` = nominal housing temperature in degC.)

BPFO at nominal speed: pump-a 88.4 Hz, fan-b 58.6 Hz, compressor-c 38.2 Hz. The resonances sit
well above BPFO and below 500 Hz, so at the default 1 kHz the bursts ring out between impacts
and envelope analysis works, as it does on real machines at higher sample rates.
"""

from __future__ import annotations

from edgeloop.sim._field import DataSource, FieldData, FieldModel
from edgeloop.sim._fleet import TABLE_SCHEMA, simulate_fleet, to_table, write_recordings
from edgeloop.sim._machines import (
    CONDITIONS,
    MACHINE_TYPES,
    BearingGeometry,
    Condition,
    Drift,
    MachineType,
    Recording,
)
from edgeloop.sim._physics import simulate_recording

__all__ = [
    "CONDITIONS",
    "MACHINE_TYPES",
    "TABLE_SCHEMA",
    "BearingGeometry",
    "Condition",
    "DataSource",
    "Drift",
    "FieldData",
    "FieldModel",
    "MachineType",
    "Recording",
    "simulate_fleet",
    "simulate_recording",
    "to_table",
    "write_recordings",
]
