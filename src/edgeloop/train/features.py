"""Feature blocks: turn raw sensor windows into feature vectors, on the server and on the edge.

A :class:`FeaturePipeline` applies its blocks to each axis of ``(n_samples, n_axes)`` float32
windows. The same math is ported to C, so it is kept simple, and :meth:`~FeaturePipeline.to_dict`
records every parameter (and, under ``"derived"``, the constants a port needs). Numerics:

* Samples, results and all per-sample arithmetic are float32. Constants (Hann table, filter
  coefficients) are computed in float64 and rounded to float32, as a port stores them as
  literals; band membership is decided in float64 and recorded as bin ranges.
* Sums are numpy's float32 reductions (pairwise). A port with sequential float32 sums and its
  own FFT matches within :data:`PORT_TOLERANCE` (``|a - b| <= atol + rtol * |b|``; log band
  energies in log10 units) for windows of up to 4096 samples, except for content below float32
  resolution (bands or peaks ~1e-6 under the strongest, or near-constant windows), and peak
  frequencies match unless two peaks are equal within that tolerance.
* The mean is ``x[0] + sum(x - x[0]) / n`` (shifted, so a constant window has a variance of
  exactly 0 on any platform). Central moments ``m_k = sum((x - mean)**k) / n`` are the biased
  (population) ones: ``std = sqrt(m2)``, ``skewness = m3 / m2**1.5`` and
  ``kurtosis = m4 / m2**2 - 3`` (Fisher), i.e. ``numpy.std(ddof=0)``,
  ``scipy.stats.skew(bias=True)`` and ``scipy.stats.kurtosis(fisher=True, bias=True)``.
  Where ``m2 <= 1e-18`` (a constant window, or one whose float32 moments would underflow)
  skewness and kurtosis are 0, where scipy gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from edgeloop.errors import ValidationFailed

__all__ = [
    "PORT_TOLERANCE",
    "STATS",
    "FeaturePipeline",
    "FlattenBlock",
    "SpectralBlock",
    "windows_from_table",
]

F32: TypeAlias = npt.NDArray[np.float32]
STATS: tuple[str, ...] = ("mean", "min", "max", "rms", "std", "skewness", "kurtosis")
PORT_TOLERANCE: dict[str, float] = {"rtol": 1e-4, "atol": 1e-4}
VARIANCE_FLOOR = 1e-18  # m2 at or below this: skewness = kurtosis = 0
LOG_FLOOR = 1e-10  # band energies are log10(energy + LOG_FLOOR)
PEAK_FLOOR = 1e-4  # a peak must exceed this fraction of the largest magnitude in bins 1..L/2-1
_OPS = ("adds", "muls", "divs", "sqrts", "logs", "compares", "fft_butterflies")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValidationFailed(message)


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"{field} must be a finite number, got {value!r}")
    return float(value)


def _integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{field} must be an integer from {low} to {high}, got {value!r}")
    return value


def _count(ops: dict[str, int], times: int = 1, **counts: int) -> None:
    for key, value in counts.items():
        ops[key] += value * times


def _plain(value: Any) -> Any:  # nested tuples as lists, for JSON
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _mean(x: F32) -> F32:  # shifted mean over the last axis: x[0] + sum(x - x[0]) / n
    first = x[..., :1]
    mean: F32 = first[..., 0] + (x - first).sum(axis=-1) / np.float32(x.shape[-1])
    return mean


@dataclass(frozen=True)
class FlattenBlock:
    """Statistics of each axis over the window, in the order of ``stats`` (from :data:`STATS`)."""

    stats: tuple[str, ...] = STATS

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", stats := tuple(self.stats))
        ok = bool(stats) and set(stats) <= set(STATS) and len(set(stats)) == len(stats)
        _require(ok, f"FlattenBlock.stats: distinct names from {', '.join(STATS)}; got {stats}")

    def feature_names(self) -> list[str]:
        """Names of this block's features for one axis (without the axis prefix)."""
        return list(self.stats)

    def apply(self, x: F32) -> F32:
        """``(n_windows, n_axes, n_samples)`` float32 → ``(n_windows, n_axes, len(stats))``."""
        n, mean = np.float32(x.shape[-1]), _mean(x)
        d = x - mean[..., None]
        d2 = d * d
        m2 = d2.sum(axis=-1) / n
        flat = m2 <= np.float32(VARIANCE_FLOOR)
        safe = np.where(flat, np.float32(1), m2)
        values = {"mean": mean, "min": x.min(axis=-1), "max": x.max(axis=-1), "std": np.sqrt(m2)}
        values["rms"] = np.sqrt((x * x).sum(axis=-1) / n)
        if "skewness" in self.stats:
            m3 = (d2 * d).sum(axis=-1) / n
            values["skewness"] = np.where(flat, np.float32(0), m3 / (safe * np.sqrt(safe)))
        if "kurtosis" in self.stats:
            m4 = (d2 * d2).sum(axis=-1) / n
            values["kurtosis"] = np.where(flat, np.float32(0), m4 / (safe * safe) - 3)
        return np.stack([values[s] for s in self.stats], axis=-1).astype(np.float32, copy=False)

    def operation_counts(self, n_samples: int) -> dict[str, int]:
        """Rough float operations for one axis of one window of ``n_samples`` samples."""
        n, need, ops = n_samples, set(self.stats), dict.fromkeys(_OPS, 0)
        if need - {"min", "max", "rms"}:  # shifted mean
            _count(ops, adds=2 * n + 1, divs=1)
        _count(ops, compares=(n - 1) * len(need & {"min", "max"}))
        if "rms" in need:
            _count(ops, muls=n, adds=n, divs=1, sqrts=1)
        if need & {"std", "skewness", "kurtosis"}:  # d, d*d, m2, sqrt
            _count(ops, adds=2 * n, muls=n, divs=1, sqrts=1)
        _count(ops, len(need & {"skewness", "kurtosis"}), muls=n + 2, adds=n + 1, divs=2)
        return ops

    def derived(self) -> dict[str, Any]:
        """The constants a port needs besides the parameters."""
        return {"variance_floor": VARIANCE_FLOOR}


@dataclass(frozen=True)
class SpectralBlock:
    """Band energies and spectral peaks of each axis.

    Per axis: subtract the mean; optionally filter with the first-order IIR ``y[i] = b0*x[i] +
    b1*x[i-1] - a1*y[i-1]``, ``x[-1] = y[-1] = 0`` (:meth:`filter_coefficients`: with ``RC =
    1/(2*pi*filter_cutoff)``, ``dt = 1/sample_rate``, lowpass ``b0 = dt/(RC+dt), b1 = 0, a1 =
    b0-1``, highpass ``b0 = RC/(RC+dt), b1 = a1 = -b0``). A window of at most ``fft_length``
    samples is one frame, zero-padded; a longer one is ``n_samples // fft_length`` consecutive
    frames (the rest dropped). Each frame of ``M`` samples gets the periodic Hann window
    ``0.5 - 0.5*cos(2*pi*k/M)`` and a real FFT of ``fft_length``; magnitudes are averaged over
    frames and scaled by ``4/M``, so a sine of amplitude ``A`` on a bin shows ``A``.
    A band's energy sums the power (magnitude squared) of bins ``k`` with ``low < k *
    sample_rate / fft_length <= high``, as ``log10(energy + 1e-10)`` if ``log``. Peaks are bins
    ``1 .. fft_length/2 - 1`` with a magnitude ``>`` the left and ``>=`` the right neighbour's
    and ``> 1e-4`` times the largest there (rounding noise is no peak), largest first (ties:
    lower bin first), as ``k * sample_rate / fft_length`` Hz and magnitude, or ``0, 0``.

    Without ``bands``, ``n_bands`` bands are log-spaced from half a bin above DC to Nyquist,
    with edges rounded to half-bins so each holds a bin (:meth:`band_edges`); with ``bands``,
    ``n_bands`` is ignored.
    """

    sample_rate: float
    fft_length: int = 256
    bands: tuple[tuple[float, float], ...] | None = None
    n_bands: int = 8
    n_peaks: int = 3
    filter: Literal["none", "lowpass", "highpass"] = "none"
    filter_cutoff: float | None = None
    log: bool = True

    def __post_init__(self) -> None:
        rate, length = _number("SpectralBlock.sample_rate", self.sample_rate), self.fft_length
        nyquist = f"{rate / 2:g} Hz (Nyquist)"
        _require(rate > 0, f"SpectralBlock.sample_rate must be > 0 Hz, got {rate:g}")
        _integer("SpectralBlock.fft_length", length, 16, 65536)
        _require(not length & (length - 1), f"SpectralBlock.fft_length {length} must be 2**k")
        _integer("SpectralBlock.n_bands", self.n_bands, 1, length // 2)
        _integer("SpectralBlock.n_peaks", self.n_peaks, 0, length // 2 - 1)
        filters = ("none", "lowpass", "highpass")
        _require(self.filter in filters, f"SpectralBlock.filter must be one of {filters}")
        _require(isinstance(self.log, bool), f"SpectralBlock.log must be a bool: {self.log!r}")
        if self.filter == "none":
            _require(self.filter_cutoff is None, "SpectralBlock.filter_cutoff needs a filter")
        else:
            cutoff = _number("SpectralBlock.filter_cutoff", self.filter_cutoff)
            _require(0 < cutoff < rate / 2, f"SpectralBlock.filter_cutoff: (0, {nyquist})")
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple((float(a), float(b)) for a, b in self.bands))
            _require(bool(self.bands), "SpectralBlock.bands must hold a band or be None")
        bands = zip(self.band_edges(), self.band_bins(), strict=True)
        for i, ((lo, hi), (start, stop)) in enumerate(bands):
            where = f"SpectralBlock.bands[{i}] = ({lo:g}, {hi:g})"
            _require(0 < lo < hi <= rate / 2, f"{where} must have 0 < low < high <= {nyquist}")
            _require(stop > start, f"{where} holds no FFT bin; bins are {rate / length:g} Hz apart")

    def band_edges(self) -> tuple[tuple[float, float], ...]:
        """The bands in Hz: ``bands`` as given, or the default log-spaced ones."""
        if self.bands is not None:
            return self.bands
        half, step = self.fft_length // 2, self.sample_rate / self.fft_length
        edges = [1]
        for value in np.geomspace(1.0, half, self.n_bands + 1)[1:-1]:
            edges.append(max(math.floor(float(value) + 0.5), edges[-1] + 1))
        highs = [(e - 0.5) * step for e in edges[1:]] + [self.sample_rate / 2]
        return tuple(((e - 0.5) * step, hi) for e, hi in zip(edges, highs, strict=True))

    def band_bins(self) -> tuple[tuple[int, int], ...]:
        """Each band as the FFT bin range ``[start, stop)`` it sums (decided in float64)."""
        freqs = np.arange(self.fft_length // 2 + 1) * self.sample_rate / self.fft_length
        edges = np.searchsorted(freqs, np.array(self.band_edges()), "right").tolist()
        return tuple((int(start), int(stop)) for start, stop in edges)

    def filter_coefficients(self) -> tuple[float, float, float]:
        """``(b0, b1, a1)`` of the filter as float32 values (``(1, 0, 0)`` without a filter)."""
        if self.filter == "none" or self.filter_cutoff is None:
            return (1.0, 0.0, 0.0)
        rc, dt = 1.0 / (2.0 * math.pi * self.filter_cutoff), 1.0 / self.sample_rate
        b0 = float(np.float32(dt / (rc + dt) if self.filter == "lowpass" else rc / (rc + dt)))
        return (b0, 0.0, float(np.float32(b0 - 1))) if self.filter == "lowpass" else (b0, -b0, -b0)

    def feature_names(self) -> list[str]:
        """Names of this block's features for one axis (without the axis prefix), 1-based."""
        peaks = [f"peak_{i}_{u}" for i in range(1, self.n_peaks + 1) for u in ("hz", "mag")]
        return [f"band_{i + 1}" for i in range(len(self.band_edges()))] + peaks

    def _frames(self, n_samples: int) -> tuple[int, int]:  # (n_frames, frame_length)
        length = self.fft_length
        return (1, n_samples) if n_samples <= length else (n_samples // length, length)

    def magnitude(self, x: F32) -> F32:
        """``(..., n_samples)`` → averaged, amplitude-scaled magnitude ``(..., fft_length/2+1)``."""
        x = x - _mean(x)[..., None]
        if self.filter != "none":
            b0, b1, a1 = (np.float32(c) for c in self.filter_coefficients())
            y, prev_x, prev_y = np.empty_like(x), np.zeros_like(x[..., 0]), np.zeros_like(x[..., 0])
            for i in range(x.shape[-1]):
                prev_y = b0 * x[..., i] + b1 * prev_x - a1 * prev_y
                y[..., i], prev_x = prev_y, x[..., i]
            x = y
        count, size = self._frames(x.shape[-1])
        frames = x[..., None, : count * size].reshape(*x.shape[:-1], count, size)
        hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype(np.float32)
        spectra = np.abs(np.fft.rfft(frames * hann, n=self.fft_length, axis=-1))
        mag: F32 = spectra.sum(axis=-2) * np.float32(4.0 / (size * count))
        return mag

    def apply(self, x: F32) -> F32:
        """``(n_windows, n_axes, n_samples)`` float32 → ``(n_windows, n_axes, n_features)``."""
        mag = self.magnitude(x)
        power = mag * mag
        energy = np.stack([power[..., a:b].sum(axis=-1) for a, b in self.band_bins()], axis=-1)
        if self.log:
            energy = np.log10(energy + np.float32(LOG_FLOOR))
        inner = mag[..., 1:-1]
        floor = np.float32(PEAK_FLOOR) * inner.max(axis=-1, keepdims=True)
        is_peak = (inner > mag[..., :-2]) & (inner >= mag[..., 2:]) & (inner > floor)
        score = np.where(is_peak, inner, np.float32(-np.inf))
        order = np.argsort(-score, axis=-1, kind="stable")[..., : self.n_peaks]
        top = np.take_along_axis(score, order, axis=-1)
        found, bin_hz = np.isfinite(top), np.float32(self.sample_rate / self.fft_length)
        hz = np.where(found, (order + 1).astype(np.float32) * bin_hz, 0)
        peaks = np.stack([hz, np.where(found, top, 0)], axis=-1)
        peaks = peaks.reshape(*top.shape[:-1], 2 * self.n_peaks)
        return np.concatenate([energy, peaks], axis=-1).astype(np.float32, copy=False)

    def operation_counts(self, n_samples: int) -> dict[str, int]:
        """Rough float operations for one axis of one window of ``n_samples`` samples."""
        ops, (count, size) = dict.fromkeys(_OPS, 0), self._frames(n_samples)
        bins, n_bands = self.fft_length // 2 + 1, len(self.band_bins())
        _count(ops, adds=3 * n_samples + 1, divs=1)  # shifted mean, subtract it
        if self.filter != "none":
            _count(ops, n_samples, muls=3, adds=2)
        _count(ops, muls=count * size)  # Hann
        _count(ops, count, fft_butterflies=self.fft_length // 4 * int(math.log2(self.fft_length)))
        _count(ops, count, muls=2 * bins, adds=2 * bins, sqrts=bins)  # |X|, average
        _count(ops, muls=2 * bins, adds=sum(b - a for a, b in self.band_bins()))  # scale, power
        _count(ops, int(self.log) * n_bands, logs=1, adds=1)
        _count(ops, muls=self.n_peaks, compares=(bins - 2) * (2 + self.n_peaks))  # peaks
        return ops

    def derived(self) -> dict[str, Any]:
        """The constants a port needs, computed from the parameters."""
        return {
            "band_edges_hz": _plain(self.band_edges()),
            "band_bins": _plain(self.band_bins()),
            "bin_hz": self.sample_rate / self.fft_length,
            "filter_coefficients": list(self.filter_coefficients()),
            "log_floor": LOG_FLOOR,
            "peak_floor": PEAK_FLOOR,
        }


_BLOCKS = {"flatten": FlattenBlock, "spectral": SpectralBlock}
FORMAT = "edgeloop.features/1"


@dataclass(frozen=True)
class FeaturePipeline:
    """Blocks applied to every axis of a window; features are ordered block, axis, feature."""

    blocks: tuple[FlattenBlock | SpectralBlock, ...]
    axes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "axes", tuple(self.axes))
        kinds = all(isinstance(b, FlattenBlock | SpectralBlock) for b in self.blocks)
        _require(kinds and bool(self.blocks), "FeaturePipeline.blocks: 1+ Flatten/SpectralBlock")
        names = all(isinstance(a, str) and a for a in self.axes) and bool(self.axes)
        message = f"FeaturePipeline.axes must be distinct non-empty names, got {self.axes}"
        _require(names and len(set(self.axes)) == len(self.axes), message)

    def feature_names(self) -> list[str]:
        """``"<axis>.<feature>"`` for every column of :meth:`transform`, e.g. ``"acc_x.rms"``."""
        return [f"{a}.{f}" for b in self.blocks for a in self.axes for f in b.feature_names()]

    def transform(self, windows: npt.ArrayLike) -> F32:
        """``(n_windows, n_samples, n_axes)`` → ``(n_windows, n_features)`` float32, vectorised.

        Other real dtypes are rounded to float32 first; NaN or infinite samples are rejected."""
        x = np.asarray(windows)
        shape_ok = x.ndim == 3 and x.shape[1] >= 1 and x.shape[2] == len(self.axes)
        _require(
            x.dtype.kind in "iuf" and shape_ok,
            f"windows must be a real array of shape (n_windows, n_samples >= 1, "
            f"{len(self.axes)}) for axes {list(self.axes)}, got {x.dtype} {x.shape}",
        )
        x = np.ascontiguousarray(np.moveaxis(x.astype(np.float32, copy=False), 2, 1))
        bad = int(x.size - np.isfinite(x).sum())
        _require(not bad, f"windows must be finite; {bad} samples are NaN or infinite")
        parts = [block.apply(x) for block in self.blocks]  # (n_windows, n_axes, n_features)
        return np.concatenate([p.reshape(len(p), p.shape[1] * p.shape[2]) for p in parts], axis=1)

    def operation_counts(self, n_samples: int) -> dict[str, int]:
        """Rough float operations per window, summed over blocks and axes: adds (and subtracts),
        muls, divs, sqrts, logs, compares, fft_butterflies (``L/4 * log2(L)`` per real FFT)."""
        _integer("n_samples", n_samples, 1, 2**31)
        total = dict.fromkeys(_OPS, 0)
        for block in self.blocks:
            _count(total, len(self.axes), **block.operation_counts(n_samples))
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters; :meth:`from_dict` rebuilds an equal pipeline."""
        blocks = [
            {"type": "flatten" if isinstance(b, FlattenBlock) else "spectral"}
            | {f.name: _plain(getattr(b, f.name)) for f in fields(b)}
            | {"derived": b.derived()}
            for b in self.blocks
        ]
        return {"format": FORMAT, "axes": list(self.axes), "blocks": blocks}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeaturePipeline:
        """Rebuild a pipeline from :meth:`to_dict`; ``"derived"`` entries are ignored."""
        _require(
            data.get("format") == FORMAT and set(data) == {"format", "axes", "blocks"},
            f"a feature pipeline has exactly format ({FORMAT!r}), axes and blocks",
        )
        blocks: list[FlattenBlock | SpectralBlock] = []
        for i, raw in enumerate(data["blocks"]):
            kind = _BLOCKS.get(str(raw.get("type"))) if isinstance(raw, Mapping) else None
            if kind is None:
                raise ValidationFailed(f"blocks[{i}].type must be one of {sorted(_BLOCKS)}")
            params = {k: v for k, v in raw.items() if k not in ("type", "derived")}
            try:
                blocks.append(kind(**params))
            except (TypeError, ValueError) as exc:
                raise ValidationFailed(f"blocks[{i}]: {exc}") from None
        return cls(blocks=tuple(blocks), axes=tuple(data["axes"]))


def windows_from_table(table: pa.Table, axes: Sequence[str]) -> F32:
    """Stack list columns, one per axis, into ``(n_rows, n_samples, n_axes)`` float32.

    Each axis column is a ``list``, ``large_list`` or ``fixed_size_list`` of numbers (rounded
    to float32); every row of every axis must hold the same number of samples, without nulls.
    """
    missing = [a for a in axes if a not in table.column_names] or ([] if axes else ["(none)"])
    _require(not missing, f"axes {missing} not in the table; columns: {table.column_names}")
    stacked: list[F32] = []
    size: int | None = None
    for axis in axes:
        column, kind = table.column(axis).combine_chunks(), table.schema.field(axis).type
        lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
        numbers = (pa.types.is_floating, pa.types.is_integer)
        ok = any(f(kind) for f in lists) and any(f(kind.value_type) for f in numbers)
        _require(ok, f"column {axis!r} must hold a list of numbers per row, got {kind}")
        values = pc.list_flatten(column)
        _require(not column.null_count + values.null_count, f"column {axis!r} has null values")
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if size is None:
            size = int(lengths[0]) if len(lengths) else getattr(kind, "list_size", 0)
        for row in np.flatnonzero(lengths != size)[:1]:
            raise ValidationFailed(
                f"column {axis!r} row {row} has {lengths[row]} samples; all must have {size}"
            )
        samples = values.to_numpy(zero_copy_only=False).astype(np.float32)
        stacked.append(samples.reshape(len(table), size))
    return np.ascontiguousarray(np.stack(stacked, axis=-1))
