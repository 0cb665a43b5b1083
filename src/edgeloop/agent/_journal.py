"""The update journal: ``journal.jsonl``, append-only, one JSON object a line, fsynced.

Every record has ``seq`` (1, 2, …), ``at`` (epoch ms) and ``step``; the steps of one update,
in the order they are written::

    assigned     rollout, release, rollback, manifest_url, signature_url, files_url,
                 max_bundle_bytes, slot (the idle slot it installs into), previous (the
                 committed slot, or null)
    downloading  bytes_total, bytes_saved, fetch, reuse — then once per file fetched:
                 file, offset (the byte it resumes from), and file, offset, done at its end
    downloaded   bytes_downloaded, bytes_saved
    installing   slot
    verifying    slot (the slot is completely written; when the idle slot already held
                 the bundle, also bytes_downloaded and bytes_saved, and no step between)
    switched     slot, previous (``active`` names the new slot)
    healthy      (self-test and smoke inference passed)
    committed    slot, release, model_version, bundle_digest (right after ``downloaded``
                 when the committed slot already holds exactly this bundle)
    failed       reason, message, switched (whether the new slot was active)
    rolled-back  slot (``active`` names the committed slot again), reason
    reported     state (a terminal state the server has acknowledged)

and, outside updates, ``snapshot`` (slot, release: the committed slot), written by
compaction and by recovery when the committed slot no longer verifies. A record torn by a
crash (no final newline) never happened: it is cut off when the journal is
opened. A crash at any point leaves a journal from which :meth:`Journal.state` tells what
is committed and how far the last update got.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeloop.agent._crash import CRASH_EXIT_CODE, crash_point, crash_requested
from edgeloop.agent._fs import atomic_write, fsync_dir

__all__ = ["STEPS", "Journal", "JournalState", "UpdateRecord"]

STEPS = (
    "assigned",
    "downloading",
    "downloaded",
    "installing",
    "verifying",
    "switched",
    "healthy",
    "committed",
    "failed",
    "rolled-back",
    "reported",
)
COMPACT_AFTER = 2000  # records
ASSIGNMENT_KEYS = (
    "rollout",
    "release",
    "rollback",
    "manifest_url",
    "signature_url",
    "files_url",
    "max_bundle_bytes",
)


@dataclass
class UpdateRecord:
    """How far one update got, replayed from its records."""

    assignment: dict[str, Any]
    slot: str
    previous: str | None
    steps: list[str] = field(default_factory=list)
    reason: str = ""
    message: str = ""
    bytes_downloaded: int = 0
    bytes_saved: int = 0
    switched: bool = False
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    reported: int = 0

    @property
    def rollout(self) -> str:
        return str(self.assignment.get("rollout", ""))

    @property
    def release(self) -> str:
        return str(self.assignment.get("release", ""))

    @property
    def last(self) -> str:
        """The last step other than ``reported``."""
        return next((s for s in reversed(self.steps) if s != "reported"), "assigned")

    @property
    def finished(self) -> bool:
        """Committed, rolled back, or refused before the switch: nothing left to do but
        report the outcome."""
        last = self.last
        return last in ("committed", "rolled-back") or (last == "failed" and not self.switched)

    def unreported(self) -> list[tuple[str, str]]:
        """The terminal states (``healthy``, ``failed``, ``rolled-back``) not yet
        acknowledged by the server, in order, with their reasons."""
        return self.outcomes[self.reported :]

    def state(self) -> str:
        """The state to report for this update now."""
        if self.outcomes:
            return self.outcomes[-1][0]
        last = self.last
        if last in ("switched", "healthy"):
            return "verifying"
        return last


@dataclass
class JournalState:
    committed_slot: str | None = None
    committed_release: str | None = None
    update: UpdateRecord | None = None


def replay(records: list[dict[str, Any]]) -> JournalState:
    """The state the records describe (see the module docstring for their meaning)."""
    state = JournalState()
    for record in records:
        step = record.get("step")
        if step == "snapshot":
            state.committed_slot = record.get("slot")
            state.committed_release = record.get("release")
            continue
        if step == "assigned":
            state.update = UpdateRecord(
                assignment={k: record[k] for k in ASSIGNMENT_KEYS if k in record},
                slot=str(record["slot"]),
                previous=record.get("previous"),
            )
        update = state.update
        if update is None or not isinstance(step, str):
            continue
        if step != "assigned":
            update.steps.append(step)
        update.bytes_saved = int(record.get("bytes_saved", update.bytes_saved))
        update.bytes_downloaded = int(record.get("bytes_downloaded", update.bytes_downloaded))
        if step == "switched":
            update.switched = True
        elif step == "committed":
            state.committed_slot = record.get("slot")
            state.committed_release = record.get("release")
            update.outcomes.append(("healthy", ""))
        elif step == "failed":
            update.reason = str(record.get("reason", ""))
            update.message = str(record.get("message", ""))
            update.outcomes.append(("failed", update.reason))
        elif step == "rolled-back":
            update.switched = False
            update.outcomes.append(("rolled-back", str(record.get("reason", update.reason))))
        elif step == "reported":
            update.reported += 1
    return state


class Journal:
    """Append-only, fsynced JSON lines at ``path``; see the module docstring."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self._clock = clock
        self._repair()
        self._seq = len(self._lines())

    def _lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in data.split(b"\n") if line.strip()]

    def _repair(self) -> None:
        """Cut a torn last record (a crash in the middle of a write) off the file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in self._lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # damaged by something other than a crash: skip, keep replaying
            if isinstance(record, dict):
                out.append(record)
        return out

    def state(self) -> JournalState:
        return replay(self.records())

    def append(self, step: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably, then honour a crash injected at ``step``."""
        self._seq += 1
        record = {"seq": self._seq, "at": int(self._clock() * 1000), "step": step, **fields}
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        if crash_requested(f"torn:{step}"):
            line = line[: len(line) // 2]
        created = not self.path.exists()
        with self.path.open("ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if created:
            fsync_dir(self.path.parent)
        if crash_requested(f"torn:{step}"):
            os._exit(CRASH_EXIT_CODE)
        crash_point(step)
        return record

    def compact(self, *, threshold: int = COMPACT_AFTER) -> bool:
        """Past ``threshold`` records, rewrite the journal as a snapshot of the committed
        slot plus the records of the last update. Atomic: a crash keeps the old file."""
        records = self.records()
        if len(records) <= threshold:
            return False
        last_assigned = max(
            (i for i, r in enumerate(records) if r.get("step") == "assigned"), default=len(records)
        )
        before = replay(records[:last_assigned])
        snapshot = {
            "seq": 1,
            "at": int(self._clock() * 1000),
            "step": "snapshot",
            "slot": before.committed_slot,
            "release": before.committed_release,
        }
        kept = [snapshot] + [{**r, "seq": i + 2} for i, r in enumerate(records[last_assigned:])]
        data = b"".join(
            (json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n").encode() for r in kept
        )
        atomic_write(self.path, data)
        self._seq = len(kept)
        return True
