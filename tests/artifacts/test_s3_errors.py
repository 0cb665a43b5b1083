"""S3 store: library errors are translated into edgeloop errors at the boundary."""

from __future__ import annotations

import socket

import pytest

from edgeloop.artifacts import open_artifact_store
from edgeloop.errors import BackendUnavailable


@pytest.fixture
def dead_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS env pointing at a port where nothing listens (single attempt, no retries)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return endpoint


def test_unreachable_endpoint_is_backend_unavailable(dead_endpoint: str) -> None:
    store = open_artifact_store("s3://bucket/prefix")
    digest = "a" * 64
    for call in (
        lambda: store.exists(digest),
        lambda: store.size(digest),
        lambda: store.get_bytes(digest),
        lambda: store.put_bytes(b"payload"),
        lambda: store.delete(digest),
        lambda: store.clean_tmp(),
    ):
        with pytest.raises(BackendUnavailable, match="s3://bucket/prefix") as excinfo:
            call()
        assert excinfo.value.__cause__ is not None


@pytest.mark.slow
def test_missing_bucket_is_backend_unavailable(moto_endpoint: str) -> None:
    store = open_artifact_store("s3://edgeloop-no-such-bucket/prefix")
    with pytest.raises(BackendUnavailable, match="edgeloop-no-such-bucket"):
        store.put_bytes(b"payload")
    assert not store.exists("a" * 64)
