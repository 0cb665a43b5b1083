"""Bundle manifests: the format's constants, the refusal error, canonical bytes, and the
checks every manifest and file path must pass (imported by :mod:`edgeloop.fleet.bundle`)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from edgeloop.errors import DataRejected

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "MODEL_FILES",
    "ONNX_TOLERANCE",
    "SIGNATURE",
    "BundleRejected",
    "Reason",
    "Runtime",
]

BUNDLE_FORMAT = "edgeloop-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ONNX_TOLERANCE = 1e-4
"""Largest absolute difference between an ONNX self-test's scores and the expected ones."""

Reason = Literal["signature", "hash", "size", "target", "downgrade", "format", "self-test", "path"]
Runtime = Literal["int8", "trees", "onnx", "c"]
MODEL_FILES: Mapping[str, str | None] = {
    "int8": "model.int8.npz",
    "trees": "model.trees.npz",
    "onnx": "model.onnx",
    "c": None,  # C sources, flashed by firmware tooling: nothing for the agent to load
}
"""The file each runtime loads; the manifest must list it."""

_REASONS: frozenset[str] = frozenset(get_args(Reason))
_SIGNATURE_BYTES = 64
_MAX_PATH_BYTES = 255
_MAX_TAR_ENTRIES = 1000
_TAR_ENTRY_OVERHEAD = 2048  # header blocks, long-name records and padding allowed per entry
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHECKSUM_FIELD = re.compile(rb"[0-7]{6}\x00 ")  # six octal digits, NUL, space
_REBUILD = "rebuild the release with the edgeloop server"


class BundleRejected(DataRejected):
    """A bundle a device must not install. ``reason`` (also ``details["reason"]``) is one of
    ``signature, hash, size, target, downgrade, format, self-test, path``; the message says
    what was wrong and what to do.

    It keeps :class:`DataRejected`'s error code, so the HTTP client rebuilds it as a
    ``DataRejected`` with the same ``details``.
    """

    def __init__(
        self, message: str, *, reason: Reason, details: Mapping[str, Any] | None = None
    ) -> None:
        if reason not in _REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message, details={**(details or {}), "reason": reason})
        self.reason: Reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process pools
        return (functools.partial(type(self), reason=self.reason), (self.message,), self.__dict__)


def _reject(reason: Reason, message: str, **details: Any) -> BundleRejected:
    return BundleRejected(message, reason=reason, details=details)


def _format(problem: str, **details: Any) -> BundleRejected:
    return _reject("format", f"the bundle manifest is malformed: {problem}; {_REBUILD}", **details)


# ---- manifest bytes and paths -----------------------------------------------------------------


def _canonical(manifest: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _format(
            f"it is not plain JSON ({exc}): use dicts, lists, strings, ints and finite floats"
        ) from exc
    return text.encode("utf-8")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(manifest: bytes) -> dict[str, Any]:
    try:
        value = json.loads(
            manifest.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _format(f"{MANIFEST} is not UTF-8 JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise _format(f"{MANIFEST} must hold a JSON object, not {type(value).__name__}")
    return value


def _check_path(path: object) -> str:
    problem = ""
    if not isinstance(path, str) or not path:
        problem = "is empty or not a string"
    elif "\\" in path:
        problem = "contains a backslash"
    elif path.startswith("/"):
        problem = "is absolute"
    elif any(ord(c) < 32 or ord(c) == 127 for c in path):
        problem = "contains a control character"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "has an empty, '.' or '..' part"
    elif path in (MANIFEST, SIGNATURE):
        problem = "is reserved for the bundle's own manifest and signature"
    else:
        try:
            if len(path.encode("utf-8")) > _MAX_PATH_BYTES:
                problem = f"is longer than {_MAX_PATH_BYTES} bytes"
        except UnicodeEncodeError:
            problem = "is not valid UTF-8"
    if problem:
        raise _reject(
            "path",
            f"file path {path!r} {problem}: bundle files have relative POSIX paths such as "
            "'c/model.c', without '..', '.', empty parts, backslashes or a leading '/'",
            path=str(path),
        )
    assert isinstance(path, str)
    return path


def _check_paths(paths: Iterable[object]) -> None:
    """Every path is safe, and none is also another's directory."""
    checked = {_check_path(path) for path in paths}
    for path in sorted(checked):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in checked:
                raise _reject(
                    "path",
                    f"{parent!r} is both a file and the directory of {path!r}: rename one",
                    path=parent,
                )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifest(m: Mapping[str, Any]) -> None:
    """The fields a device relies on, with their types (extra fields are allowed)."""
    if m.get("format") != BUNDLE_FORMAT:
        raise _reject(
            "format",
            f"the bundle's format is {m.get('format')!r}; this agent reads {BUNDLE_FORMAT!r}: "
            "upgrade the agent, or release the model in a format it reads",
            format=str(m.get("format")),
        )
    for key in ("release", "name", "target"):
        if not isinstance(m.get(key), str) or not m[key]:
            raise _format(f"{key!r} must be a non-empty string", field=key)
    for key in ("model_version", "created_at"):
        if not _is_int(m.get(key)) or m[key] < 0:
            raise _format(f"{key!r} must be an integer >= 0", field=key)
    runtime = m.get("runtime")
    if not isinstance(runtime, str) or runtime not in MODEL_FILES:
        allowed = ", ".join(MODEL_FILES)
        raise _format(f"'runtime' is {runtime!r}; allowed: {allowed}", field="runtime")
    files = m.get("files")
    if not isinstance(files, Mapping):
        raise _format("'files' must be an object of path -> {sha256, size}", field="files")
    _check_paths(files)
    for path, entry in files.items():
        if not (
            isinstance(entry, Mapping)
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"])
            and _is_int(entry.get("size"))
            and entry["size"] >= 0
        ):
            raise _format(
                f"files[{path!r}] must be {{'sha256': 64 lowercase hex digits, 'size': int >= 0}}",
                field="files",
            )
    model_file = MODEL_FILES[runtime]
    if model_file is not None and model_file not in files:
        raise _format(f"runtime {runtime!r} needs {model_file!r} in 'files'", field="files")
    for key in ("input", "preprocessing", "metrics", "footprint", "lineage"):
        if m.get(key) is not None and not isinstance(m[key], Mapping):
            raise _format(f"{key!r} must be an object or null", field=key)
    labels = m.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise _format("'labels' must be a list of strings", field="labels")
    cases = m.get("self_test", [])
    if not isinstance(cases, list):
        raise _format("'self_test' must be a list", field="self_test")
    for i, case in enumerate(cases):
        if not (
            isinstance(case, Mapping)
            and isinstance(case.get("input"), list)
            and isinstance(case.get("expected"), list)
            and isinstance(case.get("class", ""), str)
        ):
            raise _format(
                f"self_test[{i}] must be {{'input': [...], 'expected': [...], 'class': str}}",
                field="self_test",
            )
