"""Readers: every input format, every way input can be bad, and byte-identical determinism."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.datasets._canonical import canonical_parquet
from edgeloop.datasets._readers import (
    LabelFrom,
    ReadResult,
    SensorInfo,
    parse_label_from,
    read_paths,
    sanitise_name,
)
from edgeloop.errors import ValidationFailed


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def write_wav(path: Path, frames: list[list[int]], *, rate: int = 16000, width: int = 2) -> Path:
    """A PCM WAV of integer ``frames`` (one list of channel values per frame)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = bytearray()
    for frame in frames:
        for value in frame:
            if width == 1:
                raw += struct.pack("<B", value)
            elif width == 3:
                raw += (value & 0xFFFFFF).to_bytes(3, "little")
            else:
                raw += struct.pack({2: "<h", 4: "<i"}[width], value)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(frames[0]))
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(raw))
    return path


def fails(paths: list[Path] | list[str], match: str, **kwargs: object) -> ValidationFailed:
    with pytest.raises(ValidationFailed, match=match) as info:
        read_paths(paths, **kwargs)  # type: ignore[arg-type]
    return info.value


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=131_072)
    return sink.getvalue()


# label sources ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("  folder ", LabelFrom("folder")),
        ("column:species", LabelFrom("column", "species")),
        ("file: labels.csv", LabelFrom("file", "labels.csv")),
    ],
)
def test_parse_label_from(text: str | None, expected: LabelFrom | None) -> None:
    assert parse_label_from(text) == expected


@pytest.mark.parametrize("text", ["column:", "file", "folders", "row:x"])
def test_parse_label_from_rejects_unknown_forms(text: str) -> None:
    with pytest.raises(ValidationFailed, match=r"folder.*column:NAME.*file:labels\.csv"):
        parse_label_from(text)


def test_sanitise_name() -> None:
    assert sanitise_name("accX") == "accx"
    assert sanitise_name(" Acc X (m/s²) ") == "acc_x_m_s"
    assert sanitise_name("gyro__z") == "gyro__z"


# CSV ----------------------------------------------------------------------------------


def test_csv_is_read_with_inferred_types(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "x,y,name,flag\n1,1.5,a,true\n2,,b,false\n")
    result = read_paths([f])
    assert result.table.schema == pa.schema(
        [("x", pa.int64()), ("y", pa.float64()), ("name", pa.string()), ("flag", pa.bool_())]
    )
    assert result.table.column("y").to_pylist() == [1.5, None]
    assert result.label is None and result.sensor is None
    assert result.files == (f.as_posix(),)


def test_csv_files_are_concatenated_in_sorted_order_and_widened(tmp_path: Path) -> None:
    b = write(tmp_path / "b.csv", "x,y\n3,c\n")
    a = write(tmp_path / "a.csv", "y,x\nz,1.5\n")
    e = write(tmp_path / "e.csv", "x,y\n,\n")
    result = read_paths([b, e, a, b])
    assert result.files == (a.as_posix(), b.as_posix(), e.as_posix())
    assert result.table.column_names == ["y", "x"]
    assert result.table.column("x").type == pa.float64()
    assert result.table.to_pylist() == [
        {"y": "z", "x": 1.5},
        {"y": "c", "x": 3.0},
        {"y": None, "x": None},
    ]


def test_mixed_values_make_a_string_column(tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "v\n1\n2\nthree\n")
    assert read_paths([f]).table.column("v").to_pylist() == ["1", "2", "three"]


def test_an_empty_column_is_string(tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "v,w\n1,\n2,\n")
    assert read_paths([f]).table.schema.field("w").type == pa.string()


def test_quoted_newlines_are_values(tmp_path: Path) -> None:
    f = write(tmp_path / "q.csv", 'a,b\n1,"two\nlines"\n2,"say ""hi"""\n')
    assert read_paths([f]).table.column("b").to_pylist() == ["two\nlines", 'say "hi"']


def test_csv_files_with_other_columns_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "x,y\n1,2\n")
    b = write(tmp_path / "b.csv", "x,z\n1,2\n")
    err = fails([a, b], r"b\.csv does not have the columns of .*a\.csv")
    assert err.details["missing"] == ["y"] and err.details["extra"] == ["z"]


def test_csv_files_with_other_types_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "x\n1\n")
    b = write(tmp_path / "b.csv", "x\n1\n")
    c = write(tmp_path / "c.csv", "x\nhello\n")
    fails([a, b, c], r"column 'x' is int64 in .*a\.csv but string in .*c\.csv")


def test_broken_quoting_names_the_line(tmp_path: Path) -> None:
    f = write(tmp_path / "q.csv", 'a,b\n1,x\n2,"y\n3,z\n')
    err = fails([f], r"q\.csv line 3: a quoted value opens here and is never closed")
    assert err.details["line"] == 3


def test_a_lone_quote_inside_a_value_is_text(tmp_path: Path) -> None:
    f = write(tmp_path / "h.csv", "name,height\nbob,5'11\"\nann,6'\n")
    assert read_paths([f]).table.column("height").to_pylist() == ["5'11\"", "6'"]


def test_a_runaway_quote_is_found_even_far_from_the_end(tmp_path: Path) -> None:
    rows = "".join(f"{i},text\n" for i in range(30_000))
    f = write(tmp_path / "q.csv", f'a,b\n1,"x\n{rows}')
    fails([f], r"q\.csv line 2: a quoted value opens here")


def test_ragged_rows_name_the_line(tmp_path: Path) -> None:
    f = write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5\n")
    fails([f], r"r\.csv line 3: expected 3 fields like the header, found 2")


def test_empty_csv_is_refused(tmp_path: Path) -> None:
    fails([write(tmp_path / "e.csv", "")], r"e\.csv is empty")
    fails([write(tmp_path / "w.csv", " \n\n")], r"w\.csv is empty")
    fails([write(tmp_path / "h.csv", "a,b\n")], r"h\.csv has no data rows")


def test_wrong_encoding_names_the_file_and_suggests_reencoding(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", "name,city\nzoé,Paris\n".encode("latin-1"))
    err = fails([f], r"l\.csv is not UTF-8 text \(byte 0xe9 on line 2\); re-encode it as UTF-8")
    assert "iconv" in err.message


def test_duplicate_and_empty_header_names_are_refused(tmp_path: Path) -> None:
    fails([write(tmp_path / "d.csv", "a,b,a\n1,2,3\n")], r"'a' appear more than once")
    fails([write(tmp_path / "n.csv", "a,,b\n1,2,3\n")], r"column 2 has no name")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = write(tmp_path / "b.csv", b"\xef\xbb\xbfa,b\n1,2\n")
    assert read_paths([f]).table.column_names == ["a", "b"]


# Parquet and JSON ---------------------------------------------------------------------


def test_parquet_is_read_and_normalised(tmp_path: Path) -> None:
    table = pa.table(
        {
            "cat": pa.array(["a", "b", "a"]).dictionary_encode(),
            "pos": pa.array([{"x": 1, "y": 2}] * 3),
            "v": pa.array([1.0, 2.0, 3.0], pa.float32()),
        }
    ).replace_schema_metadata({"pandas": "{}"})
    f = tmp_path / "t.parquet"
    pq.write_table(table, f)
    result = read_paths([f])
    assert result.table.column_names == ["cat", "pos.x", "pos.y", "v"]
    assert result.table.schema.field("cat").type == pa.string()
    assert result.table.schema.metadata is None


@pytest.mark.parametrize("cut", [0, 10, -20])
def test_truncated_parquet_is_refused(tmp_path: Path, cut: int) -> None:
    data = parquet_bytes(pa.table({"a": list(range(100))}))
    f = write(tmp_path / "t.parquet", data[:cut] if cut else b"")
    fails([f], r"t\.parquet is not a readable Parquet file \(truncated or corrupt\?\)")


def test_parquet_without_rows_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "z.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), f)
    fails([f], r"z\.parquet has no data rows")


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json"])
def test_json_lines(tmp_path: Path, suffix: str) -> None:
    f = write(tmp_path / f"d{suffix}", '{"a": 1, "b": "x"}\n\n{"a": 2.5, "c": {"d": true}}\n')
    table = read_paths([f]).table
    assert table.column_names == ["a", "b", "c.d"]
    assert table.to_pylist()[1] == {"a": 2.5, "b": None, "c.d": True}


def test_json_array_file(tmp_path: Path) -> None:
    f = write(tmp_path / "d.json", '[{"a": 1}, {"a": 2}]')
    assert read_paths([f]).table.column("a").to_pylist() == [1, 2]


def test_json_mixed_types_become_strings_with_their_json_spelling(tmp_path: Path) -> None:
    f = write(tmp_path / "d.jsonl", '{"v": 1}\n{"v": "two"}\n{"v": true}\n{"v": null}\n')
    assert read_paths([f]).table.column("v").to_pylist() == ["1", "two", "true", None]


def test_bad_json_line_names_the_line(tmp_path: Path) -> None:
    f = write(tmp_path / "d.jsonl", '{"a": 1}\n\n{"a": 2\n{"a": 3}\n')
    err = fails([f], r"d\.jsonl line 3: not valid JSON")
    assert err.details["line"] == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": 1}\n[1, 2]\n', r"line 2: expected a JSON object, found an array"),
        ("", r"is empty"),
        ('[{"a": 1}, 3]', r"one array of objects; found a number"),
        ('[{"a": 1},', r"line 1: not valid JSON"),
        ("[]", r"has no data rows"),
    ],
)
def test_bad_json_files(tmp_path: Path, text: str, match: str) -> None:
    fails([write(tmp_path / "d.json", text)], match)


# tables: labels and paths -------------------------------------------------------------


def test_label_column(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "x,species\n1,cat\n")
    assert read_paths([f], label_from=LabelFrom("column", "species")).label == "species"
    fails(
        [f],
        r"label column 'kind' is not in the data; columns: x, species",
        label_from=LabelFrom("column", "kind"),
    )
    fails([f], r"for tables use column:NAME", label_from=LabelFrom("folder"))
    fails([f], r"for tables use column:NAME", label_from=LabelFrom("file", "labels.csv"))


def test_path_problems(tmp_path: Path) -> None:
    csv_file = write(tmp_path / "a.csv", "x\n1\n")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "b.parquet")
    fails([tmp_path / "nope.csv"], r"nope\.csv does not exist")
    err = fails([write(tmp_path / "a.xlsx", "x")], r"unsupported file type '\.xlsx'")
    assert ".csv, .parquet, .jsonl, .ndjson, .json" in err.message
    fails([csv_file, tmp_path / "b.parquet"], r"mix csv .* and parquet")
    fails([csv_file, tmp_path], r"either files \(tables\) or directories")
    fails([], r"no paths given")
    fails([csv_file], r"sample_rate applies to directories", sample_rate=50.0)
    fails([tmp_path], r"sample_rate must be a positive number", sample_rate=-1.0)


# sensor CSV directories ---------------------------------------------------------------


def recordings(root: Path) -> Path:
    write(root / "idle" / "r1.csv", "timestamp,accX,acc Y\n0,0.1,1\n20,0.2,2\n40,0.3,3\n")
    write(root / "idle" / "r2.csv", "timestamp,accX,acc Y\n0,1,1\n20,1,1\n")
    write(root / "wave" / "sub" / "r3.csv", "timestamp,acc Y,accX\n0,5,6\n21,5,6\n40,5,6\n60,5,6\n")
    write(root / "wave" / "notes.txt", "ignored")
    write(root / ".hidden" / "x.csv", "ignored")
    return root


def test_sensor_directory_with_folder_labels(tmp_path: Path) -> None:
    root = recordings(tmp_path / "data")
    result = read_paths([root], label_from=LabelFrom("folder"))
    table = result.table
    assert table.column_names == ["sample_id", "label", "accx", "acc_y"]
    assert table.schema.field("accx").type == pa.list_(pa.float32())
    assert table.column("sample_id").to_pylist() == [
        "idle/r1.csv",
        "idle/r2.csv",
        "wave/sub/r3.csv",
    ]
    assert table.column("label").to_pylist() == ["idle", "idle", "sub"]
    assert table.column("accx").to_pylist()[0] == pytest.approx([0.1, 0.2, 0.3])
    assert table.column("acc_y").to_pylist()[2] == [5.0, 5.0, 5.0, 5.0]
    assert result.label == "label"
    assert result.sensor == SensorInfo(
        sample_rate=50.0, axes=("accx", "acc_y"), length_min=2, length_max=4
    )
    assert result.files[0] == (root / "idle" / "r1.csv").as_posix()


def test_sensor_directory_without_labels_or_time(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.csv", "x,y\n1,2\n3,4\n")
    result = read_paths([tmp_path / "d"])
    assert result.table.column_names == ["sample_id", "x", "y"]
    assert result.label is None
    assert result.sensor == SensorInfo(None, ("x", "y"), 2, 2)
    assert read_paths([tmp_path / "d"], sample_rate=100.0).sensor == SensorInfo(
        100.0, ("x", "y"), 2, 2
    )


def test_a_recording_at_the_root_gets_the_root_folder_label(tmp_path: Path) -> None:
    write(tmp_path / "idle" / "a.csv", "x\n1\n")
    result = read_paths([tmp_path / "idle"], label_from=LabelFrom("folder"))
    assert result.table.column("label").to_pylist() == ["idle"]


@pytest.mark.parametrize(
    ("header", "times", "rate"),
    [
        ("time", ["0.0", "0.01", "0.02", "0.03"], 100.0),
        ("t_ms", ["0.0", "0.5", "1.0", "1.5"], 2000.0),
        ("timestamp", ["0", "16", "33", "50", "66", "83"], 60.0),
        ("T", ["0", "1000", "2000", "3000", "90000"], 1.0),
    ],
)
def test_sample_rate_from_the_time_column(
    tmp_path: Path, header: str, times: list[str], rate: float
) -> None:
    rows = "".join(f"{t},{i}\n" for i, t in enumerate(times))
    write(tmp_path / "d" / "a.csv", f"{header},x\n{rows}")
    sensor = read_paths([tmp_path / "d"]).sensor
    assert sensor is not None and sensor.sample_rate == pytest.approx(rate, rel=0.01)
    assert sensor.axes == ("x",)


def test_label_file(tmp_path: Path) -> None:
    root = recordings(tmp_path / "data")
    write(root / "labels.csv", "file,label\nidle/r1.csv,a\n./idle/r2.csv,b\nwave/sub/r3.csv,c\n")
    result = read_paths([root], label_from=LabelFrom("file", "labels.csv"))
    assert result.table.column("label").to_pylist() == ["a", "b", "c"]
    assert "labels.csv" not in result.table.column("sample_id").to_pylist()
    (root / "labels.csv").unlink()
    outside = write(
        tmp_path / "other.csv",
        "File,Label\nidle/r1.csv,x\nidle/r2.csv,y\nwave/sub/r3.csv,z\nunknown.csv,w\n",
    )
    result = read_paths([root], label_from=LabelFrom("file", str(outside)))
    assert result.table.column("label").to_pylist() == ["x", "y", "z"]


def test_label_file_problems(tmp_path: Path) -> None:
    root = recordings(tmp_path / "data")
    write(root / "labels.csv", "file,label\nidle/r1.csv,a\nwave/sub/r3.csv,\n")
    err = fails(
        [root],
        r"2 recording\(s\) have no label in .*labels\.csv: idle/r2\.csv, "
        r"wave/sub/r3\.csv",
        label_from=LabelFrom("file", "labels.csv"),
    )
    assert err.details["missing"] == ["idle/r2.csv", "wave/sub/r3.csv"]
    write(root / "labels.csv", "name,label\nidle/r1.csv,a\n")
    fails([root], r"columns 'file' and 'label'", label_from=LabelFrom("file", "labels.csv"))
    write(root / "labels.csv", "file,label\nidle/r1.csv,a\nidle/r1.csv,b\n")
    fails(
        [root],
        r"line 3: 'idle/r1.csv' is labelled both 'a' and 'b'",
        label_from=LabelFrom("file", "labels.csv"),
    )
    fails(
        [root], r"label file 'missing.csv' not found", label_from=LabelFrom("file", "missing.csv")
    )
    fails([root], r"column labels are for tables", label_from=LabelFrom("column", "x"))


def test_inconsistent_axes_name_the_file(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.csv", "t,x,y\n0,1,2\n")
    write(tmp_path / "d" / "b.csv", "t,x,z\n0,1,2\n")
    err = fails([tmp_path / "d"], r"d/b\.csv has axes \['x', 'z'\] but .*d/a\.csv has \['x', 'y'\]")
    assert err.details["file"].endswith("d/b.csv")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("t,x\n0,1\n1,oops\n", r"a\.csv: column 'x' is not numeric \(read as string\)"),
        ("t,x\n0,1\n1,\n", r"column 'x' has 1 empty value"),
        ("t,time,x\n0,0,1\n", r"column 'time' is a second time column"),
        ("t,label,x\n0,1,1\n", r"column 'label' sanitises to 'label'"),
        ("t,X,x\n0,1,1\n", r"column 'x' sanitises to 'x'"),
        ("t\n0\n", r"a\.csv has no axis columns"),
        ("t,x\n0,1\n5,1\n5,1\n", r"time column 't' does not increase at data row 3"),
        ("t,x\nmorning,1\n", r"time column 't' is not numeric"),
        ("", r"a\.csv is empty"),
    ],
)
def test_bad_sensor_csv(tmp_path: Path, text: str, match: str) -> None:
    write(tmp_path / "d" / "a.csv", text)
    fails([tmp_path / "d"], match)


def test_a_recording_at_another_rate_is_refused(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write(tmp_path / "d" / f"{name}.csv", "t,x\n0,1\n10,1\n20,1\n")
    write(tmp_path / "d" / "z.csv", "t,x\n0,1\n20,1\n40,1\n")
    fails(
        [tmp_path / "d"],
        r"z\.csv was sampled at about 50 Hz but the recordings' median "
        r"rate is 100 Hz",
    )
    assert read_paths([tmp_path / "d"], sample_rate=100.0).sensor is not None


def test_directory_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / "readme.md", "no recordings")
    fails([tmp_path / "empty"], r"empty holds no recordings")
    write(tmp_path / "mixed" / "a.csv", "x\n1\n")
    write_wav(tmp_path / "mixed" / "b.wav", [[1]])
    fails([tmp_path / "mixed"], r"mix \.csv \(.*a\.csv\) and \.wav \(.*b\.wav\)")
    write(tmp_path / "one" / "idle" / "a.csv", "x\n1\n")
    write(tmp_path / "two" / "idle" / "a.csv", "x\n1\n")
    fails([tmp_path / "one", tmp_path / "two"], r"'idle/a\.csv' is in both")


# WAV ----------------------------------------------------------------------------------


def test_wav_16_bit_mono_and_stereo(tmp_path: Path) -> None:
    write_wav(tmp_path / "d" / "yes" / "a.wav", [[0], [16384], [-32768], [32767]])
    write_wav(tmp_path / "d" / "no" / "b.wav", [[100], [200]])
    result = read_paths([tmp_path / "d"], label_from=LabelFrom("folder"))
    assert result.table.column_names == ["sample_id", "label", "ch0"]
    assert result.table.column("sample_id").to_pylist() == ["no/b.wav", "yes/a.wav"]
    values = result.table.column("ch0").to_pylist()[1]
    assert values == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])
    assert result.sensor == SensorInfo(16000.0, ("ch0",), 2, 4)
    write_wav(tmp_path / "s" / "a.wav", [[1, -1], [2, -2]], rate=8000)
    stereo = read_paths([tmp_path / "s"])
    assert stereo.table.column_names == ["sample_id", "ch0", "ch1"]
    assert stereo.table.column("ch1").to_pylist() == [pytest.approx([-1 / 32768, -2 / 32768])]


@pytest.mark.parametrize(
    ("width", "frames", "expected"),
    [
        (1, [[128], [0], [255]], [0.0, -1.0, 127 / 128]),
        (3, [[0], [-(1 << 23)], [1 << 22]], [0.0, -1.0, 0.5]),
        (4, [[0], [-(1 << 31)], [1 << 30]], [0.0, -1.0, 0.5]),
    ],
)
def test_wav_sample_widths(
    tmp_path: Path, width: int, frames: list[list[int]], expected: list[float]
) -> None:
    write_wav(tmp_path / "d" / "a.wav", frames, width=width)
    table = read_paths([tmp_path / "d"]).table
    assert table.column("ch0").to_pylist() == [pytest.approx(expected)]


def test_wav_with_another_sample_rate_names_the_file_and_both_rates(tmp_path: Path) -> None:
    write_wav(tmp_path / "d" / "a.wav", [[1]], rate=16000)
    write_wav(tmp_path / "d" / "b.wav", [[1]], rate=8000)
    fails([tmp_path / "d"], r"d/b\.wav has sample rate 8000 Hz but .*d/a\.wav has 16000 Hz")
    write_wav(tmp_path / "e" / "a.wav", [[1]], rate=16000)
    fails(
        [tmp_path / "e"],
        r"sample_rate 44100 Hz was given but the WAV files say 16000 Hz",
        sample_rate=44100.0,
    )


def test_bad_wav_files(tmp_path: Path) -> None:
    good = write_wav(tmp_path / "x.wav", [[1], [2], [3], [4]]).read_bytes()
    write(tmp_path / "t" / "a.wav", good[:30])
    fails([tmp_path / "t"], r"a\.wav is truncated: the WAV header ends early")
    write(tmp_path / "s" / "a.wav", good[:-3])
    fails([tmp_path / "s"], r"a\.wav is truncated: the header promises 4 frames, the file holds 2")
    write(tmp_path / "g" / "a.wav", b"RIFF0000 not a wave")
    fails([tmp_path / "g"], r"a\.wav is not a readable WAV file .*16/24/32-bit integer PCM")
    floats = bytearray(good)
    floats[20:22] = struct.pack("<h", 3)  # WAVE_FORMAT_IEEE_FLOAT
    write(tmp_path / "f" / "a.wav", bytes(floats))
    fails([tmp_path / "f"], r"a\.wav is not a readable WAV file \(unknown format: 3\)")
    write_wav(tmp_path / "z" / "a.wav", [[1]])
    with wave.open(str(tmp_path / "z" / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    fails([tmp_path / "z"], r"a\.wav has no samples")
    write_wav(tmp_path / "c" / "a.wav", [[1]])
    write_wav(tmp_path / "c" / "b.wav", [[1, 2]])
    fails([tmp_path / "c"], r"b\.wav has 2 channel\(s\) but .*a\.wav has 1")


# determinism --------------------------------------------------------------------------


def test_reading_twice_gives_identical_tables_and_parquet_bytes(tmp_path: Path) -> None:
    root = recordings(tmp_path / "data")
    write_wav(tmp_path / "audio" / "x" / "a.wav", [[i, -i] for i in range(100)])
    write_wav(tmp_path / "audio" / "y" / "b.wav", [[i, i] for i in range(50)])
    rows = "".join(f"{i},{i * 0.5},{'abc'[i % 3]}\n" for i in range(5000))
    write(tmp_path / "t1.csv", f"a,b,c\n{rows}")
    write(tmp_path / "t2.csv", "c,b,a\nz,1.25,7\n")
    write(
        tmp_path / "j.jsonl", "".join(json.dumps({"k": i, "v": [i, i]}) + "\n" for i in range(50))
    )
    cases: list[tuple[list[Path], LabelFrom | None]] = [
        ([root], LabelFrom("folder")),
        ([tmp_path / "audio"], LabelFrom("folder")),
        ([tmp_path / "t1.csv", tmp_path / "t2.csv"], LabelFrom("column", "c")),
        ([tmp_path / "j.jsonl"], None),
    ]
    for paths, label in cases:
        first = read_paths(paths, label_from=label)
        second = read_paths(list(reversed(paths)), label_from=label)
        assert first.table.equals(second.table)
        assert first.files == second.files
        assert parquet_bytes(first.table) == parquet_bytes(second.table)
        # chunking as read does not change the canonical encoding (and so the digest)
        combined = first.table.combine_chunks()
        assert canonical_parquet(first.table)[1] == canonical_parquet(combined)[1]


def test_read_result_is_frozen(tmp_path: Path) -> None:
    result = read_paths([write(tmp_path / "a.csv", "x\n1\n")])
    assert isinstance(result, ReadResult)
    with pytest.raises(AttributeError):
        result.label = "x"  # type: ignore[misc]


# never another exception --------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.text(alphabet=st.sampled_from('ab,1.5"\n\r{}[]:;é \t-e'), max_size=200).map(
            lambda s: s.encode("utf-8")
        ),
    ),
    suffix=st.sampled_from([".csv", ".jsonl", ".json", ".parquet", ".wav", "dir.csv"]),
)
def test_arbitrary_bytes_give_a_result_or_validation_failed(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if suffix.startswith("dir"):
            target = Path(tmp) / "rec"
            write(target / "a.csv", data)
            write(target / "b.csv", "x\n1\n")
        elif suffix == ".wav":
            target = Path(tmp) / "rec"
            write(target / "a.wav", data)
        else:
            target = write(Path(tmp) / f"f{suffix}", data)
        outcome: ReadResult | ValidationFailed
        try:
            outcome = read_paths([target])
        except ValidationFailed as exc:
            outcome = exc
        if isinstance(outcome, ValidationFailed):
            assert outcome.message
        else:
            assert outcome.table.num_rows > 0
            assert os.path.basename(outcome.files[0])


def test_sensor_values_beyond_float32_become_infinite(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.csv", "x\n1e40\n-1\n")
    values = read_paths([tmp_path / "d"]).table.column("x").to_pylist()[0]
    assert values[1] == -1.0 and np.isinf(values[0])
