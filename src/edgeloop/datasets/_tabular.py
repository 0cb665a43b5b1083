"""Reading tables: CSV, Parquet and JSON (lines or an array), checked and normalised."""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from edgeloop.datasets._inputs import _CHUNK, _SUPPORTED, TABULAR_EXTENSIONS, LabelFrom, ReadResult
from edgeloop.errors import ValidationFailed


def _read_tabular(files: list[Path], label_from: LabelFrom | None) -> ReadResult:
    kinds: dict[str, Path] = {}
    for f in files:
        kind = TABULAR_EXTENSIONS.get(f.suffix.lower())
        if kind is None:
            raise ValidationFailed(
                f"{f.as_posix()}: unsupported file type {f.suffix or '(no extension)'!r}; "
                f"supported: {_SUPPORTED}",
                details={"file": f.as_posix()},
            )
        kinds.setdefault(kind, f)
    if len(kinds) > 1:
        (ka, fa), (kb, fb) = sorted(kinds.items())[:2]
        raise ValidationFailed(
            f"the files mix {ka} ({fa.as_posix()}) and {kb} ({fb.as_posix()}); "
            "convert them to one format"
        )
    reader = {"csv": _read_csv, "parquet": _read_parquet, "json": _read_json}[next(iter(kinds))]
    tables = [(f.as_posix(), _normalise(reader(f, f.as_posix()), f.as_posix())) for f in files]
    table = _concat(tables)
    label = None
    if label_from is not None:
        if label_from.kind != "column":
            raise ValidationFailed(
                f"label source {label_from.kind!r} is for directories of recordings; "
                "for tables use column:NAME"
            )
        if label_from.value not in table.column_names:
            raise ValidationFailed(
                f"label column {label_from.value!r} is not in the data; columns: "
                f"{', '.join(table.column_names)}"
            )
        label = label_from.value
    files_read = tuple(name for name, _ in tables)
    return ReadResult(table=_finish(table), label=label, sensor=None, files=files_read)


def _check_text(path: Path, display: str) -> tuple[bool, bool]:
    """Stream the file once: fail on bytes that are not UTF-8 (naming the line); return
    (has content, has an odd number of double quotes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = quotes = 0
    content = False
    try:
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                pending = decoder.getstate()[0]
                try:
                    decoder.decode(chunk, not chunk)
                except UnicodeDecodeError as exc:
                    data = pending + chunk
                    line = lines + data[: exc.start].count(b"\n") + 1
                    raise ValidationFailed(
                        f"{display} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
                        f"{line}); re-encode it as UTF-8, e.g. "
                        f"'iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}'",
                        details={"file": display, "line": line},
                    ) from None
                if not chunk:
                    return content, quotes % 2 == 1
                lines += chunk.count(b"\n")
                quotes += chunk.count(b'"')
                content = content or bool(chunk.replace(codecs.BOM_UTF8, b"").strip())
    except OSError as exc:
        raise _unreadable(display, exc) from exc


def _unreadable(display: str, exc: OSError) -> ValidationFailed:
    return ValidationFailed(
        f"{display} cannot be read: {exc.strerror or exc}", details={"file": display}
    )


def _read_csv(path: Path, display: str) -> pa.Table:
    content, odd_quotes = _check_text(path, display)
    if not content:
        raise ValidationFailed(f"{display} is empty", details={"file": display})
    line = _unclosed_quote(path) if odd_quotes else 0
    if line:
        raise ValidationFailed(
            f"{display} line {line}: a quoted value opens here and is never closed; add the "
            'missing " (a quote inside a quoted value is written "")',
            details={"file": display, "line": line},
        )
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        # Streaming holds far less memory than read_csv; it infers types from the first block,
        # so a later block that disagrees raises and the whole-file reader decides instead.
        with pacsv.open_csv(path, parse_options=parse) as reader:
            return pa.Table.from_batches(list(reader), schema=reader.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(path, display, exc) from exc
    try:
        return pacsv.read_csv(path, parse_options=parse)
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(path, display, exc) from exc


def _unclosed_quote(path: Path) -> int:
    """The line of a row whose quoted value never closes (pyarrow would silently read the rest
    of the file into it), or 0. A lone quote inside an unquoted value (5'11") is fine."""
    start = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            for _ in reader:
                start = reader.line_num + 1
    except csv.Error as exc:
        runaway = "unexpected end of data" in str(exc) or "field larger" in str(exc)
        return start if runaway else 0
    return 0


def _csv_error(path: Path, display: str, exc: Exception) -> ValidationFailed:
    """Find the line pyarrow tripped on (pyarrow names the row's text, not its line)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            for row in reader:
                if row and len(row) != len(header):
                    return ValidationFailed(
                        f"{display} line {reader.line_num}: expected {len(header)} fields like "
                        f"the header, found {len(row)}; every row needs the same fields",
                        details={"file": display, "line": reader.line_num},
                    )
    except (csv.Error, OSError, UnicodeDecodeError):
        pass
    return ValidationFailed(
        f"{display} is not a readable CSV file: {exc}", details={"file": display}
    )


def _read_parquet(path: Path, display: str) -> pa.Table:
    try:
        parquet = pq.ParquetFile(path)
        if parquet.num_row_groups <= 1:
            return parquet.read()
        # one row group at a time: the decoder's buffers never hold the whole file
        return pa.concat_tables(parquet.read_row_group(i) for i in range(parquet.num_row_groups))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(
            f"{display} is not a readable Parquet file (truncated or corrupt?): {exc}; "
            "write it again",
            details={"file": display},
        ) from exc


def _read_json(path: Path, display: str) -> pa.Table:
    content, _ = _check_text(path, display)
    if not content:
        raise ValidationFailed(f"{display} is empty", details={"file": display})
    with path.open("rb") as fh:
        head = fh.read(4096).replace(codecs.BOM_UTF8, b"").lstrip()[:1]
    if head != b"[":
        try:
            return pajson.read_json(path)
        except (pa.ArrowException, OSError):
            pass  # find the bad line, or type mixed columns, the slow way
    try:
        with path.open(encoding="utf-8-sig") as fh:
            rows = _json_array(fh.read(), display) if head == b"[" else _json_lines(fh, display)
    except OSError as exc:
        raise _unreadable(display, exc) from exc
    if not rows:
        raise ValidationFailed(f"{display} has no data rows", details={"file": display})
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return pa.table({name: _json_column([row.get(name) for row in rows]) for name in names})


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else "a number")


def _json_lines(lines: Any, display: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"{display} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "each line must hold one JSON object",
                details={"file": display, "line": number},
            ) from exc
        if not isinstance(value, dict):
            raise ValidationFailed(
                f"{display} line {number}: expected a JSON object, found {_json_type(value)}",
                details={"file": display, "line": number},
            )
        rows.append(value)
    return rows


def _json_array(text: str, display: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{display} line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})",
            details={"file": display, "line": exc.lineno},
        ) from exc
    items = value if isinstance(value, list) else [value]
    bad = [v for v in items if not isinstance(v, dict)]
    if bad or not isinstance(value, list):
        raise ValidationFailed(
            f"{display} must hold JSON lines (one object per line) or one array of objects; "
            f"found {_json_type(bad[0] if bad else value)}",
            details={"file": display},
        )
    return items


def _json_column(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    simple = {frozenset({bool}): pa.bool_(), frozenset({int}): pa.int64()}
    typ = simple.get(frozenset(kinds))
    typ = typ or (pa.float64() if kinds <= {int, float} else None)
    if kinds and (typ is not None or kinds <= {str} or kinds <= {dict} or kinds <= {list}):
        try:
            return pa.array(values, type=typ)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            pass
    return pa.array(
        [
            v if v is None or isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
            for v in values
        ],
        type=pa.string(),
    )


def _normalise(table: pa.Table, display: str) -> pa.Table:
    """Flatten nested objects, decode dictionaries, drop metadata, check the header."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    names = table.column_names
    if not names or table.num_rows == 0:
        raise ValidationFailed(f"{display} has no data rows", details={"file": display})
    for index, name in enumerate(names, 1):
        if not name.strip():
            raise ValidationFailed(f"{display}: column {index} has no name; name every column")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValidationFailed(
            f"{display}: column name(s) {', '.join(map(repr, duplicated))} appear more than "
            "once; column names must be unique",
            details={"file": display},
        )
    return pa.Table.from_arrays(columns, names=names)


def _common_type(types: list[pa.DataType]) -> pa.DataType | None:
    distinct: list[pa.DataType] = []
    for t in types:
        if not pa.types.is_null(t) and t not in distinct:
            distinct.append(t)
    if len(distinct) <= 1:
        return distinct[0] if distinct else pa.null()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in distinct):
        if any(pa.types.is_floating(t) for t in distinct):
            return pa.float64()
        return None if pa.uint64() in distinct else pa.int64()
    return None


def _concat(tables: list[tuple[str, pa.Table]]) -> pa.Table:
    first_name, first = tables[0]
    if len(tables) == 1:
        return first
    names = first.column_names
    for display, table in tables[1:]:
        missing = [n for n in names if n not in table.column_names]
        extra = [n for n in table.column_names if n not in names]
        if missing or extra:
            raise ValidationFailed(
                f"{display} does not have the columns of {first_name}: missing "
                f"{missing or 'none'}, extra {extra or 'none'}; files read together need the "
                "same columns",
                details={"file": display, "missing": missing, "extra": extra},
            )
    targets: dict[str, pa.DataType] = {}
    for name in names:
        types = [t.schema.field(name).type for _, t in tables]
        target = _common_type(types)
        if target is None:
            seen = [(d, t.schema.field(name).type) for d, t in tables]
            da, ta = next((d, t) for d, t in seen if not pa.types.is_null(t))
            db, tb = next((d, t) for d, t in seen if not pa.types.is_null(t) and t != ta)
            raise ValidationFailed(
                f"column {name!r} is {ta} in {da} but {tb} in {db}; make the files hold the "
                "same kind of values",
                details={"column": name},
            )
        targets[name] = target
    cast = [
        pa.Table.from_arrays([t.column(n).cast(targets[n], safe=False) for n in names], names=names)
        for _, t in tables
    ]
    return pa.concat_tables(cast)


def _finish(table: pa.Table) -> pa.Table:
    """All-null columns become ``string``; no metadata. (Chunking is left as read: it does not
    change the canonical Parquet encoding, and combining would copy the whole table.)"""
    columns = [c.cast(pa.string()) if pa.types.is_null(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


# sensor recordings --------------------------------------------------------------------
