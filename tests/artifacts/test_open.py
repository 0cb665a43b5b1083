"""``open_artifact_store``: URI dispatch and its errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeloop.artifacts import FsspecArtifactStore, LocalArtifactStore, open_artifact_store
from edgeloop.errors import ValidationFailed


def test_plain_path(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "a"))
    assert isinstance(store, LocalArtifactStore)
    assert store.root == tmp_path / "a"
    assert (tmp_path / "a" / "blobs").is_dir()


def test_file_uri(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    store = open_artifact_store(root.as_uri())
    assert isinstance(store, LocalArtifactStore)
    assert store.root == root
    assert store.uri == root.as_uri()


def test_file_uri_with_remote_host_rejected() -> None:
    with pytest.raises(ValidationFailed, match="local"):
        open_artifact_store("file://otherhost/srv/artifacts")


@pytest.mark.parametrize("uri", ["gs://bucket/x", "http://example.com/x", "ftp://h/p"])
def test_unsupported_scheme(uri: str) -> None:
    with pytest.raises(ValidationFailed, match=r"allowed: a plain path, file://, s3://"):
        open_artifact_store(uri)


@pytest.mark.parametrize("uri", ["", "   ", "s3://", "s3:///prefix-only"])
def test_malformed(uri: str) -> None:
    with pytest.raises(ValidationFailed):
        open_artifact_store(uri)


def test_s3_uri_without_network() -> None:
    store = open_artifact_store("s3://my-bucket/some/prefix/")
    assert isinstance(store, FsspecArtifactStore)
    assert store.uri == "s3://my-bucket/some/prefix"
    assert store.blob_path("ab" + "c" * 62) == "my-bucket/some/prefix/blobs/ab/" + "c" * 62


def test_s3_without_s3fs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` raise ImportError
    with pytest.raises(ValidationFailed, match=r"pip install edgeloop\[s3\]"):
        open_artifact_store("s3://bucket/prefix")
