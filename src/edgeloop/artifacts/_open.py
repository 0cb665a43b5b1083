"""``open_artifact_store``: pick the backend for a store URI."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from edgeloop.artifacts._base import ArtifactStore
from edgeloop.errors import ValidationFailed

ALLOWED_SCHEMES = ("file", "s3")


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": "uri", "allowed_schemes": ALLOWED_SCHEMES})


def open_artifact_store(uri: str) -> ArtifactStore:
    """Open the artifact store at ``uri``.

    * a plain path or ``file:///abs/path`` -> :class:`LocalArtifactStore`
    * ``s3://bucket/prefix`` -> :class:`FsspecArtifactStore` over s3fs (``pip install
      edgeloop[s3]``); endpoint and credentials come from the standard AWS environment.

    Any other scheme raises :class:`~edgeloop.errors.ValidationFailed`.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise _invalid("artifact store uri must be a non-empty path or URI")
    if "://" not in uri:
        from edgeloop.artifacts._local import LocalArtifactStore

        return LocalArtifactStore(Path(uri))

    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise _invalid(f"file:// uri must be local (file:///path), got host {parsed.netloc!r}")
        path = urllib.parse.unquote(parsed.path)
        if not path:
            raise _invalid("file:// uri needs a path, e.g. file:///srv/artifacts")
        from edgeloop.artifacts._local import LocalArtifactStore

        return LocalArtifactStore(Path(path))
    if scheme == "s3":
        bucket = parsed.netloc
        if not bucket:
            raise _invalid(f"s3 uri must name a bucket (s3://bucket/prefix), got {uri!r}")
        if parsed.query or parsed.fragment:
            raise _invalid(f"s3 uri must not carry a query or fragment, got {uri!r}")
        from edgeloop.artifacts._fsspec import open_s3_store

        return open_s3_store(bucket, parsed.path.strip("/"))
    raise _invalid(
        f"unsupported artifact store scheme {parsed.scheme!r} in {uri!r}; "
        "allowed: a plain path, file://, s3://"
    )
