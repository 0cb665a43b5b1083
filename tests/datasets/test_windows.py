"""Sensor windowing: window counts, contents against a naive slicer, padding, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.datasets._windows import WindowResult, WindowSpec, make_windows
from edgeloop.errors import ValidationFailed

PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

RATE = 100.0  # Hz: one sample every 10 ms


def _sensor_table(
    recordings: list[np.ndarray[Any, np.dtype[np.float32]]], axes: tuple[str, ...] = ("acc_x",)
) -> pa.Table:
    """One row per recording; axis i holds the recording plus 1000 * i."""
    columns: dict[str, Any] = {
        "sample_id": [f"rec-{i}" for i in range(len(recordings))],
        "label": [["idle", "walk", "run"][i % 3] for i in range(len(recordings))],
        "device": list(range(100, 100 + len(recordings))),
    }
    for i, axis in enumerate(axes):
        columns[axis] = pa.array(
            [(r + 1000 * i).tolist() for r in recordings], pa.list_(pa.float32())
        )
    return pa.table(columns)


def _naive(
    recordings: list[np.ndarray[Any, np.dtype[np.float32]]], length: int, stride: int, pad: str
) -> list[tuple[int, int, list[float]]]:
    """(recording, window, samples) by slicing one window at a time."""
    out = []
    for r, samples in enumerate(recordings):
        if len(samples) >= length:
            for w, start in enumerate(range(0, len(samples) - length + 1, stride)):
                out.append((r, w, samples[start : start + length].tolist()))
        elif pad == "zero" and len(samples) > 0:
            padded = np.zeros(length, dtype=np.float32)
            padded[: len(samples)] = samples
            out.append((r, 0, padded.tolist()))
    return out


recording_lists = st.lists(
    st.integers(0, 40).map(lambda n: np.arange(n, dtype=np.float32) * 0.5 - 3.0),
    min_size=0,
    max_size=8,
)


@PROPERTY
@given(
    recordings=recording_lists,
    length=st.integers(1, 12),
    stride=st.integers(1, 15),
    pad=st.sampled_from(["drop", "zero"]),
)
def test_windows_match_a_naive_slicer(
    recordings: list[np.ndarray[Any, np.dtype[np.float32]]], length: int, stride: int, pad: Any
) -> None:
    table = _sensor_table(recordings, axes=("acc_x", "acc_y"))
    spec = WindowSpec(length_ms=length * 10, stride_ms=stride * 10, sample_rate=RATE, pad=pad)
    result = make_windows(table, spec, axes=["acc_x", "acc_y"], keep=["device"])
    expected = _naive(recordings, length, stride, pad)

    assert isinstance(result, WindowResult)
    assert result.windows == len(expected) == result.table.num_rows
    produced = {r for r, _, _ in expected}
    assert result.dropped == len(recordings) - len(produced)
    out = result.table
    assert out.column_names == [
        "sample_id", "window", "start_ms", "label", "device", "acc_x", "acc_y"
    ]  # fmt: skip
    assert out.schema.field("acc_x").type == pa.list_(pa.float32(), length)
    assert out.schema.field("window").type == pa.int32()
    assert out.column("sample_id").to_pylist() == [f"rec-{r}" for r, _, _ in expected]
    assert out.column("window").to_pylist() == [w for _, w, _ in expected]
    assert out.column("start_ms").to_pylist() == [w * stride * 10.0 for _, w, _ in expected]
    labels = table.column("label").to_pylist()
    assert out.column("label").to_pylist() == [labels[r] for r, _, _ in expected]
    assert out.column("device").to_pylist() == [100 + r for r, _, _ in expected]
    assert out.column("acc_x").to_pylist() == [s for _, _, s in expected]
    shifted = [
        [v + 1000 * (i < min(len(recordings[r]), length)) for i, v in enumerate(s)]
        for r, _, s in expected
    ]
    assert out.column("acc_y").to_pylist() == shifted


@PROPERTY
@given(
    n=st.integers(0, 500),
    length=st.integers(1, 60),
    stride=st.integers(1, 60),
    pad=st.sampled_from(["drop", "zero"]),
)
def test_window_count_formula(n: int, length: int, stride: int, pad: Any) -> None:
    table = _sensor_table([np.zeros(n, dtype=np.float32)])
    spec = WindowSpec(length_ms=length * 10, stride_ms=stride * 10, sample_rate=RATE, pad=pad)
    result = make_windows(table, spec, axes=["acc_x"])
    expected = (n - length) // stride + 1 if n >= length else int(pad == "zero" and n > 0)
    assert result.windows == expected
    assert result.dropped == (expected == 0)


def test_example_windows_and_padding() -> None:
    recordings = [np.arange(10, dtype=np.float32), np.arange(3, dtype=np.float32) + 50]
    table = _sensor_table(recordings)
    # 40 ms at 100 Hz = 4 samples, every 20 ms = 2 samples.
    drop = make_windows(table, WindowSpec(40, 20, RATE), axes=["acc_x"])
    assert (drop.windows, drop.dropped) == (4, 1)
    assert drop.table.column("acc_x").to_pylist()[-1] == [6, 7, 8, 9]
    assert drop.table.column("start_ms").to_pylist() == [0.0, 20.0, 40.0, 60.0]
    assert drop.table.column("label").to_pylist() == ["idle"] * 4
    zero = make_windows(table, WindowSpec(40, 20, RATE, pad="zero"), axes=["acc_x"])
    assert (zero.windows, zero.dropped) == (5, 0)
    assert zero.table.column("acc_x").to_pylist()[-1] == [50, 51, 52, 0]
    assert zero.table.column("label").to_pylist()[-1] == "walk"
    assert zero.table.column("sample_id").to_pylist()[-1] == "rec-1"


def test_no_label_and_custom_id_column() -> None:
    table = _sensor_table([np.arange(8, dtype=np.float32)]).rename_columns(
        ["rid", "label", "device", "acc_x"]
    )
    result = make_windows(
        table, WindowSpec(40, 40, RATE), axes=["acc_x"], label=None, id_column="rid"
    )
    assert result.table.column_names == ["rid", "window", "start_ms", "acc_x"]
    assert result.table.column("rid").to_pylist() == ["rec-0", "rec-0"]


def test_input_encodings_give_the_same_windows() -> None:
    """Chunked input, large_list / float64 / int axes and nulls inside a recording."""
    values = [[float(i) for i in range(9)], [1.0, None, 3.0, 4.0, 5.0]]
    base = pa.table(
        {
            "sample_id": ["a", "b"],
            "label": ["x", "y"],
            "acc_x": pa.array(values, pa.list_(pa.float32())),
        }
    )
    spec = WindowSpec(30, 20, RATE)
    expected = make_windows(base, spec, axes=["acc_x"]).table
    assert np.isnan(expected.column("acc_x").to_pylist()[-2][1])
    chunked = pa.Table.from_batches([*base.slice(0, 1).to_batches(), *base.slice(1).to_batches()])
    large = base.set_column(2, "acc_x", pa.array(values, pa.large_list(pa.float64())))
    for variant in (chunked, large):
        got = make_windows(variant, spec, axes=["acc_x"]).table
        assert got.schema == expected.schema
        assert str(got.to_pylist()) == str(expected.to_pylist())  # NaN-safe comparison
    ints = pa.table({"sample_id": ["a"], "label": ["x"], "acc_x": [[1, 2, 3, 4]]})
    got_ints = make_windows(ints, WindowSpec(20, 20, RATE), axes="acc_x").table
    assert got_ints.column("acc_x").to_pylist() == [[1.0, 2.0], [3.0, 4.0]]


def test_empty_table_gives_an_empty_window_table() -> None:
    table = _sensor_table([]).cast(_sensor_table([np.zeros(1, dtype=np.float32)]).schema)
    result = make_windows(table, WindowSpec(40, 20, RATE), axes=["acc_x"])
    assert (result.windows, result.dropped, result.table.num_rows) == (0, 0, 0)
    assert result.table.schema.field("acc_x").type == pa.list_(pa.float32(), 4)


def test_spec_samples_and_tolerance() -> None:
    spec = WindowSpec(length_ms=1000 / 3, stride_ms=100, sample_rate=300)
    assert (spec.length_samples, spec.stride_samples) == (100, 30)
    assert WindowSpec(length_ms=2000.5, stride_ms=10, sample_rate=100).length_samples == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length_ms": 0, "stride_ms": 10}, "length_ms must be a positive number"),
        ({"length_ms": 100, "stride_ms": -5}, "stride_ms must be a positive number"),
        ({"length_ms": 100, "stride_ms": float("inf")}, "stride_ms must be a positive number"),
        ({"length_ms": 100, "stride_ms": 10, "sample_rate": 0}, "sample_rate must be a positive"),
        (
            {"length_ms": 25, "stride_ms": 10},
            r"length_ms=25 at 100 Hz is 2.5 samples, not a whole number .*nearest is 2 samples",
        ),
        ({"length_ms": 100, "stride_ms": 15}, "stride_ms=15 .* 1.5 samples"),
        ({"length_ms": 4, "stride_ms": 10}, "less than one sample"),
        ({"length_ms": 100, "stride_ms": 10, "pad": "edge"}, "pad must be 'drop' or 'zero'"),
    ],
)
def test_spec_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        WindowSpec(**{"sample_rate": RATE, **kwargs})


def test_table_errors_name_the_problem() -> None:
    table = _sensor_table([np.arange(5, dtype=np.float32)] * 2, axes=("acc_x", "acc_y"))
    spec = WindowSpec(20, 10, RATE)
    with pytest.raises(ValidationFailed, match=r"axis 'gyr_x' is not in the table; .*acc_x, acc_y"):
        make_windows(table, spec, axes=["gyr_x"])
    with pytest.raises(ValidationFailed, match="axis 'device' is a int64 column, not a list"):
        make_windows(table, spec, axes=["device"])
    with pytest.raises(ValidationFailed, match="at least one list column"):
        make_windows(table, spec, axes=[])
    with pytest.raises(ValidationFailed, match="label column 'activity' is not in the table"):
        make_windows(table, spec, axes=["acc_x"], label="activity")
    with pytest.raises(ValidationFailed, match="keep column 'site' is not in the table"):
        make_windows(table, spec, axes=["acc_x"], keep=["site"])
    with pytest.raises(ValidationFailed, match="would appear twice"):
        make_windows(table, spec, axes=["acc_x", "acc_x"])
    with pytest.raises(ValidationFailed, match="label would appear twice"):
        make_windows(table, spec, axes=["acc_x"], keep=["label"])
    uneven = table.set_column(
        4, "acc_y", pa.array([[1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]], pa.list_(pa.float32()))
    )
    with pytest.raises(ValidationFailed, match=r"different sample counts in recording.* 'rec-0'"):
        make_windows(uneven, spec, axes=["acc_x", "acc_y"])
    nulls = table.set_column(3, "acc_x", pa.array([None, [1.0] * 5], pa.list_(pa.float32())))
    with pytest.raises(ValidationFailed, match=r"1 null recording.*'rec-0'"):
        make_windows(nulls, spec, axes=["acc_x"])
    strings = table.set_column(3, "acc_x", pa.array([["a"], ["b"]]))
    with pytest.raises(ValidationFailed, match="holds string values"):
        make_windows(strings, spec, axes=["acc_x"])
