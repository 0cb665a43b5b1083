"""One canonical encoding: identical data gives identical bytes, however it is chunked."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from edgeloop.datasets import canonical_parquet, read_parquet_bytes


def _table(rows: int = 300_000) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "f": rng.normal(size=rows),
            "i": rng.integers(0, 50, rows),
            "s": rng.choice(["a", "b", "c"], rows),
            "seq": pa.array([[float(v)] * 3 for v in range(rows)], pa.list_(pa.float32())),
        }
    )


def test_chunking_does_not_change_the_digest() -> None:
    table = _table()
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=7_777))
    assert chunked.column(0).num_chunks > 30
    data, digest = canonical_parquet(table)
    assert canonical_parquet(chunked)[1] == digest
    assert read_parquet_bytes(data).equals(table)


def test_metadata_does_not_change_the_digest() -> None:
    table = _table(1000)
    tagged = table.replace_schema_metadata({b"pandas": b"{}"})
    assert canonical_parquet(tagged)[1] == canonical_parquet(table)[1]
