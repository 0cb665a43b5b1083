"""Model bundles: build, pack, unpack, verify; every tamper caught with its reason; tar
safety; device compatibility rules; delta transfer; the on-device self-test per runtime."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.neural_network import MLPClassifier

from edgeloop.edge._onnx import export_onnx_float
from edgeloop.edge._quantize import quantize
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.edge.trees import QuantizedTrees, quantize_trees
from edgeloop.errors import DataRejected, ValidationFailed
from edgeloop.fleet.bundle import (
    BUNDLE_FORMAT,
    MANIFEST,
    SIGNATURE,
    Bundle,
    BundleRejected,
    build_bundle,
    check_compatible,
    delta,
    load_private_key,
    load_public_key,
    pack_tar,
    private_key_b64,
    public_key_b64,
    run_self_test,
    sign,
    unpack_tar,
    verify_bundle,
    verify_file,
    verify_manifest,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LABELS = ["idle", "run", "fault"]
C_FILES = {
    "c/model.c": b'#include "model.h"\nconst signed char w[4] = {1, 2, 3, 4};\n' * 8,
    "c/model.h": b"#pragma once\nint predict(const float *x);\n",
    "README.txt": b"edgeloop model\n",
}
MiB = 1 << 20
Entry = tuple[str, bytes | None, bytes]  # a tar entry: name, type (None: a file), data
Installed = tuple[dict[str, Any], dict[str, bytes]]  # a manifest and its files
MakeRuntimeBundle = Callable[..., Installed]
FIXED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def rejected(reason: str) -> Any:
    """``pytest.raises`` for a BundleRejected with ``reason``."""
    return pytest.raises(BundleRejected, check=lambda exc: exc.reason == reason)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_bundle(key: Ed25519PrivateKey) -> Callable[..., Bundle]:
    def factory(**overrides: Any) -> Bundle:
        args: dict[str, Any] = {
            "release": "rel_1",
            "name": "machine-condition",
            "model_version": 3,
            "target": "rpi4",
            "runtime": "c",
            "files": C_FILES,
            "signing_key": key,
            "created_at": 1764000000000,
            "labels": LABELS,
            "metrics": {"accuracy": 0.93},
            "lineage": {"run": "run_1"},
        }
        return build_bundle(**{**args, **overrides})

    return factory


def resigned(bundle: Bundle, key: Ed25519PrivateKey, **changes: Any) -> Bundle:
    """``bundle`` with manifest fields changed and signed again by ``key``."""
    manifest = {**json.loads(bundle.manifest), **changes}
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return Bundle(raw, sign(raw, key), bundle.files)


# ---- build, pack, verify ---------------------------------------------------------------------


def test_round_trip(make_bundle: Callable[..., Bundle], key: Ed25519PrivateKey) -> None:
    bundle = make_bundle()
    data = pack_tar(bundle)
    assert pack_tar(bundle) == data  # deterministic
    unpacked = unpack_tar(data, max_bytes=MiB)
    assert unpacked == bundle
    manifest = verify_bundle(unpacked, key.public_key())
    assert manifest == bundle.manifest_dict()
    assert manifest["format"] == BUNDLE_FORMAT
    assert manifest["labels"] == LABELS
    assert unpack_tar(gzip.compress(data), max_bytes=MiB) == bundle
    assert os.listdir(".") == []  # nothing was written to disk


def test_manifest_is_canonical_and_lists_every_file(make_bundle: Callable[..., Bundle]) -> None:
    bundle = make_bundle()
    manifest = json.loads(bundle.manifest)
    assert bundle.manifest == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert manifest["files"] == {
        path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for path, data in C_FILES.items()
    }
    assert len(bundle.signature) == 64
    assert bundle.size == len(bundle.manifest) + sum(len(d) for d in C_FILES.values())
    assert bundle.digest == hashlib.sha256(bundle.manifest).hexdigest()


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def with_manifest_change(bundle: Bundle) -> Bundle:
    manifest = json.loads(bundle.manifest)
    manifest["self_test"] = [{"input": [0.0], "expected": [1], "class": "idle"}]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return Bundle(raw, bundle.signature, bundle.files)


TAMPERS: dict[str, tuple[Callable[[Bundle], Bundle], str]] = {
    "flip a byte in a file": (
        lambda b: Bundle(
            b.manifest, b.signature, {**b.files, "c/model.h": flip(C_FILES["c/model.h"], 3)}
        ),
        "hash",
    ),
    "truncate a file": (
        lambda b: Bundle(b.manifest, b.signature, {**b.files, "c/model.h": b"#pragma"}),
        "size",
    ),
    "flip a byte in the manifest": (
        lambda b: Bundle(flip(b.manifest, 40), b.signature, b.files),
        "signature",
    ),
    "flip a byte in the signature": (
        lambda b: Bundle(b.manifest, flip(b.signature, 10), b.files),
        "signature",
    ),
    "truncate the signature": (
        lambda b: Bundle(b.manifest, b.signature[:63], b.files),
        "signature",
    ),
    "add a file": (
        lambda b: Bundle(b.manifest, b.signature, {**b.files, "c/extra.c": b"evil"}),
        "path",
    ),
    "drop a file": (
        lambda b: Bundle(
            b.manifest, b.signature, {k: v for k, v in b.files.items() if k != "README.txt"}
        ),
        "path",
    ),
    "sign with another key": (
        lambda b: resigned(b, Ed25519PrivateKey.generate(), model_version=99),
        "signature",
    ),
    "change the self-test vectors after signing": (with_manifest_change, "signature"),
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_every_tamper_is_caught(
    tamper: str, make_bundle: Callable[..., Bundle], key: Ed25519PrivateKey
) -> None:
    change, reason = TAMPERS[tamper]
    bundle = change(make_bundle())
    with rejected(reason) as info:
        verify_bundle(bundle, key.public_key())
    assert info.value.details["reason"] == reason
    # and it stays caught through a tar
    with rejected(reason):
        verify_bundle(unpack_tar(pack_tar(bundle), max_bytes=MiB), key.public_key())


def test_rejection_is_a_422_with_reason_and_advice() -> None:
    exc = BundleRejected("manifest.sig does not verify: download it again", reason="signature")
    assert isinstance(exc, DataRejected)
    assert exc.http_status == 422
    assert exc.to_body()["error"]["details"] == {"reason": "signature"}
    copy = pickle.loads(pickle.dumps(exc))
    assert (type(copy), copy.reason, copy.message) == (BundleRejected, "signature", exc.message)
    with pytest.raises(ValueError, match="unknown rejection reason"):
        BundleRejected("?", reason="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"format": "edgeloop-bundle/2"}, "format"),
        ({"model_version": "3"}, "format"),
        ({"runtime": "tflite"}, "format"),
        ({"files": {"c/model.c": {"sha256": "abc", "size": 1}}}, "format"),
        ({"self_test": [{"input": 1}]}, "format"),
        ({"release": None}, "format"),
        ({"files": {"../etc/passwd": {"sha256": "0" * 64, "size": 1}}}, "path"),
    ],
)
def test_signed_but_malformed_manifest(
    changes: dict[str, Any],
    reason: str,
    make_bundle: Callable[..., Bundle],
    key: Ed25519PrivateKey,
) -> None:
    bundle = resigned(make_bundle(), key, **changes)
    with rejected(reason):
        verify_manifest(bundle.manifest, bundle.signature, key.public_key())


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'{"format": NaN}', b'{"a": 1, "a": 2}', b"\xff\xfe"]
)
def test_unparseable_manifest(raw: bytes, key: Ed25519PrivateKey) -> None:
    with rejected("format"):
        verify_manifest(raw, sign(raw, key), key.public_key())


def test_missing_field(make_bundle: Callable[..., Bundle], key: Ed25519PrivateKey) -> None:
    manifest = json.loads(make_bundle().manifest)
    del manifest["target"]
    raw = json.dumps(manifest).encode()  # not canonical: still accepted if signed
    with rejected("format") as info:
        verify_manifest(raw, sign(raw, key), key.public_key())
    assert "'target'" in info.value.message


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "c\\model.c", "c//model.c", "./model.c", "c/../../x", "", "a\x00b",
     MANIFEST, SIGNATURE, "x" * 300],
)  # fmt: skip
def test_build_refuses_unsafe_paths(path: str, make_bundle: Callable[..., Bundle]) -> None:
    with rejected("path"):
        make_bundle(files={**C_FILES, path: b"x"})


def test_build_refuses_a_file_that_is_also_a_directory(
    make_bundle: Callable[..., Bundle],
) -> None:
    with rejected("path"):
        make_bundle(files={"c": b"x", "c/model.c": b"y"})


def test_build_checks_the_manifest(make_bundle: Callable[..., Bundle]) -> None:
    with rejected("format") as info:
        make_bundle(runtime="int8")  # no model.int8.npz
    assert "model.int8.npz" in info.value.message
    with rejected("format"):
        make_bundle(metrics={"accuracy": float("nan")})
    with rejected("format"):
        make_bundle(lineage={"when": object()})


def test_verify_file(make_bundle: Callable[..., Bundle]) -> None:
    manifest = make_bundle().manifest_dict()
    verify_file(manifest, "c/model.h", C_FILES["c/model.h"])
    with rejected("path"):
        verify_file(manifest, "c/other.h", b"")
    with rejected("hash"):
        verify_file(manifest, "c/model.h", flip(C_FILES["c/model.h"], 0))
    with rejected("size"):
        verify_file(manifest, "c/model.h", C_FILES["c/model.h"] + b"\n")


# ---- tar safety ----------------------------------------------------------------------------


def make_tar(*entries: Entry, prefix: bytes = b"") -> bytes:
    """A tar of ``(name, type, data)`` entries (type None: a regular file)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind is None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = kind
                info.linkname = data.decode()
                tar.addfile(info)
    return buffer.getvalue()


def bundle_entries(bundle: Bundle) -> list[Entry]:
    return [
        (MANIFEST, None, bundle.manifest),
        (SIGNATURE, None, bundle.signature),
        *((path, None, data) for path, data in bundle.files.items()),
    ]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (("../evil.sh", None, b"rm -rf /"), "path"),
        (("/etc/cron.d/evil", None, b"* * * * * root sh"), "path"),
        (("c/../../evil", None, b"x"), "path"),
        (("c\\evil", None, b"x"), "path"),
        (("c/link", tarfile.SYMTYPE, b"/etc/passwd"), "path"),
        (("c/hard", tarfile.LNKTYPE, b"manifest.json"), "path"),
        (("c/dev", tarfile.CHRTYPE, b""), "path"),
        (("c/fifo", tarfile.FIFOTYPE, b""), "path"),
        (("c/model.h", None, b"a second copy"), "path"),
    ],
)
def test_unpack_refuses(entry: Entry, reason: str, make_bundle: Callable[..., Bundle]) -> None:
    data = make_tar(*bundle_entries(make_bundle()), entry)
    with rejected(reason):
        unpack_tar(data, max_bytes=MiB)
    assert os.listdir(".") == []


def test_unpack_accepts_dot_prefixes_and_directories(
    make_bundle: Callable[..., Bundle],
) -> None:
    """As ``tar -cf bundle.tar .`` writes them."""
    bundle = make_bundle()
    entries: list[Entry] = [(".", tarfile.DIRTYPE, b""), ("./c", tarfile.DIRTYPE, b"")]
    entries += [(f"./{name}", kind, data) for name, kind, data in bundle_entries(bundle)]
    assert unpack_tar(make_tar(*entries), max_bytes=MiB) == bundle


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "format"),
        (b"definitely not a tar archive" * 40, "format"),
        (gzip.compress(b"not a tar either" * 40), "format"),
        (gzip.compress(b"x" * 100)[:-4], "format"),
    ],
)
def test_unpack_refuses_garbage(data: bytes, reason: str) -> None:
    with rejected(reason):
        unpack_tar(data, max_bytes=MiB)


def test_unpack_needs_manifest_and_a_64_byte_signature(
    make_bundle: Callable[..., Bundle],
) -> None:
    bundle = make_bundle()
    entries = bundle_entries(bundle)
    with rejected("format"):
        unpack_tar(make_tar(*entries[1:]), max_bytes=MiB)
    with rejected("format"):
        unpack_tar(make_tar(entries[0], *entries[2:]), max_bytes=MiB)
    with rejected("signature"):
        unpack_tar(make_tar(entries[0], (SIGNATURE, None, b"x" * 4096)), max_bytes=MiB)


def test_unpack_refuses_data_after_the_archive(make_bundle: Callable[..., Bundle]) -> None:
    data = pack_tar(make_bundle())
    with rejected("format"):
        unpack_tar(data + b"smuggled", max_bytes=MiB)
    tail = bytearray(data)
    tail[-1] = 1
    with rejected("format"):
        unpack_tar(bytes(tail), max_bytes=MiB)


def test_size_limit(make_bundle: Callable[..., Bundle]) -> None:
    bundle = make_bundle()
    data = pack_tar(bundle)
    assert unpack_tar(data, max_bytes=bundle.size) == bundle
    with rejected("size"):
        unpack_tar(data, max_bytes=bundle.size - 1)
    with rejected("size"):
        unpack_tar(gzip.compress(data), max_bytes=bundle.size - 1)


def test_gzip_bomb_is_refused_without_inflating_it(make_bundle: Callable[..., Bundle]) -> None:
    bundle = make_bundle()
    huge = [*bundle_entries(bundle), ("c/zeros.bin", None, bytes(64 * MiB))]
    bomb = gzip.compress(make_tar(*huge), compresslevel=1)
    assert len(bomb) < MiB
    with rejected("size"):
        unpack_tar(bomb, max_bytes=MiB)


def test_too_many_entries(make_bundle: Callable[..., Bundle]) -> None:
    many = [*bundle_entries(make_bundle()), *((f"f/{i}", None, b"") for i in range(1001))]
    with rejected("size"):
        unpack_tar(make_tar(*many), max_bytes=MiB)


PROPERTY_BUNDLE = build_bundle(
    release="rel_p",
    name="pump",
    model_version=1,
    target="rpi4",
    runtime="c",
    files=C_FILES,
    signing_key=FIXED_KEY,
    created_at=0,
    self_test=[{"input": [0.5, 1.5], "expected": [3, -4], "class": "run"}],
)
PROPERTY_TAR = pack_tar(PROPERTY_BUNDLE)


def unpack_and_verify(data: bytes) -> dict[str, Any]:
    return verify_bundle(unpack_tar(data, max_bytes=MiB), FIXED_KEY.public_key())


@settings(max_examples=300, deadline=None)
@given(
    position=st.one_of(
        st.integers(0, len(PROPERTY_TAR) - 1), st.integers(0, 4 * tarfile.BLOCKSIZE)
    ),
    mask=st.integers(1, 255),
)
def test_no_byte_flip_in_a_packed_bundle_verifies(position: int, mask: int) -> None:
    data = bytearray(PROPERTY_TAR)
    data[position] ^= mask
    with pytest.raises(BundleRejected):
        unpack_and_verify(bytes(data))


def test_no_space_nul_flip_anywhere_verifies() -> None:
    """Every byte, flipped between NUL and space (which lenient tar readers ignore in
    number fields and padding), is still caught."""
    assert unpack_and_verify(PROPERTY_TAR)["release"] == "rel_p"
    survivors = []
    for position in range(len(PROPERTY_TAR)):
        data = bytearray(PROPERTY_TAR)
        data[position] ^= 0x20
        try:
            unpack_and_verify(bytes(data))
        except BundleRejected:
            continue
        survivors.append(position)
    assert survivors == []


# ---- compatibility and delta ------------------------------------------------------------------


def test_target_must_match(make_bundle: Callable[..., Bundle]) -> None:
    manifest = make_bundle().manifest_dict()
    check_compatible(manifest, target="rpi4", current_version=None, rollback=False, max_bytes=MiB)
    with rejected("target") as info:
        check_compatible(
            manifest, target="nano33ble", current_version=None, rollback=False, max_bytes=MiB
        )
    assert "'rpi4'" in info.value.message and "'nano33ble'" in info.value.message


@pytest.mark.parametrize(
    ("current", "rollback", "allowed"),
    [
        (None, False, True),
        (2, False, True),
        (3, False, True),
        (4, False, False),
        (4, True, True),
        (2, True, True),
    ],
)
def test_downgrade_only_on_rollback(
    current: int | None, rollback: bool, allowed: bool, make_bundle: Callable[..., Bundle]
) -> None:
    manifest = make_bundle(model_version=3).manifest_dict()

    def check() -> None:
        check_compatible(
            manifest, target="rpi4", current_version=current, rollback=rollback, max_bytes=MiB
        )

    if allowed:
        check()
    else:
        with rejected("downgrade"):
            check()


def test_size_rule_counts_files_and_manifest(make_bundle: Callable[..., Bundle]) -> None:
    bundle = make_bundle()
    manifest = bundle.manifest_dict()
    check_compatible(
        manifest, target="rpi4", current_version=None, rollback=False, max_bytes=bundle.size
    )
    with rejected("size"):
        check_compatible(
            manifest,
            target="rpi4",
            current_version=None,
            rollback=False,
            max_bytes=bundle.size - 1,
        )


def test_delta_reuses_unchanged_and_moved_files(make_bundle: Callable[..., Bundle]) -> None:
    old = make_bundle().manifest_dict()
    new_files = {
        "c/model.c": C_FILES["c/model.c"] + b"/* retrained */\n",  # changed
        "c/model.h": C_FILES["c/model.h"],  # shared
        "docs/README.txt": C_FILES["README.txt"],  # moved
        "c/new.h": b"#define NEW 1\n",  # new
    }
    new = make_bundle(files=new_files, model_version=4).manifest_dict()
    plan = delta(old, new)
    assert plan.fetch == ("c/model.c", "c/new.h")
    assert plan.reuse == {"c/model.h": "c/model.h", "docs/README.txt": "README.txt"}
    assert plan.bytes_total == sum(len(d) for d in new_files.values())
    assert plan.bytes_saved == len(C_FILES["c/model.h"]) + len(C_FILES["README.txt"])
    assert plan.bytes_to_fetch == len(new_files["c/model.c"]) + len(new_files["c/new.h"])

    first = delta(None, new)
    assert first.fetch == tuple(sorted(new_files)) and first.reuse == {}
    assert first.bytes_saved == 0


# ---- self-test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [2.0, 1.0, 0.0, -1.0], [0.0, 2.0, 2.0, 1.0]])
    y = np.repeat(np.arange(3), 30)
    return centers[y] + rng.normal(scale=0.5, size=(90, 4)), y


@pytest.fixture(scope="module")
def mlp(dataset: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]) -> MLPClassifier:
    x, y = dataset
    return MLPClassifier((8,), max_iter=200, random_state=0).fit(x, y)


def int8_case(model: QuantizedModel | QuantizedTrees, x: npt.NDArray[Any]) -> dict[str, Any]:
    row = x[None, :].astype(np.float32)
    if isinstance(model, QuantizedModel):
        out = model.run_int8(model.quantize_input(row))[0]
    else:
        out = model.int_scores(row)[0]
    expected = out.astype(int).tolist()
    return {"input": row[0].tolist(), "expected": expected, "class": model.predict(row)[0]}


@pytest.fixture(scope="module")
def int8_model(
    mlp: MLPClassifier, dataset: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    x, _ = dataset
    qmodel = quantize(mlp, x, labels=LABELS)
    return {"model.int8.npz": qmodel.to_bytes()}, [int8_case(qmodel, row) for row in x[::30]]


@pytest.fixture(scope="module")
def trees_model(
    dataset: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]],
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    x, y = dataset
    forest = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(x, y)
    qtrees = quantize_trees(forest, x, labels=LABELS)
    return {"model.trees.npz": qtrees.to_bytes()}, [int8_case(qtrees, row) for row in x[::30]]


@pytest.fixture(scope="module")
def onnx_model(
    mlp: MLPClassifier, dataset: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    x, _ = dataset
    data = export_onnx_float(mlp, input_shape=(4,))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rows = x[::30].astype(np.float32)
    (scores,) = session.run(["scores"], {"input": rows})
    cases = [
        {"input": row.tolist(), "expected": s.tolist(), "class": LABELS[int(np.argmax(s))]}
        for row, s in zip(rows, scores, strict=True)
    ]
    return {"model.onnx": data}, cases


RUNTIMES = ["int8", "trees", "onnx"]


@pytest.fixture
def runtime_bundle(
    request: pytest.FixtureRequest, make_bundle: Callable[..., Bundle]
) -> MakeRuntimeBundle:
    def factory(
        runtime: str, change: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        files, cases = request.getfixturevalue(f"{runtime}_model")
        cases = json.loads(json.dumps(cases))
        if change is not None:
            change(cases)
        bundle = make_bundle(runtime=runtime, files=files, self_test=cases)
        return bundle.manifest_dict(), dict(bundle.files)

    return factory


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_self_test_passes(
    runtime: str,
    runtime_bundle: MakeRuntimeBundle,
    key: Ed25519PrivateKey,
) -> None:
    manifest, files = runtime_bundle(runtime)
    assert len(manifest["self_test"]) == 3
    assert {case["class"] for case in manifest["self_test"]} <= set(LABELS)
    run_self_test(manifest, files)


def nudge_expected(cases: list[dict[str, Any]]) -> None:
    value = cases[1]["expected"][0]
    cases[1]["expected"][0] = value + (1 if isinstance(value, int) else 1e-3)


def wrong_class(cases: list[dict[str, Any]]) -> None:
    cases[2]["class"] = next(label for label in LABELS if label != cases[2]["class"])


def wrong_length(cases: list[dict[str, Any]]) -> None:
    cases[0]["expected"] = cases[0]["expected"][:-1]


def wrong_input(cases: list[dict[str, Any]]) -> None:
    cases[0]["input"] = [1.0, 2.0]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("change", "case"),
    [(nudge_expected, 1), (wrong_class, 2), (wrong_length, 0), (wrong_input, 0)],
)
def test_self_test_fails(
    runtime: str,
    change: Callable[[list[dict[str, Any]]], None],
    case: int,
    runtime_bundle: MakeRuntimeBundle,
) -> None:
    manifest, files = runtime_bundle(runtime, change)
    with rejected("self-test") as info:
        run_self_test(manifest, files)
    assert info.value.details["case"] == case
    assert f"case {case + 1} of 3" in info.value.message


def test_onnx_tolerance(runtime_bundle: MakeRuntimeBundle) -> None:
    def within(cases: list[dict[str, Any]]) -> None:
        cases[0]["expected"][0] += 5e-5

    manifest, files = runtime_bundle("onnx", within)
    run_self_test(manifest, files)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_self_test_fails_on_a_missing_or_broken_model(
    runtime: str, runtime_bundle: MakeRuntimeBundle
) -> None:
    manifest, files = runtime_bundle(runtime)
    with rejected("self-test"):
        run_self_test(manifest, {})
    broken = {path: data[: len(data) // 2] for path, data in files.items()}
    with rejected("self-test"):
        run_self_test(manifest, broken)


def test_self_test_checks_the_labels(
    runtime_bundle: MakeRuntimeBundle,
) -> None:
    manifest, files = runtime_bundle("int8")
    with rejected("self-test") as info:
        run_self_test({**manifest, "labels": ["a", "b", "c"]}, files)
    assert "labels" in info.value.message


def test_self_test_of_c_bundles_runs_nothing(make_bundle: Callable[..., Bundle]) -> None:
    bundle = make_bundle(self_test=[{"input": [1.0], "expected": [0], "class": "idle"}])
    run_self_test(bundle.manifest_dict(), {})


# ---- keys ---------------------------------------------------------------------------------------


def test_key_encodings_round_trip(key: Ed25519PrivateKey) -> None:
    public = load_public_key(public_key_b64(key))
    assert public_key_b64(public) == public_key_b64(key.public_key())
    assert private_key_b64(load_private_key(private_key_b64(key) + "\n")) == private_key_b64(key)
    public.verify(sign(b"m", key), b"m")


@pytest.mark.parametrize("text", ["", "not base64!", "AAAA", "A" * 44, "QUJD" * 20])
def test_garbage_keys_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailed, match=r"base64|bytes"):
        load_public_key(text)
    with pytest.raises(ValidationFailed):
        load_private_key(text)
