"""The machine vibration simulator: determinism, layout, spectra, drift and learnability."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop.errors import ValidationFailed
from edgeloop.sim import (
    CONDITIONS,
    MACHINE_TYPES,
    TABLE_SCHEMA,
    BearingGeometry,
    Drift,
    Recording,
    simulate_fleet,
    simulate_recording,
    to_table,
    write_recordings,
)

Floats = npt.NDArray[np.float64]


def _record(**overrides: Any) -> Recording:
    arguments: dict[str, Any] = {
        "machine_id": "m1",
        "machine_type": "pump-a",
        "condition": "normal",
        "seed": 7,
    }
    arguments.update(overrides)
    return simulate_recording(**arguments)


def _spectrum(signal: npt.NDArray[Any], rate: float) -> tuple[Floats, Floats]:
    """Single-sided amplitude spectrum (g peak) of each axis, mean removed, Hann window."""
    x = signal.astype(np.float64)
    x = x - x.mean(axis=0)
    window = np.hanning(len(x))[:, None]
    amplitude = np.abs(np.fft.rfft(x * window, axis=0)) * 2.0 / window.sum()
    return np.fft.rfftfreq(len(x), 1.0 / rate).astype(np.float64), amplitude


def _at(freqs: Floats, amplitude: Floats, hz: float) -> Floats:
    """The largest amplitude within one bin of ``hz``, per axis."""
    step = freqs[1] - freqs[0]
    near = np.abs(freqs - hz) <= 1.5 * step
    result: Floats = amplitude[near].max(axis=0)
    return result


def _envelope_spectrum(x: Floats, rate: float, low: float, high: float) -> tuple[Floats, Floats]:
    """Band-pass ``x`` to [low, high] Hz, take |analytic signal| (Hilbert via FFT), return the
    envelope's amplitude spectrum."""
    spectrum = np.fft.fft(x - x.mean())
    freqs = np.fft.fftfreq(len(x), 1.0 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0  # positive band only: analytic, doubled
    envelope = np.abs(np.fft.ifft(2.0 * spectrum))
    f, a = _spectrum(envelope[:, None], rate)
    return f, a[:, 0]


def _rms(recording: Recording) -> Floats:
    x = recording.signal.astype(np.float64)
    result: Floats = np.sqrt(((x - x.mean(axis=0)) ** 2).mean(axis=0))
    return result


# --- determinism and layout ------------------------------------------------------------------


def test_same_arguments_give_byte_identical_signals() -> None:
    for condition in CONDITIONS:
        a, b = _record(condition=condition), _record(condition=condition)
        assert a.signal.tobytes() == b.signal.tobytes()
        assert (a.temperature_c, a.rpm) == (b.temperature_c, b.rpm)
    base = _record().signal.tobytes()
    assert _record(seed=8).signal.tobytes() != base
    assert _record(index=1).signal.tobytes() != base
    assert _record(machine_id="m2").signal.tobytes() != base
    first = simulate_fleet(machines=2, recordings_per_condition=2, seconds=0.5, seed=3)
    again = simulate_fleet(machines=2, recordings_per_condition=2, seconds=0.5, seed=3)
    assert [r.signal.tobytes() for r in first] == [r.signal.tobytes() for r in again]


def test_recording_shape_dtype_and_metadata() -> None:
    recording = _record(
        condition="imbalance", seconds=1.5, sample_rate=800.0, site="north", index=3
    )
    assert recording.signal.shape == (1200, 3)
    assert recording.signal.dtype == np.float32
    assert not recording.signal.flags.writeable
    assert recording.sample_rate == 800.0
    assert (recording.machine_id, recording.machine_type) == ("m1", "pump-a")
    assert (recording.condition, recording.site, recording.index) == ("imbalance", "north", 3)
    assert recording.sample_id == "m1/imbalance/0003"
    assert abs(recording.rpm / 1480.0 - 1.0) < 0.016  # +-1 % machine, +-0.5 % recording
    assert 35.0 < recording.temperature_c < 60.0
    assert np.isfinite(recording.signal).all()


def test_normal_recordings_have_plausible_levels() -> None:
    fleet = simulate_fleet(
        machines=6,
        recordings_per_condition=3,
        machine_types=tuple(MACHINE_TYPES),
        conditions=("normal",),
        seed=1,
    )
    for recording in fleet:
        rms = _rms(recording)
        mean = recording.signal.astype(np.float64).mean(axis=0)
        assert ((rms[:2] >= 0.05) & (rms[:2] <= 0.2)).all(), (recording.machine_type, rms)
        assert 0.03 <= rms[2] <= 0.2, (recording.machine_type, rms)
        assert abs(mean[2] - 1.0) < 0.06  # gravity on the vertical axis, plus offsets
        assert (np.abs(mean[:2]) < 0.1).all()  # small tilt and zero-g offset


# --- spectral signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("machine_type", ["pump-a", "fan-b"])
def test_imbalance_is_a_radial_line_at_the_shaft_frequency(machine_type: str) -> None:
    normal = _record(machine_type=machine_type)
    faulty = _record(machine_type=machine_type, condition="imbalance")
    shaft = faulty.rpm / 60.0
    freqs, amplitude = _spectrum(faulty.signal, faulty.sample_rate)
    for axis in (0, 1):
        peak = freqs[np.argmax(amplitude[:, axis])]
        assert abs(peak - shaft) < 1.0, (axis, peak, shaft)  # the biggest line of x and y
    f_normal, a_normal = _spectrum(normal.signal, normal.sample_rate)
    assert (
        _at(freqs, amplitude, shaft)[:2] > 3 * _at(f_normal, a_normal, normal.rpm / 60)[:2]
    ).all()
    assert _at(freqs, amplitude, shaft)[2] < 0.3 * _at(freqs, amplitude, shaft)[:2].min()
    raw = np.fft.rfft(faulty.signal.astype(np.float64), axis=0)
    k = int(np.argmin(np.abs(freqs - shaft)))
    phase = math.degrees(float(np.angle(raw[k, 0] * np.conj(raw[k, 1]))))
    assert 70.0 < abs(phase) < 110.0  # a rotating force: x and y 90 degrees apart


@pytest.mark.parametrize("machine_type", ["pump-a", "fan-b"])
def test_misalignment_is_a_line_at_twice_the_shaft_frequency_with_axial_energy(
    machine_type: str,
) -> None:
    normal = _record(machine_type=machine_type)
    faulty = _record(machine_type=machine_type, condition="misalignment")
    shaft = faulty.rpm / 60.0
    freqs, amplitude = _spectrum(faulty.signal, faulty.sample_rate)
    low = freqs < 4.5 * shaft
    for axis in range(3):
        peak = freqs[low][np.argmax(amplitude[low, axis])]
        assert abs(peak - 2 * shaft) < 1.0, (axis, peak, 2 * shaft)
    f_normal, a_normal = _spectrum(normal.signal, normal.sample_rate)
    assert (
        _at(freqs, amplitude, 2 * shaft) > 4 * _at(f_normal, a_normal, 2 * normal.rpm / 60)
    ).all()
    assert (_at(freqs, amplitude, 3 * shaft) > _at(f_normal, a_normal, 3 * normal.rpm / 60)).all()

    def axial_shaft_energy(recording: Recording) -> float:
        f, a = _spectrum(recording.signal, recording.sample_rate)
        band = (f > 0.5 * recording.rpm / 60) & (f < 3.5 * recording.rpm / 60)
        return float((a[band, 2] ** 2).sum())

    assert axial_shaft_energy(faulty) > 10 * axial_shaft_energy(normal)  # strong axial 1x-3x
    assert _rms(faulty)[2] > 1.2 * _rms(normal)[2]


@pytest.mark.parametrize("machine_type", sorted(MACHINE_TYPES))
def test_bearing_fault_envelope_spectrum_peaks_at_bpfo(machine_type: str) -> None:
    kind = MACHINE_TYPES[machine_type]
    peaks: dict[str, float] = {}
    for condition in ("normal", "bearing_fault"):
        recording = _record(machine_type=machine_type, condition=condition, seed=3)
        bpfo = kind.bearing.bpfo(recording.rpm / 60.0)
        rate = recording.sample_rate
        band = (0.6 * kind.resonance_hz, 0.49 * rate)
        freqs, envelope = _envelope_spectrum(recording.signal[:, 0].astype(np.float64), rate, *band)
        search = (freqs > 5.0) & (freqs < 1.6 * bpfo)
        if condition == "bearing_fault":
            found = freqs[search][np.argmax(envelope[search])]
            assert abs(found - bpfo) < 1.0, (found, bpfo)  # the envelope repeats at BPFO
            assert envelope[search].max() > 4 * np.median(envelope[search])  # and stands out
        peaks[condition] = float(_at(freqs, envelope[:, None], bpfo)[0])
    assert peaks["bearing_fault"] > 5 * peaks["normal"]
    faulty = _record(machine_type=machine_type, condition="bearing_fault", seed=3)
    assert (_rms(faulty)[:2] > 1.5 * _rms(_record(machine_type=machine_type, seed=3))[:2]).all()


def test_bpfo_follows_the_bearing_formula() -> None:
    deep_groove = BearingGeometry(n_balls=9, ball_d_mm=7.94, pitch_d_mm=39.04)
    assert deep_groove.bpfo(24.0) == pytest.approx(4.5 * 24.0 * (1 - 7.94 / 39.04))
    angular = BearingGeometry(n_balls=12, ball_d_mm=10.0, pitch_d_mm=50.0, contact_angle_deg=40)
    assert angular.bpfo(10.0) == pytest.approx(6 * 10.0 * (1 - 0.2 * math.cos(math.radians(40))))
    assert MACHINE_TYPES["pump-a"].bearing.bpfo(1480 / 60) == pytest.approx(88.42, abs=0.01)


# --- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", CONDITIONS)
def test_gain_drift_scales_the_whole_output(condition: str) -> None:
    clean = _record(condition=condition).signal.astype(np.float64)
    decayed = _record(condition=condition, drift=Drift(gain=0.7)).signal.astype(np.float64)
    np.testing.assert_allclose(decayed, 0.7 * clean, rtol=1e-6, atol=1e-7)
    rms = np.sqrt((decayed**2).mean(axis=0)) / np.sqrt((clean**2).mean(axis=0))
    np.testing.assert_allclose(rms, 0.7, rtol=1e-6)


def test_temperature_drift_warms_softens_the_resonance_and_moves_the_offset() -> None:
    clean = _record(seconds=4.0)
    warm = _record(seconds=4.0, drift=Drift(temperature_shift_c=20.0))
    assert warm.temperature_c == pytest.approx(clean.temperature_c + 20.0, abs=0.011)

    def centroid(recording: Recording) -> float:
        freqs, amplitude = _spectrum(recording.signal, recording.sample_rate)
        band = (freqs > 200.0) & (freqs < 420.0)
        power = (amplitude[band, :2] ** 2).sum(axis=1)
        return float((freqs[band] * power).sum() / power.sum())

    assert centroid(warm) < centroid(clean) - 3.0  # -0.15 %/degC on a ~310 Hz resonance
    shift = warm.signal.astype(np.float64).mean(axis=0) - clean.signal.mean(axis=0)
    assert (np.abs(shift) > 0.005).all() and (np.abs(shift) < 0.05).all()  # ~1 mg/degC


def test_new_machine_type_drift_changes_the_shaft_frequency() -> None:
    def dominant(recording: Recording) -> float:
        freqs, amplitude = _spectrum(recording.signal, recording.sample_rate)
        low = (freqs > 5.0) & (freqs < 100.0)
        return float(freqs[low][np.argmax(amplitude[low, 0])])

    pump = _record(condition="imbalance")
    swapped = _record(condition="imbalance", drift=Drift(new_machine_type="compressor-c"))
    assert swapped.machine_type == "compressor-c"
    assert abs(dominant(pump) - 1480 / 60) < 0.5
    assert abs(dominant(swapped) - 740 / 60) < 0.5
    assert abs(swapped.rpm - 740) < 15


def test_fleet_layout_and_per_site_drift() -> None:
    fleet = simulate_fleet(
        machines=4,
        recordings_per_condition=2,
        seconds=0.5,
        drift={"plant-2": Drift(gain=0.5, new_machine_type="compressor-c")},
    )
    assert len(fleet) == 4 * 4 * 2
    assert [r.sample_id for r in fleet[:3]] == [
        "machine-00/normal/0000",
        "machine-00/normal/0001",
        "machine-00/imbalance/0000",
    ]
    layout = {(r.machine_id, r.site, r.machine_type) for r in fleet}
    assert layout == {
        ("machine-00", "plant-1", "pump-a"),
        ("machine-01", "plant-1", "fan-b"),
        ("machine-02", "plant-2", "compressor-c"),
        ("machine-03", "plant-2", "compressor-c"),
    }
    assert all(r.signal.shape == (500, 3) for r in fleet)
    undrifted = simulate_fleet(machines=4, recordings_per_condition=2, seconds=0.5)
    for a, b in zip(fleet, undrifted, strict=True):
        if a.site == "plant-1":
            assert a.signal.tobytes() == b.signal.tobytes()
        else:
            assert abs(a.signal[:, 2].mean() - 0.5 * b.signal[:, 2].mean()) < 0.05
    # machines differ from each other: speed, levels
    speeds = {r.machine_id: r.rpm for r in undrifted if r.sample_id.endswith("normal/0000")}
    assert speeds["machine-00"] != speeds["machine-02"]


# --- table and files -------------------------------------------------------------------------


def test_to_table_schema_is_exact() -> None:
    fleet = simulate_fleet(machines=2, recordings_per_condition=2, seconds=0.25)
    table = to_table(fleet)
    expected = pa.schema(
        [
            ("sample_id", pa.string()),
            ("label", pa.string()),
            ("machine_id", pa.string()),
            ("machine_type", pa.string()),
            ("site", pa.string()),
            ("temperature_c", pa.float64()),
            ("acc_x", pa.list_(pa.float32())),
            ("acc_y", pa.list_(pa.float32())),
            ("acc_z", pa.list_(pa.float32())),
        ]
    )
    assert table.schema.equals(expected) and TABLE_SCHEMA.equals(expected)
    assert table.num_rows == len(fleet) == 16
    assert table.column("sample_id").to_pylist()[:2] == [
        "machine-00/normal/0000",
        "machine-00/normal/0001",
    ]
    assert table.column("label").to_pylist() == [r.condition for r in fleet]
    row = 5
    for axis, name in enumerate(("acc_x", "acc_y", "acc_z")):
        values = np.asarray(table.column(name)[row].values.to_numpy(), dtype=np.float32)
        assert values.tobytes() == np.ascontiguousarray(fleet[row].signal[:, axis]).tobytes()
    assert to_table([]).schema.equals(expected)


def test_to_table_rejects_duplicate_ids_and_mixed_rates() -> None:
    with pytest.raises(ValidationFailed, match="distinct index"):
        to_table([_record(), _record(seed=9)])
    with pytest.raises(ValidationFailed, match="sample rates"):
        to_table([_record(), _record(index=1, sample_rate=500.0)])


def test_write_recordings_writes_label_folders_of_csv(tmp_path: Path) -> None:
    fleet = simulate_fleet(machines=2, recordings_per_condition=2, seconds=0.5)
    root = write_recordings(fleet, tmp_path / "board")
    assert root == tmp_path / "board"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.csv"))
    assert len(files) == len(fleet)
    assert sorted(p.name for p in root.iterdir()) == sorted(CONDITIONS)
    assert "imbalance/machine-01-0001.csv" in files
    lines = (root / "normal" / "machine-00-0000.csv").read_text().splitlines()
    assert lines[0] == "timestamp,acc_x,acc_y,acc_z"
    assert len(lines) == 501
    assert lines[1].startswith("0,") and lines[2].startswith("1,")
    data = np.loadtxt(root / "normal" / "machine-00-0000.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(data[:, 1:], fleet[0].signal, atol=6e-7)
    fast = write_recordings([_record(sample_rate=3200.0, seconds=0.1)], tmp_path / "fast")
    header = (fast / "normal" / "m1-0000.csv").read_text().splitlines()[:3]
    assert header[0] == "timestamp_ms,acc_x,acc_y,acc_z"  # sub-millisecond steps
    assert header[1].startswith("0,") and header[2].startswith("0.3125,")


def test_written_folders_read_back_as_the_same_recordings(tmp_path: Path) -> None:
    from edgeloop.datasets import LabelFrom, read_paths

    fleet = simulate_fleet(machines=2, recordings_per_condition=1, seconds=0.5)
    result = read_paths([write_recordings(fleet, tmp_path / "rec")], label_from=LabelFrom("folder"))
    assert result.sensor is not None
    assert result.sensor.sample_rate == 1000.0
    assert result.sensor.axes == ("acc_x", "acc_y", "acc_z")
    table = to_table(fleet)
    read = dict(zip(result.table.column("sample_id").to_pylist(), range(len(fleet)), strict=True))
    for i, recording in enumerate(fleet):
        row = read[f"{recording.condition}/{recording.machine_id}-{recording.index:04d}.csv"]
        assert result.table.column("label")[row].as_py() == table.column("label")[i].as_py()
        got = np.asarray(result.table.column("acc_z")[row].values.to_numpy())
        np.testing.assert_allclose(got, recording.signal[:, 2], atol=6e-7)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"machine_type": "turbine-x"}, "machine_type must be one of"),
        ({"seconds": -1.0}, "seconds must be above 0"),
        ({"seconds": 0.0}, "seconds must be above 0"),
        ({"seconds": float("nan")}, "seconds must be"),
        ({"seconds": 0.001}, "samples"),
        ({"condition": "cavitation"}, "condition must be one of"),
        ({"machine_id": "a/b"}, "machine_id must be"),
        ({"machine_id": ""}, "machine_id must be"),
        ({"sample_rate": 0.0}, "sample_rate must be"),
        ({"severity": -0.5}, "severity must be"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"index": -1}, "index must be at least 0"),
        ({"site": " "}, "site must be a non-empty string"),
        ({"drift": Drift(new_machine_type="turbine-x")}, "drift.new_machine_type must be"),
    ],
)
def test_invalid_recording_arguments_raise(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        _record(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"machine_types": ("pump-a", "turbine-x")}, "machine_types must be one of"),
        ({"conditions": ("normal", "cavitation")}, "condition must be one of"),
        ({"sites": "plant-1"}, "sites must be a list"),
        ({"sites": ()}, "sites must not be empty"),
        ({"sites": ("a", "a")}, "must not repeat"),
        ({"machines": 0}, "machines must be at least 1"),
        ({"recordings_per_condition": 0}, "recordings_per_condition must be at least 1"),
        ({"seconds": -2.0}, "seconds must be above 0"),
        ({"drift": {"plant-9": Drift()}}, "not in sites"),
        ({"drift": {"plant-1": Drift(new_machine_type="x")}}, "new_machine_type must be one"),
    ],
)
def test_invalid_fleet_arguments_raise(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        simulate_fleet(**overrides)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"gain": 0.0}, "gain must be above 0"),
        ({"gain": float("inf")}, "gain must be"),
        ({"temperature_shift_c": 500.0}, "temperature_shift_c must be"),
        ({"new_machine_type": 3}, "new_machine_type must be"),
    ],
)
def test_invalid_drift_raises(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        Drift(**arguments)


# --- learnability ----------------------------------------------------------------------------


def _features(recording: Recording, shaft_hz: float) -> Floats:
    """Per axis: log RMS, log line amplitude near 1x/2x/3x the nominal shaft speed, log energy
    above 150 Hz, kurtosis."""
    x = recording.signal.astype(np.float64)
    x = x - x.mean(axis=0)
    freqs, amplitude = _spectrum(recording.signal, recording.sample_rate)
    parts = [np.log(x.std(axis=0))]
    for k in (1, 2, 3):
        band = (freqs > 0.9 * k * shaft_hz) & (freqs < 1.1 * k * shaft_hz)
        parts.append(np.log(amplitude[band].max(axis=0)))
    parts.append(np.log((amplitude[freqs > 150.0] ** 2).sum(axis=0)))
    parts.append((x**4).mean(axis=0) / x.var(axis=0) ** 2)
    return np.concatenate(parts)


def test_conditions_are_learnable_across_machines() -> None:
    fleet = simulate_fleet(machines=3, machine_types=("pump-a",), sites=("plant-1",), seed=11)
    shaft = MACHINE_TYPES["pump-a"].rpm / 60.0
    features = np.array([_features(r, shaft) for r in fleet])
    labels = np.array([r.condition for r in fleet])
    machines = np.array([r.machine_id for r in fleet])
    train, test = machines != "machine-02", machines == "machine-02"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(features[train], labels[train])
    accuracy = float((model.predict(features[test]) == labels[test]).mean())
    assert accuracy >= 0.9
    # ... and not because recordings are copies: every recording differs, machines differ
    assert len({r.signal.tobytes() for r in fleet}) == len(fleet)
    normal = features[labels == "normal"]
    per_machine = [
        normal[machines[labels == "normal"] == m].mean(axis=0) for m in sorted(set(machines))
    ]
    assert not np.allclose(per_machine[0], per_machine[1], rtol=0.02)
