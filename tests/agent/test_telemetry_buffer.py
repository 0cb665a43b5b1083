"""The telemetry buffer's compact, append-only journal: sketches and predictions packed,
one line appended per window (never a rewrite), compaction, a torn last line after a crash,
the older one-window-per-line format, and the protocol's bodies given back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeloop.agent._telemetry import TelemetryBuffer
from edgeloop.agent._telemetry_buffer import COMPACT_SLACK, pack_record, unpack_record
from edgeloop.monitoring import WindowSketch, build_reference

RNG = np.random.default_rng(8)
F = 20
REFERENCE = build_reference(
    RNG.normal(size=(1000, F)),
    [f"f{i}" for i in range(F)],
    labels=["a", "b", "c"],
    proba=RNG.dirichlet([1, 1, 1], 1000),
)


def _window(start: int, *, sketch: bool = True, predictions: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = {"window_start": start, "dropped_windows": 0, "sketches": None}
    if sketch:
        window = REFERENCE.new_window()
        for _ in range(50):
            window.update(RNG.normal(size=(8, F)) * 2, RNG.dirichlet([1, 1, 1], 8))
        record["sketches"] = window.to_dict()
    if predictions:
        record["predictions"] = [
            {"id": f"d/{start + i}-{i + 1}", "predicted": "a", "confidence": 0.5, "at": start + i}
            for i in range(predictions)
        ]
    return record


def test_packed_windows_come_back_as_the_protocol_bodies(tmp_path: Path) -> None:
    record = _window(1, predictions=50)
    packed = pack_record(record)
    assert packed["sketches"] is None and "predictions" not in packed
    body = unpack_record(json.loads(json.dumps(packed)))
    assert set(body["sketches"]) == {"packed"}  # sent compact, never decoded on the device
    assert WindowSketch.from_wire(body["sketches"]) == WindowSketch.from_dict(record["sketches"])
    assert {k: v for k, v in body.items() if k != "sketches"} == {
        k: v for k, v in record.items() if k != "sketches"
    }
    as_json = len(json.dumps(record, separators=(",", ":")))
    assert len(json.dumps(packed, separators=(",", ":"))) * 2.5 < as_json
    compact = {**record, "sketches": WindowSketch.from_dict(record["sketches"]).to_packed()}
    assert unpack_record(pack_record(compact)) == compact  # what the agent buffers now
    plain = {"window_start": 2, "sketches": None, "dropped_windows": 0}
    assert unpack_record(pack_record(plain)) == plain
    odd = {"window_start": 3, "sketches": {"type": "nonsense"}}  # kept as it is
    assert unpack_record(pack_record(odd)) == odd


def test_appends_add_one_line_and_never_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    buffer = TelemetryBuffer(path, capacity=100)
    buffer.append(_window(0))
    inode, before = path.stat().st_ino, path.read_bytes()
    buffer.append(_window(1))
    after = path.read_bytes()
    assert path.stat().st_ino == inode and after.startswith(before)
    assert after.count(b"\n") == 2
    buffer.remove_first(1)
    assert path.read_bytes().splitlines()[-1] == b'{"sent":1}'
    reopened = TelemetryBuffer(path, capacity=100)
    assert reopened.pending() == buffer.pending()
    assert [r["window_start"] for r in reopened.pending()] == [1]
    assert path.read_bytes().count(b"\n") == 1  # compacted on open: only the live window


def test_the_journal_is_compacted_as_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    buffer = TelemetryBuffer(path, capacity=3)
    for i in range(40):  # offline: every append past 3 drops the oldest
        buffer.append(_window(i))
    live = sum(len(line) + 1 for line in path.read_bytes().splitlines()[-3:])
    assert path.stat().st_size <= 2 * live + COMPACT_SLACK  # 40 windows would be ~5x that
    kept = buffer.pending()
    assert [r["window_start"] for r in kept] == [37, 38, 39]
    assert kept[0]["dropped_windows"] == 37
    assert TelemetryBuffer(path, capacity=3).pending() == kept


def test_a_torn_last_line_is_ignored_and_cleaned_up(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    buffer = TelemetryBuffer(path, capacity=10)
    for i in range(3):
        buffer.append(_window(i, sketch=i == 1))
    kept = buffer.pending()
    with open(path, "ab") as fh:  # the crash happened in the middle of the fourth append
        fh.write(b'{"add":{"window_start":3,"sketches_pa')
    reopened = TelemetryBuffer(path, capacity=10)
    assert reopened.pending() == kept
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 3
    reopened.append(_window(4, sketch=False))
    assert [r["window_start"] for r in TelemetryBuffer(path, 10).pending()] == [0, 1, 2, 4]


def test_the_older_format_is_read_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    old = [_window(0), _window(1, sketch=False)]
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in old))
    buffer = TelemetryBuffer(path, capacity=10)
    sent = [  # JSON sketches of older journals are sent in the compact form
        {**r, "sketches": WindowSketch.from_dict(r["sketches"]).to_packed()} if r["sketches"] else r
        for r in old
    ]
    assert buffer.pending() == sent
    assert b"sketches_packed" in path.read_bytes()
    assert TelemetryBuffer(path, capacity=10).pending() == sent
