"""Sensor windowing: cut each recording of a sensor table into fixed-length windows.

A sensor table has one row per recording: an id column, usually a label, and one list column
per axis (``acc_x``, ``acc_y``, ...) holding the samples at a known sample rate.
:func:`make_windows` turns it into one row per window, each axis a
``fixed_size_list<float32>[n]``, ready for a model with a fixed input size. The windows are
cut with ``numpy.lib.stride_tricks.sliding_window_view`` over all recordings at once, so no
Python code runs per sample or per window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from edgeloop.errors import ValidationFailed

__all__ = ["WindowResult", "WindowSpec", "make_windows"]

_TOLERANCE = 0.01  # a duration must be a whole number of samples to within 1%


def _samples(field: str, ms: float, sample_rate: float) -> int:
    exact = ms * sample_rate / 1000.0
    count = round(exact)
    if count < 1:
        raise ValidationFailed(
            f"{field}={ms:g} at {sample_rate:g} Hz is {exact:g} samples, less than one sample; "
            f"one sample lasts {1000.0 / sample_rate:g} ms"
        )
    if abs(exact - count) > _TOLERANCE * count:
        raise ValidationFailed(
            f"{field}={ms:g} at {sample_rate:g} Hz is {exact:g} samples, not a whole number "
            f"of samples (within 1%); the nearest is {count} samples: "
            f"{field}={count * 1000.0 / sample_rate:g}"
        )
    return count


def _positive(field: str, value: object, unit: str) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationFailed(f"{field} must be a positive number of {unit}, got {value!r}")


@dataclass(frozen=True)
class WindowSpec:
    """Fixed windows of ``length_ms`` every ``stride_ms``, for samples at ``sample_rate`` Hz.

    A window holds ``round(length_ms * sample_rate / 1000)`` samples and windows start every
    ``round(stride_ms * sample_rate / 1000)`` samples; both durations must be whole numbers of
    samples to within 1% (:class:`ValidationFailed` names the nearest one otherwise).
    ``stride_ms < length_ms`` gives overlapping windows, ``stride_ms > length_ms`` skips
    samples between windows.

    ``pad`` decides what happens to a recording shorter than one window: ``"drop"`` leaves it
    out (it is counted in :attr:`WindowResult.dropped`), ``"zero"`` pads it with zeros at the
    end to make exactly one window. A recording with no samples at all is dropped either way.
    """

    length_ms: float
    stride_ms: float
    sample_rate: float
    pad: Literal["drop", "zero"] = "drop"

    def __post_init__(self) -> None:
        _positive("sample_rate", self.sample_rate, "samples per second")
        _positive("length_ms", self.length_ms, "milliseconds")
        _positive("stride_ms", self.stride_ms, "milliseconds")
        if self.pad not in ("drop", "zero"):
            raise ValidationFailed(f"pad must be 'drop' or 'zero', got {self.pad!r}")
        _samples("length_ms", self.length_ms, self.sample_rate)
        _samples("stride_ms", self.stride_ms, self.sample_rate)

    @property
    def length_samples(self) -> int:
        """Samples per window."""
        return _samples("length_ms", self.length_ms, self.sample_rate)

    @property
    def stride_samples(self) -> int:
        """Samples from the start of one window to the start of the next."""
        return _samples("stride_ms", self.stride_ms, self.sample_rate)


@dataclass(frozen=True)
class WindowResult:
    """What :func:`make_windows` produced.

    ``table`` has one row per window; ``windows`` is its row count; ``dropped`` is the number
    of recordings that gave no window (shorter than one window with ``pad="drop"``, or empty).
    """

    table: pa.Table
    dropped: int
    windows: int


def _is_list(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_fixed_size_list(data_type)
    )


def _column_names(names: Sequence[str], what: str) -> list[str]:
    if isinstance(names, str):
        return [names]
    result = list(names)
    for name in result:
        if not isinstance(name, str):
            raise ValidationFailed(f"{what} must be column names, got {name!r}")
    return result


def _axis_values(
    table: pa.Table, axis: str, id_column: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """One axis as (samples per recording, all samples end to end as float32)."""
    column = table.column(axis).combine_chunks()
    if column.null_count:
        nulls = pc.filter(table.column(id_column), pc.is_null(table.column(axis)))
        raise ValidationFailed(
            f"axis {axis!r} has {column.null_count} null recording(s) "
            f"({_sample_list(nulls.to_pylist())}); drop them or store empty lists"
        )
    lengths = np.asarray(
        pc.list_value_length(column).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    flat = column.flatten()
    if not (pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type)):
        raise ValidationFailed(
            f"axis {axis!r} holds {flat.type} values; axes must be lists of numbers (list<float32>)"
        )
    values = np.asarray(
        flat.cast(pa.float32()).to_numpy(zero_copy_only=False), dtype=np.float32
    ).reshape(-1)
    return lengths, values


def _sample_list(ids: list[object], limit: int = 3) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def make_windows(
    table: pa.Table,
    spec: WindowSpec,
    *,
    axes: Sequence[str],
    label: str | None = "label",
    id_column: str = "sample_id",
    keep: Sequence[str] = (),
) -> WindowResult:
    """Cut every recording of a sensor table into fixed windows.

    ``table`` has one row per recording: ``id_column``, ``label`` (unless ``None``), and one
    list column per name in ``axes`` (every axis of a recording has the same number of
    samples). Each recording of ``n`` samples gives ``(n - length) // stride + 1`` windows
    when ``n >= length`` (lengths in samples, see :class:`WindowSpec`); a shorter one is
    dropped or zero-padded to one window according to ``spec.pad``.

    The result's table has one row per window, recordings in table order and windows in time
    order, with the columns ``id_column`` (the recording's id), ``window`` (int32, index of the
    window within its recording), ``start_ms`` (float64, window start from the recording's
    start), ``label`` (copied), the ``keep`` columns (copied), then each axis as
    ``fixed_size_list<float32>[length]``. Nulls inside a recording become NaN.

    Raises :class:`ValidationFailed` for an unknown axis or column, an axis that is not a
    list column of numbers, a null recording, or axes of different lengths in one recording.
    """
    if not isinstance(spec, WindowSpec):
        raise ValidationFailed(f"spec must be a WindowSpec, got {type(spec).__name__}")
    if not isinstance(table, pa.Table):
        raise ValidationFailed(f"expected a pyarrow.Table, got {type(table).__name__}")
    axis_names = _column_names(axes, "axes")
    keep_names = _column_names(keep, "keep")
    columns = table.column_names
    list_columns = [f.name for f in table.schema if _is_list(f.type)]
    if not axis_names:
        raise ValidationFailed(
            f"axes must name at least one list column; list columns: "
            f"{', '.join(list_columns) or '(none)'}"
        )
    for axis in axis_names:
        if axis not in columns:
            raise ValidationFailed(
                f"axis {axis!r} is not in the table; list columns that can be axes: "
                f"{', '.join(list_columns) or '(none)'}"
            )
        if axis not in list_columns:
            raise ValidationFailed(
                f"axis {axis!r} is a {table.schema.field(axis).type} column, not a list column "
                f"of samples; list columns that can be axes: "
                f"{', '.join(list_columns) or '(none)'}"
            )
    for role, name in (
        ("id_column", id_column),
        ("label", label),
        *(("keep", k) for k in keep_names),
    ):
        if name is not None and name not in columns:
            raise ValidationFailed(
                f"{role} column {name!r} is not in the table; columns: {', '.join(columns)}"
            )
    output = [
        id_column,
        "window",
        "start_ms",
        *([label] if label is not None else []),
        *keep_names,
        *axis_names,
    ]
    repeated = sorted({n for n in output if output.count(n) > 1})
    if repeated:
        raise ValidationFailed(
            f"output column(s) {', '.join(repeated)} would appear twice: id_column, label, keep "
            "and axes must be different columns, and none may be named window or start_ms"
        )

    length, stride = spec.length_samples, spec.stride_samples
    per_axis = [_axis_values(table, axis, id_column) for axis in axis_names]
    lengths = per_axis[0][0]
    for axis, (other, _) in zip(axis_names[1:], per_axis[1:], strict=True):
        mismatch = np.flatnonzero(other != lengths)
        if mismatch.size:
            ids = table.column(id_column).take(pa.array(mismatch)).to_pylist()
            raise ValidationFailed(
                f"axis {axis!r} and axis {axis_names[0]!r} have different sample counts in "
                f"recording(s) {_sample_list(ids)}; every axis of a recording must have the "
                "same length"
            )

    full = lengths >= length
    full_count = np.where(full, (lengths - length) // stride + 1, 0)
    if spec.pad == "zero":
        count = np.where(full, full_count, (lengths > 0).astype(np.int64))
    else:
        count = full_count
    dropped = int(np.count_nonzero(count == 0))
    total = int(count.sum())

    recording = np.repeat(np.arange(len(lengths), dtype=np.int64), count)
    first = np.cumsum(count) - count
    window = np.arange(total, dtype=np.int64) - first[recording]
    base = np.cumsum(lengths) - lengths  # where each recording starts in the flat values
    start = base[recording] + window * stride
    short = np.flatnonzero(~full[recording])  # pad="zero": the one window of a short recording
    short_source = start[short][:, None] + np.arange(length)[None, :]
    inside = short_source < (start[short] + lengths[recording[short]])[:, None]

    axis_arrays: list[pa.Array] = []
    for _, values in per_axis:
        if len(values) < length:  # only short recordings: give the view something to slide on
            values = np.concatenate([values, np.zeros(length - len(values), dtype=np.float32)])
        # Every full window is the row of the sliding view at its start (a short recording's
        # window may not fit in the view: it is cut from the flat samples and zero-padded).
        view = np.lib.stride_tricks.sliding_window_view(values, length)
        cut = view[np.minimum(start, len(view) - 1)]
        if short.size:
            samples = values[np.where(inside, short_source, 0)]
            cut[short] = np.where(inside, samples, np.float32(0))
        axis_arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(cut.reshape(-1)), length))

    copied = table.select([id_column, *([label] if label is not None else []), *keep_names])
    copied = copied.take(pa.array(recording, pa.int64()))
    data: dict[str, pa.Array | pa.ChunkedArray] = {
        id_column: copied.column(id_column),
        "window": pa.array(window, pa.int32()),
        "start_ms": pa.array(window * stride * 1000.0 / spec.sample_rate, pa.float64()),
    }
    if label is not None:
        data[label] = copied.column(label)
    for name in keep_names:
        data[name] = copied.column(name)
    for axis, array in zip(axis_names, axis_arrays, strict=True):
        data[axis] = array
    result = pa.table(data)
    return WindowResult(table=result, dropped=dropped, windows=total)
