"""Signed model bundles (``edgeloop-bundle/1``): build, sign, pack, verify and self-test.

A bundle is ``manifest.json``, the files it lists (each with its SHA-256 and size) and
``manifest.sig``, the raw 64-byte Ed25519 signature of exactly the manifest bytes. The
manifest is written canonically (sorted keys, no spaces, UTF-8). A device checks a bundle in
this order (docs/fleet-protocol.md)::

    manifest = verify_manifest(manifest_bytes, signature, fleet_key)  # signature, format
    check_compatible(manifest, target="rpi4", current_version=3,
                     rollback=False, max_bytes=16 << 20)              # target, downgrade, size
    plan = delta(previous_manifest, manifest)                         # what to download
    verify_file(manifest, path, data)                                 # path, size, hash
    run_self_test(manifest, files)                                    # self-test

Every refusal is a :class:`BundleRejected` whose ``reason`` is the word the device reports
when it checks in.

The device agent imports this module, so it imports only the standard library, numpy,
``cryptography`` and edgeloop's on-device runtimes (onnxruntime inside the ONNX self-test
only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import io
import json
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edgeloop.edge.runtime import QuantizedModel
from edgeloop.edge.trees import QuantizedTrees
from edgeloop.errors import ValidationFailed
from edgeloop.fleet._manifest import (
    _CHECKSUM_FIELD,
    _MAX_TAR_ENTRIES,
    _SIGNATURE_BYTES,
    _TAR_ENTRY_OVERHEAD,
    BUNDLE_FORMAT,
    MANIFEST,
    MODEL_FILES,
    ONNX_TOLERANCE,
    SIGNATURE,
    BundleRejected,
    Reason,
    Runtime,
    _canonical,
    _check_manifest,
    _check_path,
    _check_paths,
    _format,
    _parse,
    _reject,
)

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "MODEL_FILES",
    "ONNX_TOLERANCE",
    "SIGNATURE",
    "Bundle",
    "BundleRejected",
    "Delta",
    "Reason",
    "Runtime",
    "build_bundle",
    "check_compatible",
    "delta",
    "load_private_key",
    "load_public_key",
    "pack_tar",
    "private_key_b64",
    "public_key_b64",
    "run_self_test",
    "sign",
    "unpack_tar",
    "verify_bundle",
    "verify_file",
    "verify_manifest",
]


# ---- building and signing -----------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """The manifest bytes exactly as signed, the raw signature, and the files by path."""

    manifest: bytes
    signature: bytes
    files: Mapping[str, bytes] = field(default_factory=dict)

    def manifest_dict(self) -> dict[str, Any]:
        """The parsed manifest (not verified: see :func:`verify_bundle`)."""
        return _parse(self.manifest)

    @property
    def size(self) -> int:
        """Bytes of the manifest and every file (the signature not counted)."""
        return len(self.manifest) + sum(len(data) for data in self.files.values())

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the manifest bytes: the ``bundle_digest`` a device reports."""
        return hashlib.sha256(self.manifest).hexdigest()


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The raw 64-byte Ed25519 signature of ``manifest``."""
    return key.sign(manifest)


def build_bundle(
    *,
    release: str,
    name: str,
    model_version: int,
    target: str,
    runtime: Runtime,
    files: Mapping[str, bytes],
    signing_key: Ed25519PrivateKey,
    created_at: int,
    input: Mapping[str, Any] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    labels: Sequence[str] = (),
    metrics: Mapping[str, Any] | None = None,
    footprint: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    self_test: Sequence[Mapping[str, Any]] = (),
) -> Bundle:
    """A signed bundle of ``files`` (relative POSIX paths; ``runtime`` names the model file
    it needs, see :data:`MODEL_FILES`). ``created_at`` is epoch milliseconds; ``self_test``
    cases are ``{"input": [...], "expected": [...], "class": label}``.

    >>> key = Ed25519PrivateKey.generate()
    >>> bundle = build_bundle(release="rel_1", name="pump", model_version=3, target="nano33ble",
    ...                       runtime="c", files={"model.c": b"int x;"}, signing_key=key,
    ...                       created_at=1764000000000)
    >>> verify_bundle(bundle, key.public_key())["files"]["model.c"]["size"]
    6
    """
    _check_paths(files)
    if isinstance(labels, str):
        raise _format("'labels' must be a list of strings, not one string", field="labels")
    contents = {path: bytes(data) for path, data in sorted(files.items())}
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "release": release,
        "name": name,
        "model_version": model_version,
        "target": target,
        "runtime": runtime,
        "files": {
            path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in contents.items()
        },
        "input": dict(input) if input is not None else {},
        "preprocessing": dict(preprocessing) if preprocessing is not None else None,
        "labels": list(labels),
        "metrics": dict(metrics) if metrics is not None else {},
        "footprint": dict(footprint) if footprint is not None else {},
        "lineage": dict(lineage) if lineage is not None else {},
        "self_test": [dict(case) for case in self_test],
        "created_at": created_at,
    }
    _check_manifest(manifest)
    raw = _canonical(manifest)
    return Bundle(manifest=raw, signature=sign(raw, signing_key), files=contents)


# ---- verifying ------------------------------------------------------------------------------


def verify_manifest(
    manifest: bytes, signature: bytes, public_key: Ed25519PublicKey
) -> dict[str, Any]:
    """The manifest, parsed, once its signature verifies with the fleet's ``public_key`` and
    its fields are well formed (reason ``signature``, ``format`` or ``path``)."""
    try:
        public_key.verify(bytes(signature), bytes(manifest))
    except InvalidSignature:
        raise _reject(
            "signature",
            f"{SIGNATURE} does not verify {MANIFEST} with the fleet public key: the bundle was "
            "altered or signed by another key; download it again, and re-enroll the device if "
            "the fleet signing key was replaced",
        ) from None
    parsed = _parse(manifest)
    _check_manifest(parsed)
    return parsed


def verify_file(manifest: Mapping[str, Any], path: str, data: bytes) -> None:
    """Check one downloaded file against the (verified) manifest: reason ``path`` for a file
    it does not list, ``size`` or ``hash`` for other bytes than the ones signed."""
    files = manifest.get("files")
    entry = files.get(path) if isinstance(files, Mapping) else None
    if not isinstance(entry, Mapping):
        raise _reject(
            "path",
            f"{path!r} is not listed in the signed manifest: a bundle holds exactly the files "
            "its manifest lists; discard the file",
            path=path,
        )
    if len(data) != entry.get("size"):
        raise _reject(
            "size",
            f"{path!r} has {len(data)} bytes but the manifest says {entry.get('size')}: the "
            "download is truncated or altered; download the file again",
            path=path,
            size=len(data),
            expected=entry.get("size"),
        )
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, str(entry.get("sha256"))):
        raise _reject(
            "hash",
            f"the SHA-256 of {path!r} does not match the manifest: the file was altered or "
            "corrupted; download it again",
            path=path,
            sha256=digest,
            expected=entry.get("sha256"),
        )


def verify_bundle(bundle: Bundle, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The verified manifest of a complete bundle: the signature, every file's size and hash,
    and exactly the files listed (reason ``path`` for one too many or one missing)."""
    manifest = verify_manifest(bundle.manifest, bundle.signature, public_key)
    listed = manifest["files"]
    extra = sorted(set(bundle.files) - set(listed))
    if extra:
        raise _reject(
            "path",
            f"{extra[0]!r} is in the bundle but not in its signed manifest: the bundle was "
            "altered; download it again",
            paths=extra,
        )
    missing = sorted(set(listed) - set(bundle.files))
    if missing:
        raise _reject(
            "path",
            f"{missing[0]!r} is listed in the manifest but missing from the bundle: download "
            "the missing files",
            paths=missing,
        )
    for path, data in bundle.files.items():
        verify_file(manifest, path, data)
    return manifest


def _listed_size(manifest: Mapping[str, Any]) -> int:
    """Bytes of the files a manifest lists, plus the manifest in its canonical form."""
    files = manifest["files"].values()
    return len(_canonical(manifest)) + sum(int(entry["size"]) for entry in files)


def check_compatible(
    manifest: Mapping[str, Any],
    *,
    target: str,
    current_version: int | None,
    rollback: bool,
    max_bytes: int,
) -> None:
    """Refuse a (verified) bundle this device must not install: built for another
    ``target`` (reason ``target``), an older model version than ``current_version`` unless
    the assignment is a ``rollback`` (``downgrade``), or larger than ``max_bytes``
    (``size``; the files plus the manifest)."""
    _check_manifest(manifest)
    if manifest["target"] != target:
        raise _reject(
            "target",
            f"the bundle is built for target {manifest['target']!r} but this device is "
            f"{target!r}: assign the device a release built for {target!r}",
            bundle_target=manifest["target"],
            device_target=target,
        )
    version = manifest["model_version"]
    if current_version is not None and not rollback and version < current_version:
        raise _reject(
            "downgrade",
            f"the bundle holds model version {version} but this device runs version "
            f"{current_version}: a device goes back to an older version only when its "
            "assignment says rollback: true",
            model_version=version,
            current_version=current_version,
        )
    size = _listed_size(manifest)
    if size > max_bytes:
        raise _reject(
            "size",
            f"the bundle has {size} bytes, over this device's limit of {max_bytes}: release a "
            "smaller model for this target, or raise the limit (max_bundle_bytes)",
            size=size,
            max_bytes=max_bytes,
        )


# ---- delta transfer -----------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """What a device holding the ``old`` bundle downloads to get the ``new`` one: ``fetch``
    (new paths to download), ``reuse`` (new path -> path of an old file with the same SHA-256
    and size), ``bytes_total`` (bytes of the new files) and ``bytes_saved`` (bytes reused)."""

    fetch: tuple[str, ...]
    reuse: Mapping[str, str]
    bytes_total: int
    bytes_saved: int

    @property
    def bytes_to_fetch(self) -> int:
        return self.bytes_total - self.bytes_saved


def delta(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Delta:
    """The download plan from manifest ``old`` (None: nothing installed) to ``new``; a file
    is reused from its old path when unchanged, else from any old file with the same content."""
    old_files: Mapping[str, Any] = old["files"] if old is not None else {}
    by_content: dict[tuple[str, int], str] = {}
    for path, entry in sorted(old_files.items()):
        by_content.setdefault((entry["sha256"], entry["size"]), path)
    fetch: list[str] = []
    reuse: dict[str, str] = {}
    total = saved = 0
    for path, entry in sorted(new["files"].items()):
        content = (entry["sha256"], entry["size"])
        total += entry["size"]
        same = old_files.get(path)
        if same is not None and (same["sha256"], same["size"]) == content:
            reuse[path] = path
        elif content in by_content:
            reuse[path] = by_content[content]
        else:
            fetch.append(path)
            continue
        saved += entry["size"]
    return Delta(fetch=tuple(fetch), reuse=reuse, bytes_total=total, bytes_saved=saved)


# ---- self-test ------------------------------------------------------------------------------


def _self_test_failed(problem: str, **details: Any) -> BundleRejected:
    return _reject(
        "self-test",
        f"self-test failed: {problem}; keep the previous slot active and report the failure "
        "(the release may have been built for another runtime or from another model)",
        **details,
    )


def _case_failed(index: int, count: int, problem: str, **details: Any) -> BundleRejected:
    return _self_test_failed(f"case {index + 1} of {count} {problem}", case=index, **details)


def run_self_test(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Run the manifest's self-test cases on the installed ``files`` (reason ``self-test``):
    ``int8`` and ``trees`` outputs must equal ``expected`` exactly, ``onnx`` scores within
    :data:`ONNX_TOLERANCE`, and the predicted label must be ``class``. A ``c`` bundle has
    nothing to run on a Linux device."""
    runtime = manifest.get("runtime")
    if not isinstance(runtime, str) or runtime not in MODEL_FILES:
        raise _format(f"'runtime' is {runtime!r}; allowed: {', '.join(MODEL_FILES)}")
    model_file = MODEL_FILES[runtime]
    if model_file is None:
        return
    data = files.get(model_file)
    if data is None:
        raise _self_test_failed(f"{model_file!r} is not among the installed files")
    cases = list(manifest.get("self_test") or [])
    labels = [str(label) for label in manifest.get("labels") or []]
    if runtime == "onnx":
        _self_test_onnx(data, cases, labels)
    else:
        _self_test_integer(runtime, model_file, data, cases, labels)


def _self_test_integer(
    runtime: str, model_file: str, data: bytes, cases: list[Any], labels: list[str]
) -> None:
    model: QuantizedModel | QuantizedTrees
    try:
        model = (QuantizedModel if runtime == "int8" else QuantizedTrees).from_bytes(data)
    except Exception as exc:  # zipfile, numpy, json and the dataclass checks all raise
        problem = f"{model_file!r} does not load as a {runtime} model: {exc}"
        raise _self_test_failed(problem) from exc
    if labels and tuple(labels) != tuple(model.labels):
        raise _self_test_failed(
            f"the manifest labels {labels} differ from the model's {list(model.labels)}"
        )
    for i, case in enumerate(cases):
        try:
            x = np.asarray(case["input"], dtype=np.float32).reshape(1, *model.input_shape)
            if isinstance(model, QuantizedModel):
                got = np.asarray(model.run_int8(model.quantize_input(x))[0], dtype=np.int64)
            else:
                got = np.asarray(model.int_scores(x)[0], dtype=np.int64)
            predicted = model.predict(x)[0]
            expected = np.asarray(case["expected"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _case_failed(i, len(cases), f"cannot run: {exc}") from exc
        if (
            expected.dtype.kind not in "iu"
            or expected.shape != got.shape
            or not np.array_equal(expected.astype(np.int64), got)
        ):
            raise _case_failed(
                i,
                len(cases),
                f"expected {case['expected']}, got {got.tolist()}",
                expected=case["expected"],
                got=got.tolist(),
            )
        _check_class(i, len(cases), case, predicted)


def _check_class(index: int, count: int, case: Mapping[str, Any], predicted: str) -> None:
    if "class" in case and case["class"] != predicted:
        raise _case_failed(
            index,
            count,
            f"predicts {predicted!r}, expected {case['class']!r}",
            expected=case["class"],
            got=predicted,
        )


def _onnxruntime() -> Any:
    """onnxruntime, imported on first use: only ONNX bundles need it (it ships no types)."""
    return importlib.import_module("onnxruntime")


def _self_test_onnx(data: bytes, cases: list[Any], labels: list[str]) -> None:
    try:
        ort = _onnxruntime()
    except ImportError as exc:
        raise _self_test_failed(
            "onnxruntime is not installed on this device: install it, or deploy a release "
            "with the int8 runtime"
        ) from exc
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        output_name = session.get_outputs()[0].name
        metadata = session.get_modelmeta().custom_metadata_map
        if not labels and "labels" in metadata:
            labels = [str(label) for label in json.loads(metadata["labels"])]
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise _self_test_failed(f"'model.onnx' does not load in onnxruntime: {exc}") from exc
    for i, case in enumerate(cases):
        try:
            x = np.asarray(case["input"], dtype=np.float32)[None, ...]
            (scores,) = session.run([output_name], {input_name: x})
            got = np.asarray(scores, dtype=np.float64)[0]
            expected = np.asarray(case["expected"], dtype=np.float64)
        except Exception as exc:  # onnxruntime's errors, numpy's on ragged lists
            raise _case_failed(i, len(cases), f"cannot run: {exc}") from exc
        if expected.shape != got.shape or not np.all(np.abs(got - expected) <= ONNX_TOLERANCE):
            raise _case_failed(
                i,
                len(cases),
                f"expected {expected.tolist()} (within {ONNX_TOLERANCE}), got {got.tolist()}",
                expected=case["expected"],
                got=got.tolist(),
            )
        if "class" not in case:
            continue
        index = int(got[0] > 0) if got.size == 1 else int(np.argmax(got))
        if index >= len(labels):
            raise _case_failed(i, len(cases), f"predicts class {index} but no label names it")
        _check_class(i, len(cases), case, labels[index])


# ---- tar ------------------------------------------------------------------------------------


def pack_tar(bundle: Bundle) -> bytes:
    """The bundle as an uncompressed tar: ``manifest.json``, ``manifest.sig``, then the files
    in path order, with fixed metadata so the same bundle always gives the same bytes."""
    _check_paths(bundle.files)
    entries = [(MANIFEST, bundle.manifest), (SIGNATURE, bundle.signature)]
    entries += sorted(bundle.files.items())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)  # mode 0644, uid/gid 0, mtime 0
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _too_large(max_bytes: int, problem: str) -> BundleRejected:
    return _reject(
        "size",
        f"the bundle archive {problem}, over this device's limit of {max_bytes} bytes: "
        "release a smaller model for this target, or raise the limit (max_bundle_bytes)",
        max_bytes=max_bytes,
    )


def _not_a_bundle(problem: str) -> BundleRejected:
    return _reject(
        "format",
        f"not a bundle archive: {problem}; download the bundle again, or pack it with "
        "edgeloop (a plain or gzip tar of manifest.json, manifest.sig and the files)",
    )


def _tar_bytes(data: bytes, limit: int, max_bytes: int) -> bytes:
    """The uncompressed tar (gunzipped without ever holding more than ``limit`` bytes)."""
    if data[:2] != b"\x1f\x8b":
        if len(data) > limit:
            raise _too_large(max_bytes, f"has {len(data)} bytes")
        return bytes(data)
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise _not_a_bundle(f"corrupt gzip data ({exc})") from exc
    if len(raw) > limit:
        raise _too_large(max_bytes, f"unpacks to more than {limit} bytes")
    if not decompressor.eof:
        raise _not_a_bundle("the gzip stream is truncated")
    if decompressor.unused_data:
        raise _not_a_bundle("data follows the gzip stream")
    return raw


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return "" if name == "." else name


def _padded_end(member: tarfile.TarInfo) -> int:
    return member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _check_header(member: tarfile.TarInfo, raw: bytes) -> None:
    header = raw[member.offset_data - tarfile.BLOCKSIZE : member.offset_data]
    # the checksum field is the one part of a header its checksum does not cover, and tar
    # readers parse it leniently; require the form tarfile, GNU tar, bsdtar and Go write, so
    # that no byte of a header can change without the archive being refused
    if not _CHECKSUM_FIELD.fullmatch(header[148:156]):
        raise _not_a_bundle(f"the tar header of {member.name!r} has a malformed checksum field")


def _read_member(member: tarfile.TarInfo, raw: bytes) -> bytes:
    start, end, padded = member.offset_data, member.offset_data + member.size, _padded_end(member)
    content = raw[start:end]
    if len(content) != member.size:
        raise _not_a_bundle(f"{member.name!r} is truncated")
    if raw[end:padded].count(0) != padded - end:
        raise _not_a_bundle(f"non-zero padding after {member.name!r}")
    return content


def _members(raw: bytes, max_bytes: int) -> tuple[dict[str, bytes], int]:
    """The regular files by name, and the offset where the archive's members end."""
    contents: dict[str, bytes] = {}
    end = total = entries = 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        while (member := tar.next()) is not None:
            entries += 1
            if entries > _MAX_TAR_ENTRIES:
                raise _too_large(max_bytes, f"has more than {_MAX_TAR_ENTRIES} entries")
            name = _member_name(member)
            if member.issym() or member.islnk():
                raise _reject(
                    "path",
                    f"{member.name!r} is a link (to {member.linkname!r}): bundles hold regular "
                    "files only",
                    path=member.name,
                )
            if not member.isdir() and (not member.isreg() or member.issparse()):
                raise _reject(
                    "path",
                    f"{member.name!r} is a device, FIFO or other special file: bundles hold "
                    "regular files only",
                    path=member.name,
                )
            if name not in (MANIFEST, SIGNATURE, ""):
                _check_path(name)
            _check_header(member, raw)
            end = _padded_end(member)
            if member.isdir():
                continue
            if name in contents:
                raise _reject("path", f"{name!r} appears twice in the archive", path=name)
            if name == SIGNATURE:
                if member.size != _SIGNATURE_BYTES:
                    raise _reject(
                        "signature",
                        f"{SIGNATURE} has {member.size} bytes, not the {_SIGNATURE_BYTES} of an "
                        "Ed25519 signature: download the bundle again",
                    )
            else:
                total += member.size
                if total > max_bytes:
                    raise _too_large(max_bytes, f"holds more than {max_bytes} bytes")
            contents[name] = _read_member(member, raw)
    return contents, end


def unpack_tar(data: bytes, *, max_bytes: int) -> Bundle:
    """The bundle in a plain or gzip tar, read in memory (nothing touches the disk).

    Refuses links, devices and other special files, unsafe or duplicate paths (reason
    ``path``), more than ``max_bytes`` of manifest and files (``size``), and anything that is
    not a well-formed tar ending in zeros (``format``). Does not verify: see
    :func:`verify_bundle`.
    """
    limit = max_bytes + _MAX_TAR_ENTRIES * _TAR_ENTRY_OVERHEAD + tarfile.RECORDSIZE
    raw = _tar_bytes(data, limit, max_bytes)
    try:
        contents, end = _members(raw, max_bytes)
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
        raise _not_a_bundle(f"{exc}") from exc
    if raw[end:].count(0) != len(raw) - end:
        raise _not_a_bundle("data that is not a tar entry follows the last file")
    manifest = contents.pop(MANIFEST, None)
    signature = contents.pop(SIGNATURE, None)
    if manifest is None or signature is None:
        raise _not_a_bundle(f"it lacks {MANIFEST if manifest is None else SIGNATURE}")
    _check_paths(contents)
    return Bundle(manifest=manifest, signature=signature, files=contents)


# ---- keys -----------------------------------------------------------------------------------


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The base64 of the 32 raw bytes of a public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes_raw()).decode("ascii")


def private_key_b64(key: Ed25519PrivateKey) -> str:
    """The base64 of the 32 raw bytes of a private key (keep it secret)."""
    return base64.b64encode(key.private_bytes_raw()).decode("ascii")


def _raw_key(b64: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError, TypeError, AttributeError) as exc:
        raise ValidationFailed(
            f"{field} is not base64 ({exc}): pass the base64 of the key's 32 raw bytes",
            details={"field": field},
        ) from exc
    if len(raw) != 32:
        raise ValidationFailed(
            f"{field} decodes to {len(raw)} bytes: an Ed25519 key is the base64 of 32 raw bytes",
            details={"field": field},
        )
    return raw


def load_public_key(b64: str) -> Ed25519PublicKey:
    """The Ed25519 public key in base64 of its 32 raw bytes (ValidationFailed otherwise)."""
    try:
        return Ed25519PublicKey.from_public_bytes(_raw_key(b64, "public_key"))
    except ValueError as exc:
        raise ValidationFailed(f"public_key: {exc}", details={"field": "public_key"}) from exc


def load_private_key(b64: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in base64 of its 32 raw bytes (ValidationFailed otherwise)."""
    try:
        return Ed25519PrivateKey.from_private_bytes(_raw_key(b64, "private_key"))
    except ValueError as exc:
        raise ValidationFailed(f"private_key: {exc}", details={"field": "private_key"}) from exc
