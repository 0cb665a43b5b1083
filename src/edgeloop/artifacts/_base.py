"""The store contract: :class:`BlobInfo`, digest validation and :class:`ArtifactStore`.

Backends implement a handful of raw primitives (``_put_stream``, ``_raw_chunks``, ...); every
public method lives here so that validation and digest verification are written once and
behave identically on every backend.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edgeloop.errors import (
    BackendUnavailable,
    IntegrityError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)

CHUNK_SIZE = 1 << 20
"""Bytes read or written per step when streaming."""

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: ``digest`` is the lowercase hex SHA-256 of the content."""

    digest: str
    size: int


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is exactly 64 lowercase hex characters, else raise.

    Raises :class:`~edgeloop.errors.ValidationFailed`. Because only ``[0-9a-f]`` passes, a
    validated digest is always safe to use as a path or key component.
    """
    if isinstance(digest, str) and _DIGEST_RE.fullmatch(digest):
        return digest
    shown = repr(digest) if len(repr(digest)) <= 80 else repr(digest)[:77] + "..."
    raise ValidationFailed(
        f"digest must be a SHA-256 as exactly 64 lowercase hex characters [0-9a-f], got {shown}",
        details={"field": "digest"},
    )


def copy_hashing(src: BinaryIO, dst: BinaryIO, *, max_bytes: int | None) -> BlobInfo:
    """Copy ``src`` to ``dst`` in chunks while hashing; enforce ``max_bytes``.

    Raises :class:`~edgeloop.errors.PayloadTooLarge` as soon as more than ``max_bytes``
    arrive (the caller removes whatever was written) and
    :class:`~edgeloop.errors.BackendUnavailable` if writing to ``dst`` fails.
    """
    hasher = hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(CHUNK_SIZE)
        if not chunk:
            break
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise PayloadTooLarge(
                f"payload exceeds the limit of {max_bytes} bytes",
                details={"field": "max_bytes", "max_bytes": max_bytes},
            )
        hasher.update(chunk)
        try:
            dst.write(chunk)
        except OSError as exc:
            raise BackendUnavailable(f"cannot write temporary upload file: {exc}") from exc
    return BlobInfo(digest=hasher.hexdigest(), size=size)


def _mismatch(uri: str, digest: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"blob {digest} in {uri} is corrupted: its content hashes to {actual}",
        details={"digest": digest, "actual": actual, "store": uri},
    )


class ArtifactStore(abc.ABC):
    """A content-addressed, deduplicated blob store keyed by SHA-256.

    Every read verifies the content against its digest; corrupted bytes are never returned,
    an :class:`~edgeloop.errors.IntegrityError` is raised instead.
    """

    uri: str
    """Where the store lives, e.g. ``file:///srv/artifacts`` or ``s3://bucket/prefix``."""

    # ----------------------------------------------------------------- backend primitives

    @abc.abstractmethod
    def _put_stream(self, stream: BinaryIO, max_bytes: int | None) -> BlobInfo:
        """Store the stream's content atomically and return its digest and size."""

    @abc.abstractmethod
    def _raw_chunks(self, digest: str) -> Generator[bytes, None, None]:
        """Yield the stored bytes unverified; raise NotFound (lazily) if absent."""

    @abc.abstractmethod
    def _exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def _size(self, digest: str) -> int: ...

    @abc.abstractmethod
    def _delete(self, digest: str) -> None: ...

    @abc.abstractmethod
    def _clean_tmp(self, older_than_seconds: float) -> int: ...

    def _spool_dir(self) -> str | None:
        """Directory for anonymous spool files used by :meth:`iter_verified`."""
        return None

    # ----------------------------------------------------------------------- writing

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``; identical content is stored once and gives the same BlobInfo."""
        return self._put_stream(io.BytesIO(data), None)

    def put_file(self, path: Path) -> BlobInfo:
        """Store the file at ``path``, streaming it (never read whole into memory)."""
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below, errors translated
        except FileNotFoundError as exc:
            raise NotFound(f"no such file: {path}", details={"path": str(path)}) from exc
        except OSError as exc:
            raise ValidationFailed(
                f"cannot read {path}: {exc.strerror or exc}", details={"field": "path"}
            ) from exc
        with source:
            return self._put_stream(source, None)

    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> BlobInfo:
        """Store everything read from ``stream``.

        If more than ``max_bytes`` arrive, raise :class:`~edgeloop.errors.PayloadTooLarge`
        and leave nothing behind (no blob, no temp file).
        """
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 0):
            raise ValidationFailed(
                f"max_bytes must be a non-negative integer or None, got {max_bytes!r}",
                details={"field": "max_bytes"},
            )
        return self._put_stream(stream, max_bytes)

    # ----------------------------------------------------------------------- metadata

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored (not verified)."""
        return self._exists(validate_digest(digest))

    def size(self, digest: str) -> int:
        """Stored size in bytes; :class:`~edgeloop.errors.NotFound` if absent."""
        return self._size(validate_digest(digest))

    # ----------------------------------------------------------------------- reading

    def get_bytes(self, digest: str) -> bytes:
        """The verified content; IntegrityError on mismatch, NotFound if absent."""
        digest = validate_digest(digest)
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        with contextlib.closing(self._raw_chunks(digest)) as chunks:
            for chunk in chunks:
                hasher.update(chunk)
                parts.append(chunk)
        actual = hasher.hexdigest()
        if actual != digest:
            raise _mismatch(self.uri, digest, actual)
        return b"".join(parts)

    def get_to_path(self, digest: str, dest: Path) -> None:
        """Write the verified content to ``dest`` atomically.

        Streams into a temp file beside ``dest``, verifies, fsyncs, then ``os.replace``-s it
        into place. On any failure (IntegrityError, NotFound, ...) ``dest`` is untouched and
        the temp file is removed.
        """
        digest = validate_digest(digest)
        dest = Path(dest)
        try:
            fd, tmp_name = tempfile.mkstemp(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial"
            )
        except OSError as exc:
            raise ValidationFailed(
                f"cannot create a file in {dest.parent}: {exc.strerror or exc}",
                details={"field": "dest"},
            ) from exc
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, contextlib.closing(self._raw_chunks(digest)) as it:
                for chunk in it:
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = hasher.hexdigest()
            if actual != digest:
                raise _mismatch(self.uri, digest, actual)
            os.replace(tmp_name, dest)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise BackendUnavailable(f"cannot write {dest}: {exc.strerror or exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    def iter_verified(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the content in chunks of at most ``chunk_size`` bytes, verified first.

        The whole blob is spooled and verified before the first chunk is yielded, so
        NotFound / IntegrityError surface on the first ``next()`` and no unverified byte is
        ever handed out. ``ValidationFailed`` for a bad digest is raised immediately.
        """
        digest = validate_digest(digest)
        if isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValidationFailed(
                f"chunk_size must be a positive integer, got {chunk_size!r}",
                details={"field": "chunk_size"},
            )
        return self._iter_verified(digest, chunk_size)

    def _iter_verified(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        with tempfile.TemporaryFile(dir=self._spool_dir()) as spool:
            hasher = hashlib.sha256()
            with contextlib.closing(self._raw_chunks(digest)) as chunks:
                for chunk in chunks:
                    hasher.update(chunk)
                    spool.write(chunk)
            actual = hasher.hexdigest()
            if actual != digest:
                raise _mismatch(self.uri, digest, actual)
            spool.seek(0)
            while chunk := spool.read(chunk_size):
                yield chunk

    # ----------------------------------------------------------------------- removal

    def delete(self, digest: str) -> None:
        """Remove the blob; deleting an absent blob is not an error."""
        self._delete(validate_digest(digest))

    def clean_tmp(self, older_than_seconds: float = 3600) -> int:
        """Remove temp uploads older than ``older_than_seconds``; return how many.

        Leftovers come from writers that crashed mid-upload. Use a threshold longer than
        any upload in progress: a live writer's temp file is removed too if it qualifies.
        """
        if isinstance(older_than_seconds, bool) or not older_than_seconds >= 0:
            raise ValidationFailed(
                f"older_than_seconds must be >= 0, got {older_than_seconds!r}",
                details={"field": "older_than_seconds"},
            )
        return self._clean_tmp(float(older_than_seconds))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
