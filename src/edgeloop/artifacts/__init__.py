"""Content-addressed blob store: local directory or S3, every read verified by SHA-256.

>>> store = open_artifact_store("/srv/edgeloop/artifacts")  # doctest: +SKIP
>>> info = store.put_bytes(b"weights")  # doctest: +SKIP
>>> store.get_bytes(info.digest)  # doctest: +SKIP
b'weights'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.artifacts._base import ArtifactStore, BlobInfo, validate_digest
    from edgeloop.artifacts._fsspec import FsspecArtifactStore
    from edgeloop.artifacts._local import LocalArtifactStore
    from edgeloop.artifacts._open import open_artifact_store

__all__ = [
    "ArtifactStore",
    "BlobInfo",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "open_artifact_store",
    "validate_digest",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "._base": ("ArtifactStore", "BlobInfo", "validate_digest"),
        "._fsspec": ("FsspecArtifactStore",),
        "._local": ("LocalArtifactStore",),
        "._open": ("open_artifact_store",),
    },
)
