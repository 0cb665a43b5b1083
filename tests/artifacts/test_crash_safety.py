"""A writer killed with SIGKILL mid-put never leaves a partial blob at a final path."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgeloop.artifacts import LocalArtifactStore

SRC = Path(__file__).resolve().parents[2] / "src"

# Writes blobs in a loop, reporting each. With "stall", from the 30th put on every put
# streams its content from a reader that, half-way through a blob, announces "MID" and then
# blocks on stdin -- so the parent kills the writer while a put is provably in progress.
# Without it the writer runs freely and is killed wherever it happens to be (hashing,
# fsync, rename, ...).
WRITER = textwrap.dedent(
    """
    import io, os, sys
    from edgeloop.artifacts import LocalArtifactStore

    class StallingReader(io.RawIOBase):
        def __init__(self, data):
            self._data = memoryview(data)
            self._pos = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self._pos >= len(self._data) // 2:
                print("MID", flush=True)
                sys.stdin.read()  # blocks until killed
            n = min(len(buffer), len(self._data) - self._pos, 64 * 1024)
            buffer[:n] = self._data[self._pos : self._pos + n]
            self._pos += n
            return n

    store = LocalArtifactStore(sys.argv[1])
    stall = sys.argv[2] == "stall"
    i = 0
    while True:
        data = os.urandom(1000 + (i * 7919) % 300_000)
        if i < 30 or not stall:
            info = store.put_bytes(data)
        else:
            info = store.put_stream(io.BufferedReader(StallingReader(data)))
        print("PUT", info.digest, flush=True)
        i += 1
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stall", "free-running"])
def test_sigkill_mid_put_leaves_only_temp_files(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        reported: list[str] = []
        for raw in proc.stdout:
            line = raw.decode().split()
            if line == ["MID"]:
                break
            assert line[0] == "PUT", line
            reported.append(line[1])
            if mode == "free-running" and len(reported) == 60:
                break
        else:
            pytest.fail(
                f"writer exited early: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Puts the writer completed (and reported) after we stopped reading.
        for raw in proc.stdout:
            line = raw.decode().split()
            if line and line[0] == "PUT":
                reported.append(line[1])
    assert proc.returncode == -signal.SIGKILL

    # Every file at a final path is complete: its SHA-256 is its name.
    blob_files = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    for path in blob_files:
        digest = path.parent.name + path.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
    stored = {p.parent.name + p.name for p in blob_files}
    assert set(reported) <= stored
    # At most the one put in flight may have landed without being reported.
    assert len(stored - set(reported)) <= 1

    # Only temp leftovers remain from the interrupted put; clean_tmp removes them.
    store = LocalArtifactStore(root)
    leftovers = len(os.listdir(root / "tmp"))
    if mode == "stall":
        assert len(reported) == 30
        assert stored == set(reported)
        assert leftovers == 1
    assert leftovers <= 1
    assert store.clean_tmp(older_than_seconds=0) == leftovers
    assert os.listdir(root / "tmp") == []
    for digest in reported:
        assert hashlib.sha256(store.get_bytes(digest)).hexdigest() == digest
