"""Local-store specifics: on-disk layout, permissions, temp handling."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
from pathlib import Path

import pytest

from edgeloop.artifacts import LocalArtifactStore
from edgeloop.errors import PayloadTooLarge, ValidationFailed


def test_layout_and_read_only_blobs(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    info = store.put_bytes(b"layout")
    path = tmp_path / "blobs" / info.digest[:2] / info.digest[2:]
    assert store.blob_path(info.digest) == path
    assert path.read_bytes() == b"layout"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "tmp") == []
    assert store.uri == tmp_path.as_uri()


def test_clean_tmp_respects_age(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    old = tmp_path / "tmp" / "put-old.tmp"
    fresh = tmp_path / "tmp" / "put-fresh.tmp"
    old.write_bytes(b"left by a crashed writer")
    fresh.write_bytes(b"maybe still being written")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.clean_tmp() == 1
    assert not old.exists()
    assert fresh.exists()


def test_payload_too_large_leaves_no_temp(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(b"x" * 100), max_bytes=10)
    assert os.listdir(tmp_path / "tmp") == []
    assert list((tmp_path / "blobs").iterdir()) == []


def test_failing_stream_leaves_no_temp(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            raise ConnectionResetError("client went away")

    store = LocalArtifactStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        store.put_stream(io.BufferedReader(Broken()))
    assert os.listdir(tmp_path / "tmp") == []


def test_root_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"")
    with pytest.raises(ValidationFailed, match="not a directory"):
        LocalArtifactStore(root)


def test_existing_blob_files_are_reused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    info = store.put_bytes(b"dedup")
    before = store.blob_path(info.digest).stat().st_ino
    store.put_bytes(b"dedup")
    assert store.blob_path(info.digest).stat().st_ino == before
    assert info.digest == hashlib.sha256(b"dedup").hexdigest()
