"""Read what users bring into ONE normalised Arrow table.

Tabular files (``.csv``, ``.parquet``, ``.jsonl``/``.ndjson``/``.json``) become their table;
several files of one kind are concatenated. A directory is a collection of sensor recordings
(one ``.csv`` or ``.wav`` file per sample, as phones and boards export them) and becomes one row
per recording: ``sample_id``, an optional ``label`` and one ``list<float32>`` column per axis.

Decisions, so that the same input always gives a byte-identical table:

- Files are read in sorted order (by their POSIX path); the order paths are given in does not
  matter and a path given twice is read once.
- CSV types are what pyarrow infers over the whole file. A column whose values disagree (numbers
  and words) is read as ``string``; integers mixed with decimals as ``float64``. Across files, an
  ``int64`` column that is ``float64`` in another file becomes ``float64``; any other type
  disagreement is an error. A column with no values at all is ``string`` (all null).
- JSON lines that pyarrow cannot type (a key holding numbers on one line and text on another)
  are read line by line: such a column becomes ``string`` and non-text values keep their JSON
  spelling (``1``, ``true``). A ``.json`` file that holds one array of objects is accepted too.
  Nested objects are flattened into ``parent.child`` columns; dictionary columns are decoded.
- Sensor axis names are sanitised: lower-cased, every run of characters outside ``[a-z0-9_]``
  replaced by one ``_``, leading/trailing ``_`` removed (``accX`` -> ``accx``,
  ``Acc X (m/s2)`` -> ``acc_x_m_s2``).
- A sensor CSV's time column is ``timestamp``, ``time`` or ``t`` (after sanitising). Its unit
  is taken from a ``_ms``/``_us``/``_s`` suffix if present, else milliseconds when the median
  step is at least 1 and seconds otherwise. A recording's step is the mean of the middle half of
  its steps (the median for regular data, stable for 16/17 ms phone jitter, blind to gaps); the
  dataset's rate is 1 / the median step over recordings, to 6 significant digits. A recording
  more than 10 % off that rate is an error; an explicit ``sample_rate`` overrides inference.
  Every other column must be numeric and complete (text or empty cells are errors).
- In a directory, hidden files and folders and files other than ``.csv``/``.wav`` are skipped,
  as is the label file. ``folder`` labels are the immediate parent folder's name (the given
  directory's own name for recordings directly inside it). ``sample_id`` is the path relative
  to the given directory, so two directories holding the same relative path are an error.
- WAV: 8-bit (unsigned), 16/24/32-bit PCM via the standard ``wave`` module, scaled by
  2^(bits-1) to float32 in [-1, 1]; channels become axes ``ch0``, ``ch1``, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeloop.datasets._inputs import (
    TABULAR_EXTENSIONS,
    LabelFrom,
    ReadResult,
    SensorInfo,
    parse_label_from,
    sanitise_name,
)
from edgeloop.datasets._recordings import _read_sensor
from edgeloop.datasets._tabular import _read_tabular
from edgeloop.errors import ValidationFailed

__all__ = [
    "TABULAR_EXTENSIONS",
    "LabelFrom",
    "ReadResult",
    "SensorInfo",
    "parse_label_from",
    "read_paths",
    "sanitise_name",
]


def read_paths(
    paths: Sequence[str | Path],
    *,
    label_from: LabelFrom | None = None,
    sample_rate: float | None = None,
) -> ReadResult:
    """Read files (tables) or directories (sensor recordings) into one normalised table.

    Every problem raises :class:`ValidationFailed` naming the file and what to fix. The same
    input always gives an identical table (see the module docstring for the rules).
    ``sample_rate`` (Hz) is for CSV recordings without a time column, or to override the rate
    inferred from it; it is an error for tables.
    """
    items: list[str | Path] = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise ValidationFailed("no paths given: pass data files or a directory of recordings")
    if sample_rate is not None and not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValidationFailed(f"sample_rate must be a positive number of Hz, not {sample_rate}")
    given: dict[Path, Path] = {}
    for item in items:
        path = Path(item)
        if not path.exists():
            raise ValidationFailed(f"{path.as_posix()} does not exist", details={"file": str(path)})
        if not (path.is_dir() or path.is_file()):
            raise ValidationFailed(f"{path.as_posix()} is neither a file nor a directory")
        given.setdefault(path.resolve(), path)
    ordered = sorted(given.values(), key=lambda p: p.as_posix())
    dirs = [p for p in ordered if p.is_dir()]
    if dirs and len(dirs) != len(ordered):
        raise ValidationFailed(
            f"give either files (tables) or directories (recordings), not both: "
            f"{dirs[0].as_posix()} is a directory, "
            f"{next(p for p in ordered if not p.is_dir()).as_posix()} a file"
        )
    if dirs:
        return _read_sensor(dirs, label_from, sample_rate)
    if sample_rate is not None:
        raise ValidationFailed("sample_rate applies to directories of recordings, not to tables")
    return _read_tabular(ordered, label_from)


# tables -------------------------------------------------------------------------------
