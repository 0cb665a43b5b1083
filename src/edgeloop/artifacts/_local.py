"""The local-filesystem artifact store.

Layout under ``root``::

    blobs/<first 2 hex>/<remaining 62 hex>   read-only (0o444) blob files
    tmp/                                     in-flight uploads (same filesystem)

A write streams into ``tmp/`` while hashing, fsyncs, chmods the file read-only and then
``os.replace``-s it to its final path, so a final path only ever holds complete content even
if the writer is killed (SIGKILL) mid-put. Such a crash leaves a temp file behind, which
:meth:`~edgeloop.artifacts.ArtifactStore.clean_tmp` removes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from edgeloop.artifacts._base import CHUNK_SIZE, ArtifactStore, BlobInfo, copy_hashing
from edgeloop.errors import BackendUnavailable, NotFound, ValidationFailed

_TMP_PREFIX = "put-"
_TMP_SUFFIX = ".tmp"
_BLOB_MODE = 0o444


def _fsync_dir(path: Path) -> None:
    """Persist a directory entry (rename) where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class LocalArtifactStore(ArtifactStore):
    """Content-addressed blobs in a directory tree on the local filesystem."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = self.root.as_uri()
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ValidationFailed(
                f"artifact store root {self.root} is not a directory",
                details={"field": "uri"},
            ) from exc
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create artifact store at {self.root}: {exc.strerror or exc}"
            ) from exc

    # ----------------------------------------------------------------------- paths

    def blob_path(self, digest: str) -> Path:
        """Final path of a (validated) digest: ``blobs/<2>/<62>``."""
        return self._blobs / digest[:2] / digest[2:]

    def _spool_dir(self) -> str | None:
        return str(self._tmp)

    # ----------------------------------------------------------------------- primitives

    def _put_stream(self, stream: BinaryIO, max_bytes: int | None) -> BlobInfo:
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create a temp file in {self._tmp}: {exc.strerror or exc}"
            ) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                # Errors reading the caller's stream propagate unchanged; write errors are
                # BackendUnavailable.
                info = copy_hashing(stream, out, max_bytes=max_bytes)
                self._seal(out)
            return self._commit(tmp_name, info)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    def _seal(self, out: BinaryIO) -> None:
        """Make the temp file durable and read-only before it is renamed into place."""
        try:
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), _BLOB_MODE)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot write temp upload in {self._tmp}: {exc.strerror or exc}"
            ) from exc

    def _commit(self, tmp_name: str, info: BlobInfo) -> BlobInfo:
        """Rename the sealed temp file to its final path, or drop it if already stored."""
        final = self.blob_path(info.digest)
        try:
            if self._stored_size(final) == info.size:
                # Deduplicated: the same content is already in place.
                os.unlink(tmp_name)
                return info
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, final)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot store blob {info.digest} in {self.root}: {exc.strerror or exc}"
            ) from exc
        _fsync_dir(final.parent)
        return info

    def _stored_size(self, path: Path) -> int | None:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None

    def _raw_chunks(self, digest: str) -> Generator[bytes, None, None]:
        path = self.blob_path(digest)
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError as exc:
            raise self._not_found(digest) from exc
        except OSError as exc:
            raise BackendUnavailable(f"cannot read {path}: {exc.strerror or exc}") from exc
        with source:
            while True:
                try:
                    chunk = source.read(CHUNK_SIZE)
                except OSError as exc:
                    raise BackendUnavailable(f"cannot read {path}: {exc.strerror or exc}") from exc
                if not chunk:
                    return
                yield chunk

    def _exists(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def _size(self, digest: str) -> int:
        try:
            size = self._stored_size(self.blob_path(digest))
        except OSError as exc:
            raise BackendUnavailable(f"cannot stat blob {digest}: {exc}") from exc
        if size is None:
            raise self._not_found(digest)
        return size

    def _delete(self, digest: str) -> None:
        try:
            self.blob_path(digest).unlink(missing_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"cannot delete blob {digest}: {exc.strerror or exc}") from exc

    def _clean_tmp(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise BackendUnavailable(f"cannot list {self._tmp}: {exc.strerror or exc}") from exc
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # finished or cleaned concurrently
            except OSError as exc:
                raise BackendUnavailable(
                    f"cannot remove {entry.path}: {exc.strerror or exc}"
                ) from exc
            removed += 1
        return removed

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(
            f"no blob {digest} in {self.uri}", details={"digest": digest, "store": self.uri}
        )
