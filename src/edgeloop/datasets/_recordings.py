"""Reading directories of sensor recordings: one CSV or WAV file per sample."""

from __future__ import annotations

import csv
import os
import struct
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa

from edgeloop.datasets._inputs import (
    _LISTED,
    _RATE_TOLERANCE,
    _RECORDING_EXTENSIONS,
    _RESERVED,
    _TIME_NAMES,
    Floats,
    LabelFrom,
    ReadResult,
    Recording,
    SensorInfo,
    sanitise_name,
)
from edgeloop.datasets._tabular import _check_text, _normalise, _read_csv, _unreadable
from edgeloop.errors import ValidationFailed


def _read_sensor(dirs: list[Path], label_from: LabelFrom | None, rate: float | None) -> ReadResult:
    if label_from is not None and label_from.kind == "column":
        raise ValidationFailed(
            "column labels are for tables; label recordings with 'folder' or 'file:labels.csv'"
        )
    label_file = None
    if label_from is not None and label_from.kind == "file":
        label_file = _find_label_file(label_from.value, dirs)
    recordings: list[Recording] = []
    owner: dict[str, Path] = {}
    for root in dirs:
        found = _walk(root, label_file)
        if not found:
            raise ValidationFailed(
                f"{root.as_posix()} holds no recordings: expected .csv or .wav files, one per "
                "sample (in one sub-folder per label, or with a label file)",
                details={"file": root.as_posix()},
            )
        for rel in found:
            if rel in owner:
                raise ValidationFailed(
                    f"recording {rel!r} is in both {owner[rel].as_posix()} and "
                    f"{root.as_posix()}; pass their common parent directory instead"
                )
            owner[rel] = root
            recordings.append((root, rel))
    by_kind = {Path(rel).suffix.lower(): (root / rel).as_posix() for root, rel in recordings}
    if len(by_kind) > 1:
        raise ValidationFailed(
            f"the recordings mix .csv ({by_kind['.csv']}) and .wav ({by_kind['.wav']}) files; "
            "one dataset holds one kind"
        )
    labels: list[str] | None = None
    if label_file is not None:
        labels = _labels_from_file(label_file, [rel for _, rel in recordings])
    elif label_from is not None:
        labels = [_folder_label(root, rel) for root, rel in recordings]
    if ".wav" in by_kind:
        axes, data, rate = _read_wavs(recordings, rate)
    else:
        axes, data, rate = _read_sensor_csvs(recordings, rate)
    lengths = [len(values) for values in data[axes[0]]]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValidationFailed("the recordings hold more than 2^31 samples; add them in parts")
    columns: dict[str, pa.Array] = {"sample_id": pa.array([r for _, r in recordings], pa.string())}
    if labels is not None:
        columns["label"] = pa.array(labels, pa.string())
    for axis in axes:
        flat = pa.array(np.concatenate(data[axis]), type=pa.float32())
        columns[axis] = pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)), flat, type=pa.list_(pa.float32())
        )
    return ReadResult(
        table=pa.table(columns),
        label=None if labels is None else "label",
        sensor=SensorInfo(rate, tuple(axes), min(lengths), max(lengths)),
        files=tuple((root / rel).as_posix() for root, rel in recordings),
    )


def _walk(root: Path, exclude: Path | None) -> list[str]:
    """Recording files under ``root`` (hidden files and folders skipped), sorted."""

    def fail(exc: OSError) -> None:
        raise _unreadable(str(exc.filename or root), exc)

    found: list[str] = []
    for folder, subdirs, names in os.walk(root, onerror=fail):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in names:
            path = Path(folder) / name
            if name.startswith(".") or path.suffix.lower() not in _RECORDING_EXTENSIONS:
                continue
            if exclude is None or path.resolve() != exclude:
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _folder_label(root: Path, rel: str) -> str:
    parent = Path(rel).parent
    return parent.name if parent.parts else root.resolve().name


def _find_label_file(value: str, dirs: list[Path]) -> Path:
    candidate = Path(value)
    options = [candidate] if candidate.is_absolute() else [candidate, *(d / value for d in dirs)]
    for option in options:
        if option.is_file():
            return option.resolve()
    raise ValidationFailed(
        f"label file {value!r} not found (looked for {', '.join(o.as_posix() for o in options)})"
    )


def _labels_from_file(path: Path, samples: list[str]) -> list[str]:
    display = path.as_posix()
    _check_text(path, display)
    mapping: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if "file" not in header or "label" not in header:
                raise ValidationFailed(
                    f"label file {display} needs a header with columns 'file' and 'label'; "
                    f"found {header}",
                    details={"file": display},
                )
            file_at, label_at = header.index("file"), header.index("label")
            for row in reader:
                if len(row) <= max(file_at, label_at) or not row[label_at].strip():
                    continue
                key = row[file_at].strip().replace("\\", "/").removeprefix("./")
                label = row[label_at].strip()
                if mapping.setdefault(key, label) != label:
                    raise ValidationFailed(
                        f"label file {display} line {reader.line_num}: {key!r} is labelled both "
                        f"{mapping[key]!r} and {label!r}",
                        details={"file": display, "line": reader.line_num},
                    )
    except csv.Error as exc:
        raise ValidationFailed(f"label file {display} is not valid CSV: {exc}") from exc
    except OSError as exc:
        raise _unreadable(display, exc) from exc
    missing = [s for s in samples if s not in mapping]
    if missing:
        raise ValidationFailed(
            f"{len(missing)} recording(s) have no label in {display}: "
            f"{', '.join(missing[:_LISTED])}{' …' if len(missing) > _LISTED else ''}; add a "
            "'file,label' row for each (file relative to the directory)",
            details={"file": display, "missing": missing[:100]},
        )
    return [mapping[s] for s in samples]


def _read_sensor_csvs(
    recordings: list[Recording], sample_rate: float | None
) -> tuple[list[str], dict[str, list[Floats]], float | None]:
    axes: list[str] = []
    first = ""
    data: dict[str, list[Floats]] = {}
    steps: list[tuple[str, float]] = []
    for root, rel in recordings:
        display = (root / rel).as_posix()
        values, step = _sensor_csv(root / rel, display)
        if not axes:
            axes, first, data = list(values), display, {a: [] for a in values}
        elif sorted(values) != sorted(axes):
            raise ValidationFailed(
                f"{display} has axes {sorted(values)} but {first} has {sorted(axes)}; every "
                "recording needs the same axes",
                details={"file": display},
            )
        for axis in axes:
            data[axis].append(values[axis])
        if step is not None:
            steps.append((display, step))
    if sample_rate is not None or not steps:
        return axes, data, sample_rate
    rate = float(f"{1.0 / float(np.median([s for _, s in steps])):.6g}")
    for display, step in steps:
        if abs(1.0 / step - rate) > _RATE_TOLERANCE * rate:
            raise ValidationFailed(
                f"{display} was sampled at about {1.0 / step:.6g} Hz but the recordings' median "
                f"rate is {rate:.6g} Hz; resample or remove it, or pass sample_rate",
                details={"file": display},
            )
    return axes, data, rate


def _sensor_csv(path: Path, display: str) -> tuple[dict[str, Floats], float | None]:
    """One recording's axes (sanitised names, float32) and its time step in seconds."""
    table = _normalise(_read_csv(path, display), display)
    values: dict[str, Floats] = {}
    step: float | None = None
    timed = False
    for name, column in zip(table.column_names, table.columns, strict=True):
        clean = sanitise_name(name)
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        problem = ""
        if clean in _TIME_NAMES:
            problem = "is a second time column" if timed else ""
            timed = True
        elif not clean or clean in _RESERVED or clean in values:
            problem = f"sanitises to {clean!r}, which is empty, reserved or taken; rename it"
        elif not numeric:
            problem = f"is not numeric (read as {column.type}); a recording holds numbers only"
        if not problem and column.null_count:
            problem = f"has {column.null_count} empty value(s); every sample needs a value"
        if problem:
            raise ValidationFailed(
                f"{display}: column {name!r} {problem}", details={"file": display}
            )
        if clean in _TIME_NAMES:
            step = _time_step(column, _TIME_NAMES[clean], name, display)
        else:
            with np.errstate(over="ignore"):  # beyond float32: +-inf, like any float32 cast
                values[clean] = column.to_numpy().astype(np.float32)
    if not values:
        raise ValidationFailed(f"{display} has no axis columns", details={"file": display})
    return values, step


def _time_step(
    column: pa.ChunkedArray, factor: float | None, name: str, display: str
) -> float | None:
    if pa.types.is_timestamp(column.type):
        times = column.cast(pa.int64()).to_numpy().astype(np.float64)
        factor = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[column.type.unit]
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        times = column.to_numpy().astype(np.float64)
    else:
        raise ValidationFailed(
            f"{display}: time column {name!r} is not numeric (read as {column.type})",
            details={"file": display},
        )
    steps = np.diff(times)
    if steps.size == 0:
        return None
    if not (steps > 0).all():
        row = int(np.argmin(steps > 0)) + 2
        raise ValidationFailed(
            f"{display}: time column {name!r} does not increase at data row {row}; sort the "
            "samples by time",
            details={"file": display, "row": row},
        )
    if factor is None:
        factor = 1e-3 if float(np.median(steps)) >= 1.0 else 1.0
    ordered = np.sort(steps)
    quarter = ordered.size // 4
    return float(ordered[quarter : ordered.size - quarter].mean()) * factor


def _read_wavs(
    recordings: list[Recording], sample_rate: float | None
) -> tuple[list[str], dict[str, list[Floats]], float]:
    data: dict[str, list[Floats]] = {}
    rate, first = 0.0, ""
    for root, rel in recordings:
        display = (root / rel).as_posix()
        file_rate, frames = _read_wav(root / rel, display)
        if not data:
            rate, first = file_rate, display
            data = {f"ch{i}": [] for i in range(frames.shape[1])}
        elif file_rate != rate:
            raise ValidationFailed(
                f"{display} has sample rate {file_rate:g} Hz but {first} has {rate:g} Hz; every "
                "recording must share one sample rate (resample it)",
                details={"file": display},
            )
        elif frames.shape[1] != len(data):
            raise ValidationFailed(
                f"{display} has {frames.shape[1]} channel(s) but {first} has {len(data)}",
                details={"file": display},
            )
        for index, channel in enumerate(data.values()):
            channel.append(np.ascontiguousarray(frames[:, index]))
    if sample_rate is not None and sample_rate != rate:
        raise ValidationFailed(
            f"sample_rate {sample_rate:g} Hz was given but the WAV files say {rate:g} Hz; "
            "leave sample_rate out for WAV recordings"
        )
    return list(data), data, rate


def _read_wav(path: Path, display: str) -> tuple[float, Floats]:
    """(sample rate, frames x channels scaled to [-1, 1])."""
    hint = "; edgeloop reads 8/16/24/32-bit integer PCM WAV (convert with e.g. ffmpeg)"
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.getnframes()
            raw = w.readframes(frames)
    except EOFError as exc:
        raise ValidationFailed(
            f"{display} is truncated: the WAV header ends early", details={"file": display}
        ) from exc
    except (wave.Error, OSError, ValueError, RuntimeError, struct.error) as exc:
        raise ValidationFailed(
            f"{display} is not a readable WAV file ({exc}){hint}", details={"file": display}
        ) from exc
    size = frames * channels * width
    if frames == 0 or len(raw) < size or width not in (1, 2, 3, 4):
        problem = (
            "has no samples"
            if frames == 0
            else f"is truncated: the header promises {frames} frames, the file holds "
            f"{len(raw) // max(channels * width, 1)}"
            if len(raw) < size
            else f"has {8 * width}-bit samples"
        )
        raise ValidationFailed(f"{display} {problem}{hint}", details={"file": display})
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
    else:
        ints = np.frombuffer(raw, np.dtype({1: "u1", 2: "<i2", 4: "<i4"}[width]))
    scale = float(1 << (8 * width - 1))
    centred = ints.astype(np.float64) - (128.0 if width == 1 else 0.0)
    return float(rate), (centred / scale).astype(np.float32).reshape(frames, channels)
