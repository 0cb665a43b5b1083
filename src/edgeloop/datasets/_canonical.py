"""One canonical Parquet encoding per table, so identical data has one content digest."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from edgeloop.errors import ValidationFailed

__all__ = ["canonical_parquet", "read_parquet_bytes", "write_canonical_parquet"]


def write_canonical_parquet(table: pa.Table, sink: str | Path | BinaryIO) -> None:
    """Write ``table`` with the fixed options and no key-value metadata."""
    clean = table.replace_schema_metadata(None)
    floats = [f.name for f in clean.schema if pa.types.is_floating(f.type)]
    pq.write_table(
        clean,
        sink,
        compression="zstd",
        row_group_size=131_072,
        # Dictionaries help strings and small integers; measured floats are nearly all
        # distinct, and byte-stream-split makes them compress better and faster.
        use_dictionary=[f.name for f in clean.schema if f.name not in floats],
        use_byte_stream_split=floats or False,
        write_statistics=True,
    )


def canonical_parquet(table: pa.Table) -> tuple[bytes, str]:
    """Canonical Parquet bytes of ``table`` and their SHA-256 (identical data, one digest)."""
    sink = io.BytesIO()
    write_canonical_parquet(table, sink)
    data = sink.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def read_parquet_bytes(data: bytes) -> pa.Table:
    try:
        return pq.ParquetFile(pa.BufferReader(data)).read()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise ValidationFailed(f"the uploaded data is not a readable Parquet file: {exc}") from exc
