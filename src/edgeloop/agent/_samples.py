"""Data collection on the device: a bounded on-disk ring of the last raw inputs, and the
crash-safe upload of what a collection request asks for.

The ring exists only on a device that opted in (``--collect-data``); without it the agent
keeps no input at all. ``samples/ring.bin`` holds ``capacity`` fixed-size records, each
``seq`` (int64, from 1), ``captured_at`` (int64, epoch ms), a label (64 bytes of UTF-8, NUL
padded: empty until local feedback labels the sample) and the flat float32 input. Record
``seq`` sits at slot ``(seq - 1) % capacity``, so the newest input overwrites the oldest and
the file never grows past ``capacity`` records (``samples/ring.json`` holds the layout; a
model with another input width starts the ring afresh).

An upload is written to ``samples/pending.json`` (atomically, with its idempotency key,
``upload_id``) before it is sent and removed once the server acknowledged it; after a crash
the same body is sent again, and the server adds its rows only once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import struct
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeloop.agent._fs import atomic_write
from edgeloop.errors import (
    BackendUnavailable,
    Conflict,
    EdgeloopError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

__all__ = ["LABEL_BYTES", "Sample", "SampleRing", "SampleUploader", "build_row"]

log = logging.getLogger("edgeloop.agent")
LABEL_BYTES = 64
_HEAD = struct.Struct("<qq")
_F32 = np.dtype("<f4")

Sample = tuple[int, int, str | None, npt.NDArray[np.float32]]
"""(seq, captured_at ms, label or None, flat float32 input)."""


class SampleRing:
    """The last ``capacity`` raw inputs (one per sample of each inference batch), on disk."""

    def __init__(self, folder: Path, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the sample buffer needs room for 1 sample, got {capacity}")
        self.folder, self.capacity = folder, capacity
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path, self.meta = folder / "ring.bin", folder / "ring.json"
        self._lock = threading.Lock()
        self.width = 0
        self.next_seq = 1
        try:
            meta = json.loads(self.meta.read_text())
            if int(meta["capacity"]) == capacity and int(meta["label_bytes"]) == LABEL_BYTES:
                self.width = int(meta["width"])
        except (OSError, ValueError, KeyError, TypeError):
            self.width = 0
        if not self.path.exists():
            self.width = 0
        if self.width:
            seqs = [s[0] for s in self._records()]
            self.next_seq = max(seqs, default=0) + 1

    @property
    def record_size(self) -> int:
        return _HEAD.size + LABEL_BYTES + 4 * self.width

    def _reset(self, width: int) -> None:
        self.width, self.next_seq = width, 1
        self.path.write_bytes(b"")
        atomic_write(
            self.meta,
            json.dumps(
                {"capacity": self.capacity, "width": width, "label_bytes": LABEL_BYTES}
            ).encode(),
        )

    def append(self, batch: npt.ArrayLike, captured_at: int) -> list[int]:
        """Record each sample of ``batch``; their sequence numbers."""
        rows = np.asarray(batch, dtype=_F32)
        rows = rows.reshape(rows.shape[0], -1) if rows.ndim else rows.reshape(1, 1)
        with self._lock:
            if rows.shape[1] != self.width:
                self._reset(int(rows.shape[1]))
            seqs: list[int] = []
            with open(self.path, "r+b") as fh:
                for row in rows:
                    seq = self.next_seq
                    self.next_seq += 1
                    fh.seek(((seq - 1) % self.capacity) * self.record_size)
                    fh.write(_HEAD.pack(seq, captured_at) + bytes(LABEL_BYTES) + row.tobytes())
                    seqs.append(seq)
            return seqs

    def captured(self, seq: int) -> int | None:
        """When sample ``seq`` was captured (epoch ms); None if it is no longer kept."""
        with self._lock:
            head = self._head(seq)
            return None if head is None else head[1]

    def _head(self, seq: int) -> tuple[int, int] | None:
        if not self.width or seq < 1:
            return None
        try:
            with open(self.path, "rb") as fh:
                fh.seek(((seq - 1) % self.capacity) * self.record_size)
                raw = fh.read(_HEAD.size)
        except OSError:
            return None
        if len(raw) < _HEAD.size:
            return None
        found, captured = _HEAD.unpack(raw)
        return (int(found), int(captured)) if found == seq else None

    def label(self, seq: int, label: str, *, captured_at: int | None = None) -> bool:
        """Attach local feedback to a sample still in the ring (and, with ``captured_at``,
        captured then: a prediction id names both); False if it is gone."""
        data = label.encode()[:LABEL_BYTES]
        with self._lock:
            if not self.width or seq < 1:
                return False
            offset = ((seq - 1) % self.capacity) * self.record_size
            with open(self.path, "r+b") as fh:
                fh.seek(offset)
                head = fh.read(_HEAD.size)
                if len(head) < _HEAD.size or _HEAD.unpack(head)[0] != seq:
                    return False
                if captured_at is not None and _HEAD.unpack(head)[1] != captured_at:
                    return False
                fh.write(data.ljust(LABEL_BYTES, b"\0"))
            return True

    def _records(self) -> list[Sample]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        size, out = self.record_size, []
        for start in range(0, len(raw) - size + 1, size):
            seq, captured = _HEAD.unpack_from(raw, start)
            if seq < 1:
                continue
            text = raw[start + _HEAD.size : start + _HEAD.size + LABEL_BYTES].rstrip(b"\0")
            values = np.frombuffer(raw, _F32, self.width, start + _HEAD.size + LABEL_BYTES)
            label = text.decode("utf-8", "replace") or None
            out.append((int(seq), int(captured), label, values.astype(np.float32)))
        return out

    def latest(self, count: int, *, exclude: set[int] | None = None) -> list[Sample]:
        """Up to ``count`` samples, newest first (not those in ``exclude``)."""
        with self._lock:
            records = self._records() if self.width else []
        records.sort(key=lambda r: -r[0])
        skip = exclude or set()
        return [r for r in records if r[0] not in skip][: max(0, count)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records()) if self.width else 0


def build_row(layout: Mapping[str, Any], device_id: str, sample: Sample) -> dict[str, Any] | None:
    """A dataset row from a captured sample, by the request's layout (docs/fleet-protocol.md);
    None when the input does not fit the layout (another model's input)."""
    seq, captured, label, values = sample
    row: dict[str, Any] = dict(layout.get("values") or {})
    if layout.get("id_column"):
        row[str(layout["id_column"])] = f"{device_id}/{captured}-{seq}"
    if layout.get("label"):
        row[str(layout["label"])] = label
    inputs = layout.get("inputs") or {}
    columns = [str(c) for c in inputs.get("columns") or []]
    if not columns:
        return None
    types = {str(c.get("name")): c.get("type") for c in layout.get("columns") or []}
    if inputs.get("kind") == "axes":
        length = int(inputs.get("length") or values.size // len(columns))
        if values.size != length * len(columns):
            return None
        shaped = values.reshape(length, len(columns))
        for j, name in enumerate(columns):
            row[name] = shaped[:, j].tolist()
        return row
    if values.size != len(columns):
        return None
    for name, value in zip(columns, values.tolist(), strict=True):
        row[name] = round(value) if types.get(name) == "int" else value
    return row


Call = Callable[[str, Mapping[str, Any]], dict[str, Any]]


class SampleUploader:
    """Answers collection requests from the ring, one durable upload at a time."""

    def __init__(self, folder: Path, ring: SampleRing | None, device_id: Callable[[], str]):
        self.folder, self.ring, self.device_id = folder, ring, device_id
        self.pending_path, self.state_path = folder / "pending.json", folder / "state.json"
        self.uploaded = 0

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.state_path, json.dumps(state, sort_keys=True).encode())

    def _send(self, call: Call, body: dict[str, Any]) -> bool:
        """Send one durable upload; True if the server took it (or had it already)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.pending_path, json.dumps(body, separators=(",", ":")).encode())
        state = self._state()
        collection = str(body["collection"])
        try:
            answer = call("device/samples", body)
        except (BackendUnavailable, Unauthenticated):
            raise  # kept in pending.json: sent again at the next check-in
        except (Conflict, PermissionDenied, NotFound) as exc:
            log.info("collection %s takes no more samples: %s", collection, exc)
            state.setdefault("finished", []).append(collection)
            self._finish(state)
            return False
        except EdgeloopError as exc:  # the rows do not fit: say we are done, without them
            log.warning("the server refused samples for %s: %s", collection, exc)
            self._finish(state)
            if body.get("rows"):
                self._send(call, self._body(collection, [], done=True))
            return False
        sent = state.setdefault("sent", {}).setdefault(collection, [])
        sent.extend(int(s) for s in body.get("seqs", []))
        if body.get("done") or answer.get("done"):
            state.setdefault("finished", []).append(collection)
        if not answer.get("duplicate"):
            self.uploaded += int(answer.get("accepted", 0))
        self._finish(state)
        return True

    def _finish(self, state: dict[str, Any]) -> None:
        state["finished"] = list(dict.fromkeys(state.get("finished", [])))[-100:]
        self._save_state(state)
        self.pending_path.unlink(missing_ok=True)

    @staticmethod
    def _body(collection: str, rows: list[dict[str, Any]], *, done: bool) -> dict[str, Any]:
        return {
            "collection": collection,
            "upload_id": f"{collection}-{secrets.token_hex(8)}",
            "rows": rows,
            "done": done,
        }

    def resume(self, call: Call) -> None:
        """Send the upload a crash interrupted (the same body and key)."""
        try:
            body = json.loads(self.pending_path.read_text())
        except FileNotFoundError:
            return
        except ValueError:
            self.pending_path.unlink(missing_ok=True)
            return
        if isinstance(body, dict) and body.get("collection") and body.get("upload_id"):
            self._send(call, body)

    def handle(self, call: Call, request: object) -> int:
        """Answer a check-in's ``collection`` request; the rows sent."""
        self.resume(call)
        if not isinstance(request, dict) or not isinstance(request.get("id"), str):
            return 0
        collection = request["id"]
        state = self._state()
        if collection in state.get("finished", []):
            return 0
        wanted = max(0, int(request.get("samples") or 0))
        chunk = max(1, int(request.get("max_rows_per_upload") or 100))
        offered = request.get("layout")
        layout: dict[str, Any] = offered if isinstance(offered, dict) else {}
        sent_before = set(state.get("sent", {}).get(collection, []))
        samples = self.ring.latest(wanted, exclude=sent_before) if self.ring else []
        built = [(s[0], build_row(layout, self.device_id(), s)) for s in samples]
        rows = [(seq, row) for seq, row in built if row is not None]
        total = 0
        for start in range(0, max(1, len(rows)), chunk):
            part = rows[start : start + chunk]
            body = self._body(collection, [r for _, r in part], done=start + chunk >= len(rows))
            body["seqs"] = [seq for seq, _ in part]
            if not self._send(call, body):
                break
            total += len(part)
        return total


def remove_samples(folder: Path) -> None:
    """Forget every captured input (used when a device stops collecting)."""
    for name in ("ring.bin", "ring.json", "pending.json", "state.json"):
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        os.rmdir(folder)
