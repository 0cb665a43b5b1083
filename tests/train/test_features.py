"""Feature blocks: shapes and names, sine placement, stats against numpy/scipy, a float64 and
a sequential-sum reference within the port tolerance, serialisation, determinism, errors."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.errors import ValidationFailed
from edgeloop.train import FeaturePipeline, FlattenBlock, SpectralBlock, windows_from_table
from edgeloop.train.features import PORT_TOLERANCE, STATS

RATE = 100.0
AXES = ("acc_x", "acc_y", "acc_z")
F32 = npt.NDArray[np.float32]
PROPERTY = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _noisy(n_windows: int = 6, n_samples: int = 256, seed: int = 0) -> F32:
    """Tones plus noise on an offset, different per window and axis."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / RATE
    freqs = rng.uniform(1.0, 45.0, (n_windows, 1, len(AXES)))
    tones = rng.uniform(0.5, 3.0, freqs.shape) * np.sin(2 * np.pi * freqs * t[None, :, None])
    noise = rng.normal(0.0, 0.3, (n_windows, n_samples, len(AXES)))
    return (tones + noise + rng.uniform(-5, 5, (n_windows, 1, len(AXES)))).astype(np.float32)


def _sine(freq: float, n_samples: int = 256, amplitude: float = 1.0) -> F32:
    t = np.arange(n_samples) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :, None]


def _features(pipeline: FeaturePipeline, windows: F32) -> dict[str, F32]:
    return dict(zip(pipeline.feature_names(), pipeline.transform(windows).T, strict=True))


def test_shapes_names_and_dtype() -> None:
    pipeline = FeaturePipeline(blocks=(FlattenBlock(), SpectralBlock(RATE)), axes=AXES)
    out = pipeline.transform(_noisy())
    names = pipeline.feature_names()
    assert out.shape == (6, 3 * 7 + 3 * (8 + 2 * 3)) == (6, len(names))
    assert out.dtype == np.float32
    assert len(set(names)) == len(names)
    assert names[:2] == ["acc_x.mean", "acc_x.min"]
    assert {"acc_x.rms", "acc_y.band_3", "acc_z.peak_1_hz", "acc_z.peak_3_mag"} <= set(names)
    assert pipeline.transform(np.zeros((0, 256, 3), np.float32)).shape == (0, len(names))


@pytest.mark.parametrize("freq", [1.3, 3.0, 7.7, 12.5, 21.3, 33.0, 44.0])
@pytest.mark.parametrize("n_samples", [100, 256, 1000])
def test_sine_lands_in_its_band_and_is_the_first_peak(freq: float, n_samples: int) -> None:
    block = SpectralBlock(RATE)
    pipeline = FeaturePipeline(blocks=(block,), axes=("x",))
    found = _features(pipeline, _sine(freq, n_samples))
    bin_hz = RATE / block.fft_length
    energies = [float(found[f"x.band_{i + 1}"][0]) for i in range(block.n_bands)]
    start, stop = block.band_bins()[int(np.argmax(energies))]
    assert start - 1 <= freq / bin_hz <= stop  # within one bin of the loudest band
    assert abs(float(found["x.peak_1_hz"][0]) - freq) <= bin_hz


@pytest.mark.parametrize("n_samples", [256, 1024])
def test_a_sine_on_a_bin_has_its_amplitude_as_magnitude(n_samples: int) -> None:
    pipeline = FeaturePipeline(blocks=(SpectralBlock(RATE, n_peaks=1),), axes=("x",))
    found = _features(pipeline, _sine(12.5, n_samples, amplitude=2.5))  # bin 32 of 256
    assert found["x.peak_1_hz"][0] == 12.5
    assert found["x.peak_1_mag"][0] == pytest.approx(2.5, rel=1e-5)


def test_bands_are_band_energies_with_the_log_floor() -> None:
    bands = ((10.0, 15.0), (30.0, 50.0))
    block = SpectralBlock(RATE, bands=bands, log=False, n_peaks=0)
    assert block.band_bins() == ((26, 39), (77, 129))  # 10 < k * 0.390625 <= 15, ...
    out = FeaturePipeline(blocks=(block,), axes=("x",)).transform(_sine(12.5, amplitude=2.0))
    assert out[0, 0] == pytest.approx(4 * (1 + 0.25 + 0.25), rel=1e-4)  # Hann: 1, 1/2, 1/2
    assert out[0, 1] < 1e-10
    logged = FeaturePipeline(blocks=(SpectralBlock(RATE, bands=bands, n_peaks=0),), axes=("x",))
    assert logged.transform(_sine(12.5, amplitude=2.0))[0, 0] == pytest.approx(math.log10(6))
    silent = logged.transform(np.zeros((1, 256, 1), np.float32))
    assert silent.tolist() == [[pytest.approx(-10.0)] * 2]  # log10(0 + 1e-10)


@pytest.mark.parametrize("fft_length", [16, 32, 64, 256, 1024])
@pytest.mark.parametrize("n_bands", [1, 3, 8])
def test_default_bands_cover_every_bin_once(fft_length: int, n_bands: int) -> None:
    block = SpectralBlock(RATE, fft_length=fft_length, n_bands=n_bands, n_peaks=1)
    bins = block.band_bins()
    assert len(bins) == n_bands
    assert bins[0][0] == 1 and bins[-1][1] == fft_length // 2 + 1
    assert all(a < b for a, b in bins)
    assert all(left[1] == right[0] for left, right in itertools.pairwise(bins))
    assert block.band_edges()[-1][1] == RATE / 2


def test_long_windows_average_whole_frames_and_drop_the_rest() -> None:
    block = SpectralBlock(RATE, fft_length=64)
    x = np.random.default_rng(3).normal(size=200).astype(np.float32)  # 3 frames + 8 samples
    frames = (x[:192] - x.astype(np.float64).mean()).reshape(3, 64) * np.hanning(65)[:-1]
    expected = np.abs(np.fft.rfft(frames, axis=-1)).mean(axis=0) * 4 / 64
    np.testing.assert_allclose(block.magnitude(x), expected, rtol=1e-4, atol=1e-5)
    shuffled = np.concatenate([x[:192], x[192:][::-1]])  # same mean, different rest
    np.testing.assert_allclose(block.magnitude(shuffled), block.magnitude(x), rtol=1e-6)


def test_filters_attenuate_the_other_side_of_the_cutoff() -> None:
    def peak(filter_: Any, freq: float) -> float:
        block = SpectralBlock(RATE, n_peaks=1, filter=filter_, filter_cutoff=5.0)
        return float(
            _features(FeaturePipeline(blocks=(block,), axes=("x",)), _sine(freq))["x.peak_1_mag"][0]
        )

    assert peak("lowpass", 2.0) > 0.8 and peak("lowpass", 40.0) < 0.15
    assert peak("highpass", 25.0) > 0.8 and peak("highpass", 1.0) < 0.3
    rc, dt = 1 / (2 * math.pi * 5.0), 1 / RATE
    low = SpectralBlock(RATE, filter="lowpass", filter_cutoff=5.0).filter_coefficients()
    high = SpectralBlock(RATE, filter="highpass", filter_cutoff=5.0).filter_coefficients()
    assert low == pytest.approx((dt / (rc + dt), 0.0, dt / (rc + dt) - 1), rel=1e-6)
    assert high == pytest.approx((rc / (rc + dt), -rc / (rc + dt), -rc / (rc + dt)), rel=1e-6)
    assert all(float(np.float32(c)) == c for c in low + high)


@PROPERTY
@given(
    st.integers(2, 300),
    st.sampled_from(["normal", "exponential", "uniform", "offset"]),
    st.integers(0, 2**32 - 1),
)
def test_stats_match_numpy_and_scipy(n_samples: int, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = {
        "normal": lambda: rng.normal(0, 2, n_samples),
        "exponential": lambda: rng.exponential(3, n_samples),
        "uniform": lambda: rng.uniform(-1, 1, n_samples),
        "offset": lambda: 1000 + rng.normal(0, 5, n_samples),
    }[kind]()
    x = raw.astype(np.float32)
    got = _features(FeaturePipeline(blocks=(FlattenBlock(),), axes=("x",)), x[None, :, None])
    ref = x.astype(np.float64)
    expected = {
        "mean": ref.mean(),
        "min": ref.min(),
        "max": ref.max(),
        "rms": np.sqrt(np.mean(ref**2)),
        "std": ref.std(ddof=0),
        "skewness": scipy.stats.skew(ref, bias=True),
        "kurtosis": scipy.stats.kurtosis(ref, fisher=True, bias=True),
    }
    for name, value in expected.items():
        assert got[f"x.{name}"][0] == pytest.approx(value, rel=2e-4, abs=2e-4), name


def test_constant_windows_have_zero_spread_skewness_and_kurtosis() -> None:
    windows = np.full((2, 64, 1), 0.1, np.float32)
    windows[1] = 9.81
    got = _features(FeaturePipeline(blocks=(FlattenBlock(),), axes=("x",)), windows)
    assert (
        got["x.std"].tolist() == got["x.skewness"].tolist() == got["x.kurtosis"].tolist() == [0, 0]
    )
    assert got["x.mean"].tolist() == [np.float32(0.1), np.float32(9.81)]


def _within_port_tolerance(actual: F32, expected: npt.NDArray[Any]) -> None:
    np.testing.assert_allclose(
        actual, expected, rtol=PORT_TOLERANCE["rtol"], atol=PORT_TOLERANCE["atol"]
    )


def test_a_sequential_float32_port_of_the_stats_is_within_tolerance() -> None:
    windows = _noisy(n_windows=8, n_samples=4096, seed=5)
    out = FeaturePipeline(blocks=(FlattenBlock(),), axes=AXES).transform(windows)
    x = np.moveaxis(windows, 2, 1)  # (w, axes, n), sums in order, as a C loop would
    n = np.float32(x.shape[-1])

    def total(values: F32) -> F32:
        return np.cumsum(values, axis=-1, dtype=np.float32)[..., -1]

    mean = x[..., 0] + total(x - x[..., :1]) / n
    d = x - mean[..., None]
    m2, m3, m4 = (total(d**k) / n for k in (2, 3, 4))
    stats = [mean, x.min(-1), x.max(-1), np.sqrt(total(x * x) / n), np.sqrt(m2)]
    stats += [m3 / m2**1.5, m4 / m2**2 - 3]
    _within_port_tolerance(out, np.stack(stats, axis=-1).reshape(len(x), -1))


def test_spectral_features_match_a_float64_reference_within_tolerance() -> None:
    windows = _noisy(n_windows=8, n_samples=512, seed=9)
    for filter_, cutoff in (("none", None), ("lowpass", 20.0), ("highpass", 2.0)):
        block = SpectralBlock(RATE, filter=filter_, filter_cutoff=cutoff)  # type: ignore[arg-type]
        out = FeaturePipeline(blocks=(block,), axes=AXES).transform(windows)
        b0, b1, a1 = block.filter_coefficients()
        expected = []
        for w in range(len(windows)):
            for a in range(len(AXES)):
                x = windows[w, :, a].astype(np.float64)
                x = x - x.mean()
                y, px, py = np.empty_like(x), 0.0, 0.0
                for i, xi in enumerate(x):
                    y[i] = py = b0 * xi + b1 * px - a1 * py
                    px = xi
                frames = y.reshape(2, 256) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256))
                mag = np.abs(np.fft.rfft(frames, axis=-1)).mean(axis=0) * 4 / 256
                energy = [np.log10((mag[s:e] ** 2).sum() + 1e-10) for s, e in block.band_bins()]
                inner = mag[1:-1]
                peak = (inner > mag[:-2]) & (inner >= mag[2:]) & (inner > 1e-4 * inner.max())
                top = sorted(np.flatnonzero(peak), key=lambda k: (-inner[k], k))[:3]
                expected.append(energy + [v for k in top for v in ((k + 1) * RATE / 256, inner[k])])
        _within_port_tolerance(out, np.asarray(expected).reshape(out.shape))


def test_transform_is_deterministic_and_vectorised_equals_a_loop() -> None:
    pipeline = FeaturePipeline(
        blocks=(
            FlattenBlock(),
            SpectralBlock(RATE, fft_length=128, filter="lowpass", filter_cutoff=9.0),
        ),
        axes=AXES,
    )
    windows = _noisy(n_windows=12, n_samples=300)
    out = pipeline.transform(windows)
    assert np.array_equal(out, pipeline.transform(windows.copy()))
    assert np.array_equal(out, FeaturePipeline.from_dict(pipeline.to_dict()).transform(windows))
    looped = np.concatenate([pipeline.transform(windows[i : i + 1]) for i in range(len(windows))])
    assert np.array_equal(out, looped)
    assert np.array_equal(out, pipeline.transform(windows.astype(np.float64)))


def test_to_dict_round_trips_through_json_and_records_derived_constants() -> None:
    pipeline = FeaturePipeline(
        blocks=(
            FlattenBlock(stats=("rms", "kurtosis")),
            SpectralBlock(50.0, fft_length=64, bands=((1, 5), (5.5, 25)), n_peaks=2, log=False),
            SpectralBlock(RATE, filter="highpass", filter_cutoff=0.5),
        ),
        axes=("gyro_x",),
    )
    data = json.loads(json.dumps(pipeline.to_dict()))
    assert FeaturePipeline.from_dict(data) == pipeline
    assert data["format"] == "edgeloop.features/1"
    spectral = data["blocks"][1]
    assert spectral["bands"] == [[1.0, 5.0], [5.5, 25.0]]
    assert spectral["derived"]["band_bins"] == [[2, 7], [8, 33]]
    assert data["blocks"][2]["derived"]["filter_coefficients"][0] == pytest.approx(0.9695, abs=1e-4)
    assert data["blocks"][0]["derived"] == {"variance_floor": 1e-18}
    with pytest.raises(ValidationFailed, match="blocks\\[0\\]"):
        FeaturePipeline.from_dict(data | {"blocks": [{"type": "flatten", "stat": ["rms"]}]})
    with pytest.raises(ValidationFailed, match="type"):
        FeaturePipeline.from_dict(data | {"blocks": [{"type": "wavelet"}]})
    with pytest.raises(ValidationFailed, match="format"):
        FeaturePipeline.from_dict(data | {"format": "edgeloop.features/9"})


def test_operation_counts_scale_with_axes_samples_and_frames() -> None:
    one = FeaturePipeline(blocks=(FlattenBlock(), SpectralBlock(RATE)), axes=("x",))
    three = FeaturePipeline(blocks=one.blocks, axes=AXES)
    counts = one.operation_counts(256)
    assert set(counts) == {"adds", "muls", "divs", "sqrts", "logs", "compares", "fft_butterflies"}
    assert all(isinstance(v, int) and v > 0 for v in counts.values())
    assert three.operation_counts(256) == {k: 3 * v for k, v in counts.items()}
    assert counts["fft_butterflies"] == 256 // 4 * 8 and counts["logs"] == 8
    assert one.operation_counts(1024)["fft_butterflies"] == 4 * counts["fft_butterflies"]
    assert one.operation_counts(512)["adds"] > counts["adds"]
    rms_only = FeaturePipeline(blocks=(FlattenBlock(stats=("rms",)),), axes=("x",))
    assert rms_only.operation_counts(100) == dict.fromkeys(counts, 0) | {
        "adds": 100,
        "muls": 100,
        "divs": 1,
        "sqrts": 1,
    }


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SpectralBlock(RATE, fft_length=100), "fft_length"),
        (lambda: SpectralBlock(RATE, fft_length=8), "fft_length"),
        (lambda: SpectralBlock(0.0), "sample_rate"),
        (lambda: SpectralBlock(RATE, bands=((0.0, 10.0),)), "bands\\[0\\]"),
        (lambda: SpectralBlock(RATE, bands=((10.0, 60.0),)), "bands\\[0\\]"),
        (lambda: SpectralBlock(RATE, bands=((10.0, 10.1),)), "no FFT bin"),
        (lambda: SpectralBlock(RATE, bands=()), "bands"),
        (lambda: SpectralBlock(RATE, filter="lowpass"), "filter_cutoff"),
        (lambda: SpectralBlock(RATE, filter_cutoff=5.0), "filter_cutoff"),
        (lambda: SpectralBlock(RATE, filter="highpass", filter_cutoff=50.0), "filter_cutoff"),
        (lambda: SpectralBlock(RATE, filter="bandpass", filter_cutoff=5.0), "filter"),  # type: ignore[arg-type]
        (lambda: SpectralBlock(RATE, fft_length=16, n_bands=9), "n_bands"),
        (lambda: SpectralBlock(RATE, n_peaks=-1), "n_peaks"),
        (lambda: FlattenBlock(stats=("mean", "median")), "stats"),
        (lambda: FlattenBlock(stats=("mean", "mean")), "stats"),
        (lambda: FlattenBlock(stats=()), "stats"),
        (lambda: FeaturePipeline(blocks=(), axes=("x",)), "blocks"),
        (lambda: FeaturePipeline(blocks=(FlattenBlock(),), axes=("x", "x")), "axes"),
        (lambda: FeaturePipeline(blocks=(FlattenBlock(),), axes=()), "axes"),
    ],
)
def test_invalid_parameters_name_the_field(make: Any, field: str) -> None:
    with pytest.raises(ValidationFailed, match=field):
        make()


def test_transform_rejects_bad_windows() -> None:
    pipeline = FeaturePipeline(blocks=(FlattenBlock(),), axes=AXES)
    for bad in (
        np.zeros((2, 64, 2), np.float32),
        np.zeros((64, 3), np.float32),
        np.zeros((2, 0, 3)),
    ):
        with pytest.raises(ValidationFailed, match="shape"):
            pipeline.transform(bad)
    nan = np.zeros((2, 64, 3), np.float32)
    nan[1, 5, 2] = np.nan
    with pytest.raises(ValidationFailed, match="1 samples are NaN"):
        pipeline.transform(nan)


def test_windows_from_table_stacks_list_columns() -> None:
    table = pa.table(
        {
            "id": ["a", "b"],
            "acc_x": pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], pa.list_(pa.float32())),
            "acc_y": pa.array([[7, 8, 9], [10, 11, 12]], pa.list_(pa.int16(), 3)),
            "acc_z": pa.array([[0.5] * 3, [1.5] * 3], pa.large_list(pa.float64())),
        }
    )
    windows = windows_from_table(table, AXES)
    assert windows.dtype == np.float32 and windows.shape == (2, 3, 3)
    assert windows[1, :, 0].tolist() == [4, 5, 6] and windows[0, :, 1].tolist() == [7, 8, 9]
    sliced = windows_from_table(pa.concat_tables([table.slice(1), table.slice(0, 1)]), AXES)
    assert np.array_equal(sliced, windows[::-1])
    empty = pa.table({"x": pa.array([], pa.list_(pa.float32(), 4))})
    assert windows_from_table(empty, ["x"]).shape == (0, 4, 1)


def test_windows_from_table_rejects_ragged_missing_and_null() -> None:
    ragged = pa.table({"x": [[1.0, 2.0], [3.0]], "y": [[1.0, 2.0], [3.0, 4.0]]})
    with pytest.raises(ValidationFailed, match="row 1 has 1 samples"):
        windows_from_table(ragged, ["x"])
    uneven = pa.table({"x": [[1.0, 2.0]], "y": [[1.0, 2.0, 3.0]]})
    with pytest.raises(ValidationFailed, match="'y' row 0 has 3"):
        windows_from_table(uneven, ["x", "y"])
    with pytest.raises(ValidationFailed, match=r"\['acc_q'\].*columns: \['x', 'y'\]"):
        windows_from_table(ragged, ["x", "acc_q"])
    with pytest.raises(ValidationFailed, match="null"):
        windows_from_table(pa.table({"x": [[1.0, None]]}), ["x"])
    with pytest.raises(ValidationFailed, match="list of numbers"):
        windows_from_table(pa.table({"x": [1.0, 2.0]}), ["x"])
    with pytest.raises(ValidationFailed, match="not in the table"):
        windows_from_table(ragged, [])
    assert FlattenBlock().stats == STATS
