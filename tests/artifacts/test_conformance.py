"""One behavioural suite, run against every store_backend (local directory and S3 via moto)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.artifacts import ArtifactStore, BlobInfo
from edgeloop.errors import IntegrityError, NotFound, PayloadTooLarge, ValidationFailed

from .conftest import StoreBackend


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ABSENT = sha(b"never stored")

BAD_DIGESTS = [
    pytest.param("../etc/passwd", id="traversal"),
    pytest.param("../" + "a" * 61, id="traversal-64-chars"),
    pytest.param("A" * 64, id="uppercase"),
    pytest.param("a" * 63, id="too-short"),
    pytest.param("a" * 65, id="too-long"),
    pytest.param("", id="empty"),
    pytest.param("g" * 64, id="not-hex"),
    pytest.param("a" * 64 + "\n", id="trailing-newline"),
    pytest.param("a" * 32 + "/" + "a" * 31, id="slash"),
]


# ------------------------------------------------------------------------------ roundtrips


def test_put_bytes_roundtrip(store: ArtifactStore) -> None:
    data = b"hello artifacts"
    info = store.put_bytes(data)
    assert info == BlobInfo(digest=sha(data), size=len(data))
    assert store.get_bytes(info.digest) == data


def test_put_file_roundtrip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(70_000))
    info = store.put_file(source)
    assert info == BlobInfo(sha(source.read_bytes()), 70_000)
    assert store.get_bytes(info.digest) == source.read_bytes()


def test_put_stream_roundtrip(store: ArtifactStore) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several read chunks
    info = store.put_stream(io.BytesIO(data), max_bytes=len(data))
    assert info == BlobInfo(sha(data), len(data))
    assert store.get_bytes(info.digest) == data


def test_empty_blob(store: ArtifactStore) -> None:
    info = store.put_bytes(b"")
    assert info == BlobInfo(sha(b""), 0)
    assert store.exists(info.digest)
    assert store.size(info.digest) == 0
    assert store.get_bytes(info.digest) == b""
    assert list(store.iter_verified(info.digest)) == []


def test_get_to_path(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    info = store.put_bytes(data)
    dest = tmp_path / "out" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old content is replaced")
    store.get_to_path(info.digest, dest)
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["model.bin"]  # no temp file left beside it


def test_iter_verified_chunks(store: ArtifactStore) -> None:
    data = os.urandom(10_000)
    info = store.put_bytes(data)
    chunks = list(store.iter_verified(info.digest, chunk_size=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 10_000 - 8192]
    assert b"".join(chunks) == data


# ------------------------------------------------------------------------------ metadata


def test_dedup(store_backend: StoreBackend) -> None:
    store = store_backend.store
    data = b"same content"
    first = store.put_bytes(data)
    second = store.put_stream(io.BytesIO(data))
    assert first == second
    assert store.get_bytes(first.digest) == data
    assert store_backend.tmp_leftovers() == []


def test_exists_and_size(store: ArtifactStore) -> None:
    info = store.put_bytes(b"12345")
    assert store.exists(info.digest)
    assert store.size(info.digest) == 5
    assert not store.exists(ABSENT)


def test_absent_digest_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / "dest"
    with pytest.raises(NotFound):
        store.size(ABSENT)
    with pytest.raises(NotFound):
        store.get_bytes(ABSENT)
    with pytest.raises(NotFound):
        store.get_to_path(ABSENT, dest)
    assert os.listdir(downloads) == []
    iterator = store.iter_verified(ABSENT)
    with pytest.raises(NotFound):
        next(iterator)


def test_put_file_missing_source(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "missing.bin")


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_bad_digest_rejected(store: ArtifactStore, digest: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    for call in (
        lambda: store.exists(digest),
        lambda: store.size(digest),
        lambda: store.get_bytes(digest),
        lambda: store.get_to_path(digest, dest),
        lambda: store.iter_verified(digest),  # raised eagerly, before iteration
        lambda: store.delete(digest),
    ):
        with pytest.raises(ValidationFailed, match="64 lowercase hex"):
            call()
    assert not dest.exists()


# ------------------------------------------------------------------------------ integrity


def test_corruption_detected(store_backend: StoreBackend, tmp_path: Path) -> None:
    store = store_backend.store
    data = b"the real weights" * 100
    info = store.put_bytes(data)
    store_backend.corrupt(info.digest, b"tampered weights" * 100)  # same size, different bytes

    with pytest.raises(IntegrityError, match=info.digest):
        store.get_bytes(info.digest)

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / "model.bin"
    dest.write_bytes(b"previous version")
    with pytest.raises(IntegrityError):
        store.get_to_path(info.digest, dest)
    assert dest.read_bytes() == b"previous version"
    assert os.listdir(downloads) == ["model.bin"]  # the temp file beside it is gone

    iterator = store.iter_verified(info.digest, chunk_size=16)
    with pytest.raises(IntegrityError):
        next(iterator)


def test_truncation_detected(store_backend: StoreBackend) -> None:
    info = store_backend.store.put_bytes(b"0123456789")
    store_backend.corrupt(info.digest, b"01234")
    with pytest.raises(IntegrityError):
        store_backend.store.get_bytes(info.digest)


def test_put_heals_a_truncated_blob(store_backend: StoreBackend) -> None:
    data = b"0123456789"
    info = store_backend.store.put_bytes(data)
    store_backend.corrupt(info.digest, b"01234")
    assert store_backend.store.put_bytes(data) == info
    assert store_backend.store.get_bytes(info.digest) == data


# ------------------------------------------------------------------------------ limits


def test_payload_too_large(store_backend: StoreBackend) -> None:
    store = store_backend.store
    data = os.urandom(2 * (1 << 20) + 1)
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(data), max_bytes=2 * (1 << 20))
    assert not store.exists(sha(data))
    assert store_backend.tmp_leftovers() == []


def test_max_bytes_is_inclusive(store: ArtifactStore) -> None:
    assert store.put_stream(io.BytesIO(b"abc"), max_bytes=3).size == 3
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(b"abcd"), max_bytes=3)


def test_negative_max_bytes_rejected(store: ArtifactStore) -> None:
    with pytest.raises(ValidationFailed, match="max_bytes"):
        store.put_stream(io.BytesIO(b"abc"), max_bytes=-1)


# ------------------------------------------------------------------------------ removal


def test_delete_is_idempotent(store: ArtifactStore) -> None:
    info = store.put_bytes(b"to be deleted")
    store.delete(info.digest)
    assert not store.exists(info.digest)
    with pytest.raises(NotFound):
        store.get_bytes(info.digest)
    store.delete(info.digest)
    store.delete(ABSENT)


def test_put_after_delete(store: ArtifactStore) -> None:
    info = store.put_bytes(b"comes back")
    store.delete(info.digest)
    assert store.put_bytes(b"comes back") == info
    assert store.get_bytes(info.digest) == b"comes back"


def test_clean_tmp(store_backend: StoreBackend) -> None:
    store = store_backend.store
    assert store.clean_tmp() == 0
    store_backend.plant_tmp("put-crashed.tmp", b"partial upl")
    store_backend.plant_tmp("put-crashed2.tmp", b"")
    kept = store.put_bytes(b"a real blob")
    # Fresh leftovers may belong to a live writer: the default age keeps them.
    assert store.clean_tmp() == 0
    assert store_backend.tmp_leftovers() == ["put-crashed.tmp", "put-crashed2.tmp"]
    assert store.clean_tmp(older_than_seconds=0) == 2
    assert store_backend.tmp_leftovers() == []
    assert store.get_bytes(kept.digest) == b"a real blob"


def test_clean_tmp_rejects_negative_age(store: ArtifactStore) -> None:
    with pytest.raises(ValidationFailed):
        store.clean_tmp(-1)


# ------------------------------------------------------------------------------ large blobs


def test_large_blob_streamed(store_backend: StoreBackend, tmp_path: Path) -> None:
    store = store_backend.store
    source = tmp_path / "large.bin"
    with source.open("wb") as f:
        for _ in range(5):
            f.write(os.urandom(1 << 20))
    digest = sha(source.read_bytes())

    info = store.put_file(source)
    assert info == BlobInfo(digest, 5 << 20)
    assert store.size(digest) == 5 << 20

    dest = tmp_path / "copy.bin"
    store.get_to_path(digest, dest)
    assert sha(dest.read_bytes()) == digest

    hasher = hashlib.sha256()
    sizes = []
    for chunk in store.iter_verified(digest, chunk_size=1 << 20):
        hasher.update(chunk)
        sizes.append(len(chunk))
    assert hasher.hexdigest() == digest
    assert sizes == [1 << 20] * 5
    assert store_backend.tmp_leftovers() == []


# ------------------------------------------------------------------------------ property


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096))
def test_put_get_property(store: ArtifactStore, data: bytes) -> None:
    # The store is reused across examples on purpose: a content-addressed store must
    # give the same answer whatever it already holds.
    info = store.put_bytes(data)
    assert info.digest == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert store.get_bytes(info.digest) == data
    assert b"".join(store.iter_verified(info.digest, chunk_size=1000)) == data
