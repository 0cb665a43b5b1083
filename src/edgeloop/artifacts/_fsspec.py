"""The fsspec-backed artifact store (S3 via s3fs).

Layout under ``root`` (``<bucket>/<prefix>`` for S3)::

    blobs/<first 2 hex>/<remaining 62 hex>
    tmp/<uuid>                               in-flight uploads

A write hashes the stream into a local temp file first (bounded memory, and the digest is
known before anything is sent), skips the upload if the blob is already there, otherwise
uploads to ``tmp/<uuid>``, checks the uploaded size and moves it to the final key, so a final
key never holds partial content. Library errors (OSError, botocore, aiohttp) are translated
at this boundary into :class:`~edgeloop.errors.NotFound` and
:class:`~edgeloop.errors.BackendUnavailable`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from typing import Any, BinaryIO

from edgeloop.artifacts._base import CHUNK_SIZE, ArtifactStore, BlobInfo, copy_hashing
from edgeloop.errors import BackendUnavailable, NotFound, ValidationFailed

_DEFAULT_BLOCK_SIZE = 8 << 20
"""Upload part / read-ahead size; S3 multipart parts must be at least 5 MiB."""


@functools.cache
def _library_errors() -> tuple[type[BaseException], ...]:
    """Exception types raised by the storage libraries that we translate."""
    errors: list[type[BaseException]] = [OSError]
    for module_name, names in (
        ("botocore.exceptions", ("BotoCoreError", "ClientError")),
        ("aiohttp", ("ClientError",)),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        errors.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(errors)


class FsspecArtifactStore(ArtifactStore):
    """Content-addressed blobs on an fsspec filesystem (used for ``s3://``)."""

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        uri: str | None = None,
        block_size: int = _DEFAULT_BLOCK_SIZE,
    ) -> None:
        root = root.strip("/")
        if not root:
            raise ValidationFailed(
                "artifact store root must name a bucket or directory", details={"field": "uri"}
            )
        self.fs = fs
        self.root = root
        self.uri = uri if uri is not None else str(fs.unstrip_protocol(root))
        self._block_size = block_size

    # ----------------------------------------------------------------------- paths

    def blob_path(self, digest: str) -> str:
        """Final key of a (validated) digest: ``<root>/blobs/<2>/<62>``."""
        return f"{self.root}/blobs/{digest[:2]}/{digest[2:]}"

    @property
    def _tmp_root(self) -> str:
        return f"{self.root}/tmp"

    @contextlib.contextmanager
    def _translate(self, action: str, digest: str | None = None) -> Iterator[None]:
        """Turn storage-library errors into edgeloop errors (``raise ... from exc``).

        A missing object is NotFound when reading the blob ``digest``; anywhere else (e.g.
        a missing bucket while storing) it is a misconfigured backend: BackendUnavailable.
        """
        try:
            yield
        except FileNotFoundError as exc:
            if digest is not None:
                raise self._not_found(digest) from exc
            raise BackendUnavailable(
                f"{action} failed on {self.uri}: {exc} (does the bucket exist?)",
                details={"store": self.uri},
            ) from exc
        except _library_errors() as exc:
            raise BackendUnavailable(
                f"{action} failed on {self.uri}: {type(exc).__name__}: {exc}",
                details={"store": self.uri},
            ) from exc

    def _stored_size(self, path: str) -> int | None:
        """Size of the object at ``path``, or None if absent (never from a stale cache)."""
        self.fs.invalidate_cache(path)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        if info.get("type") == "directory":
            return None
        return int(info["size"])

    # ----------------------------------------------------------------------- primitives

    def _put_stream(self, stream: BinaryIO, max_bytes: int | None) -> BlobInfo:
        fd, local_name = tempfile.mkstemp(prefix="edgeloop-put-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w+b") as local:
                info = copy_hashing(stream, local, max_bytes=max_bytes)
                local.seek(0)
                self._upload(local, info)
            return info
        finally:
            with contextlib.suppress(OSError):
                os.unlink(local_name)

    def _upload(self, local: BinaryIO, info: BlobInfo) -> None:
        final = self.blob_path(info.digest)
        with self._translate(f"storing blob {info.digest}"):
            if self._stored_size(final) == info.size:
                return  # deduplicated
            tmp = f"{self._tmp_root}/{uuid.uuid4().hex}"
            try:
                with self.fs.open(tmp, "wb", block_size=self._block_size) as remote:
                    shutil.copyfileobj(local, remote, CHUNK_SIZE)
                uploaded = self._stored_size(tmp)
                if uploaded != info.size:
                    raise BackendUnavailable(
                        f"upload of blob {info.digest} to {self.uri} was truncated: "
                        f"{uploaded} of {info.size} bytes arrived",
                        details={"digest": info.digest, "store": self.uri},
                    )
                self.fs.mv(tmp, final)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(tmp)
                raise
            finally:
                self.fs.invalidate_cache(self._tmp_root)
                self.fs.invalidate_cache(final)

    def _raw_chunks(self, digest: str) -> Generator[bytes, None, None]:
        path = self.blob_path(digest)
        action = f"reading blob {digest}"
        self.fs.invalidate_cache(path)
        with self._translate(action, digest):
            source = self.fs.open(path, "rb", block_size=self._block_size)
        with source:
            while True:
                with self._translate(action, digest):
                    chunk = source.read(CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk

    def _exists(self, digest: str) -> bool:
        with self._translate(f"checking blob {digest}"):
            return self._stored_size(self.blob_path(digest)) is not None

    def _size(self, digest: str) -> int:
        with self._translate(f"checking blob {digest}"):
            size = self._stored_size(self.blob_path(digest))
        if size is None:
            raise self._not_found(digest)
        return size

    def _delete(self, digest: str) -> None:
        path = self.blob_path(digest)
        with self._translate(f"deleting blob {digest}"):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)
            self.fs.invalidate_cache(path)

    def _clean_tmp(self, older_than_seconds: float) -> int:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
        with self._translate("cleaning temp uploads"):
            self.fs.invalidate_cache(self._tmp_root)
            try:
                entries: list[dict[str, Any]] = self.fs.ls(self._tmp_root, detail=True)
            except FileNotFoundError:
                return 0
            stale = [
                entry["name"]
                for entry in entries
                if entry.get("type") == "file" and self._modified(entry) <= cutoff
            ]
            for name in stale:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(name)
            self.fs.invalidate_cache(self._tmp_root)
        return len(stale)

    def _modified(self, entry: dict[str, Any]) -> dt.datetime:
        """Last-modified time of a listing entry, timezone-aware (UTC)."""
        value = entry.get("LastModified") or entry.get("mtime") or entry.get("created")
        if value is None:
            value = self.fs.modified(entry["name"])
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            raise BackendUnavailable(f"cannot tell the age of {entry['name']} in {self.uri}")
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(
            f"no blob {digest} in {self.uri}", details={"digest": digest, "store": self.uri}
        )


def open_s3_store(bucket: str, prefix: str) -> FsspecArtifactStore:
    """An S3 store at ``s3://<bucket>/<prefix>`` configured from the AWS environment.

    Endpoint, credentials and region come from botocore's usual sources: the
    ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and ``AWS_DEFAULT_REGION`` environment
    variables, ``~/.aws`` config files, or an instance role.
    """
    try:
        s3fs = importlib.import_module("s3fs")
    except ImportError as exc:
        raise ValidationFailed(
            "s3:// artifact stores need s3fs: pip install edgeloop[s3]",
            details={"field": "uri"},
        ) from exc
    # A private instance (no fsspec instance cache) and no listings cache, so that
    # exists() always asks the server instead of a stale directory listing.
    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    root = f"{bucket}/{prefix}" if prefix else bucket
    return FsspecArtifactStore(fs, root, uri=f"s3://{root}")
