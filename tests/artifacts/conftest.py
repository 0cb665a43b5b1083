"""Fixtures: a local store and an S3 store against a real (threaded) moto server."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeloop.artifacts import ArtifactStore, FsspecArtifactStore, LocalArtifactStore

_AWS_VARS_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def _single_server_header_handler() -> type[Any]:
    """Moto's request handler without werkzeug's own ``Server`` header.

    moto 5.2.5 in server mode sends two ``Server`` headers (werkzeug's and moto's
    ``server: amazon.com``; getmoto/moto#9930) and aiohttp >= 3.14 -- which s3fs uses via
    aiobotocore -- rejects such responses ("Duplicate 'Server' header found"). boto3
    (urllib3) tolerates it. This handler sends the status line and ``Date`` like
    ``BaseHTTPRequestHandler.send_response`` but leaves the ``Server`` header to moto.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class SingleServerHeaderHandler(MotoRequestHandler):
        def send_response(self, code: int, message: str | None = None) -> None:
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    return SingleServerHeaderHandler


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start a moto server on a free port and point the AWS env vars at it for the session."""
    from moto.moto_server import threaded_moto_server
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(threaded_moto_server, "MotoRequestHandler", _single_server_header_handler())
        # werkzeug logs one line per request; keep test output readable.
        werkzeug_logger = logging.getLogger("werkzeug")
        old_level = werkzeug_logger.level
        werkzeug_logger.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            for name in _AWS_VARS_TO_CLEAR:
                mp.delenv(name, raising=False)
            mp.setenv("AWS_ENDPOINT_URL", endpoint)
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            yield endpoint
        finally:
            server.stop()
            werkzeug_logger.setLevel(old_level)


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Iterator[Any]:
    """A boto3 client for reaching behind the store's back."""
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A fresh, empty bucket for one test."""
    name = f"edgeloop-test-{uuid.uuid4().hex}"
    s3_client.create_bucket(Bucket=name)
    return name


@dataclass
class StoreBackend:
    """A store plus the means to tamper with it behind its back."""

    name: str
    store: ArtifactStore
    corrupt: Callable[[str, bytes], None]
    """Overwrite the stored bytes of a digest."""
    tmp_leftovers: Callable[[], list[str]]
    """Names of the temp uploads currently present."""
    plant_tmp: Callable[[str, bytes], None]
    """Create a temp leftover as a crashed writer would."""


def _local_backend(root: Path) -> StoreBackend:
    store = LocalArtifactStore(root)

    def corrupt(digest: str, data: bytes) -> None:
        path = store.blob_path(digest)
        path.chmod(0o644)
        path.write_bytes(data)

    def tmp_leftovers() -> list[str]:
        return sorted(os.listdir(root / "tmp"))

    def plant_tmp(name: str, data: bytes) -> None:
        (root / "tmp" / name).write_bytes(data)

    return StoreBackend("local", store, corrupt, tmp_leftovers, plant_tmp)


def _s3_backend(client: Any, bucket: str) -> StoreBackend:
    from edgeloop.artifacts import open_artifact_store

    prefix = "some/prefix"
    store = open_artifact_store(f"s3://{bucket}/{prefix}")
    assert isinstance(store, FsspecArtifactStore)

    def corrupt(digest: str, data: bytes) -> None:
        key = f"{prefix}/blobs/{digest[:2]}/{digest[2:]}"
        client.put_object(Bucket=bucket, Key=key, Body=data)

    def tmp_leftovers() -> list[str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/tmp/")
        return sorted(obj["Key"].rsplit("/", 1)[1] for obj in listing.get("Contents", []))

    def plant_tmp(name: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/tmp/{name}", Body=data)

    return StoreBackend("s3", store, corrupt, tmp_leftovers, plant_tmp)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    """Each conformance test runs once per backend (local directory, S3 on moto)."""
    if request.param == "local":
        return _local_backend(tmp_path / "store")
    client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("s3_bucket")
    return _s3_backend(client, bucket)


@pytest.fixture
def store(store_backend: StoreBackend) -> ArtifactStore:
    return store_backend.store
