"""Shared pieces of the readers: what a read returns, label sources, constants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from edgeloop.errors import ValidationFailed

__all__ = [
    "TABULAR_EXTENSIONS",
    "LabelFrom",
    "ReadResult",
    "SensorInfo",
    "parse_label_from",
    "sanitise_name",
]

TABULAR_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
"""File extensions read as tables, and the reader each one uses."""

_RECORDING_EXTENSIONS = (".csv", ".wav")
_SUPPORTED = ".csv, .parquet, .jsonl, .ndjson, .json, or a directory of .csv/.wav recordings"
_TIME_UNITS: dict[str, float | None] = {"": None, "_ms": 1e-3, "_us": 1e-6, "_s": 1.0}
_TIME_NAMES = {f"{b}{s}": f for b in ("timestamp", "time", "t") for s, f in _TIME_UNITS.items()}
_RESERVED = ("sample_id", "label")
_RATE_TOLERANCE = 0.10
_CHUNK = 1 << 22
_LISTED = 10

Floats = npt.NDArray[np.float32]
Recording = tuple[Path, str]  # (the directory given, the POSIX path relative to it)


@dataclass(frozen=True)
class LabelFrom:
    """Where labels come from: a table's ``column`` (``value`` = its name), the ``folder`` a
    recording sits in, or a label ``file`` (``value`` = a CSV with columns ``file,label``)."""

    kind: Literal["column", "folder", "file"]
    value: str = ""


@dataclass(frozen=True)
class SensorInfo:
    """What a directory of recordings looked like: its sample rate in Hz (``None`` if unknown),
    its axes (sanitised column names, or ``ch0..`` for WAV) and the shortest and longest
    recording in samples."""

    sample_rate: float | None
    axes: tuple[str, ...]
    length_min: int
    length_max: int


@dataclass(frozen=True)
class ReadResult:
    """The normalised table, its label column (if any), the sensor description (recordings
    only) and the files that were read, as POSIX paths in the order they were read."""

    table: pa.Table
    label: str | None
    sensor: SensorInfo | None
    files: tuple[str, ...]


def parse_label_from(text: str | None) -> LabelFrom | None:
    """Parse ``folder``, ``column:NAME`` or ``file:labels.csv``; ``None`` or ``""`` is no label."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    kind, sep, value = raw.partition(":")
    kind, value = kind.strip(), value.strip()
    if raw == "folder":
        return LabelFrom("folder")
    if sep and value and kind == "column":
        return LabelFrom("column", value)
    if sep and value and kind == "file":
        return LabelFrom("file", value)
    raise ValidationFailed(
        f"label source {text!r} is not understood; use 'folder', 'column:NAME' or 'file:labels.csv'"
    )


def sanitise_name(name: str) -> str:
    """A column name reduced to ``[a-z0-9_]``: ``"Acc X (m/s2)"`` -> ``"acc_x_m_s2"``."""
    return re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
