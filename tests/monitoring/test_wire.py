"""The compact wire form of a window (``{"packed": base64 of WindowSketch.to_bytes()}``):
accepted wherever the JSON form is, validated the same way, and decoded with bounded memory
(a zip bomb, a huge quantile span or class count is refused before it is allocated); and the
simulator's vectorised batch packer, which must give exactly what a window would."""

from __future__ import annotations

import base64
import tracemalloc
import zlib

import numpy as np
import pytest
from tests._asgi import asgi_client
from tests.agent._fake_server import LABELS, N_FEATURES
from tests.fleet._fleet import T0, FakeDevice, enrolled, register_version

from edgeloop import registry
from edgeloop.errors import ValidationFailed
from edgeloop.fleet import _releases
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.fleet._telemetry import record_telemetry
from edgeloop.monitoring import WindowSketch, build_reference, merged_windows
from edgeloop.monitoring._ingest import MAX_SKETCH_BYTES, SketchWindowIn, check_window
from edgeloop.monitoring._sketch_codec import MAGIC, Writer, pack
from edgeloop.monitoring._window_batch import BatchPacker
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.server import create_app
from edgeloop.store import DeviceTelemetry
from edgeloop.workspace import Workspace

H = 3_600_000
RNG = np.random.default_rng(21)
REFERENCE = build_reference(
    RNG.normal(size=(300, N_FEATURES)),
    None,
    labels=list(LABELS),
    proba=RNG.dirichlet([1, 1, 1], 300),
)
_WINDOW_CODE = 7


def _window(n: int = 40) -> WindowSketch:
    return REFERENCE.window(RNG.normal(size=(n, N_FEATURES)), RNG.dirichlet([1, 1, 1], n))


def _bomb(inflated: int) -> bytes:
    """Window bytes whose body is ``inflated`` zero bytes (about a thousandth of that)."""
    stream = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [stream.compress(chunk) for _ in range(inflated >> 20)]
    parts.append(stream.flush())
    return MAGIC + bytes([1, _WINDOW_CODE]) + b"".join(parts)


def _check(sketch: object) -> None:
    check_window(SketchWindowIn("pump", 1, "device:d", T0, T0 + H, sketch, {}))  # type: ignore[arg-type]


# ---- bounded decoding ----------------------------------------------------------------------


def test_a_zip_bomb_is_refused_quickly_without_inflating_it() -> None:
    bomb = _bomb(64 << 20)
    assert len(bomb) < 80_000  # a few tens of KB standing for 64 MiB
    small = _bomb(8 << 20)
    assert len(small) < 10_000
    tracemalloc.start()
    with pytest.raises(ValidationFailed, match="inflate to more than 1048576 bytes"):
        WindowSketch.from_bytes(small, max_bytes=1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 3 << 20  # never the 8 MiB the stream stands for
    # through ingest, with its limit (MAX_SKETCH_BYTES), in the compact wire form
    tracemalloc.start()
    with pytest.raises(ValidationFailed, match="inflate to more than") as caught:
        _check({"packed": base64.b64encode(bomb).decode()})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert caught.value.details["field"] == "sketch"
    assert peak < 2 * MAX_SKETCH_BYTES + (4 << 20)  # bounded by the limit, not the 64 MiB


def test_left_over_and_truncated_bytes_are_refused() -> None:
    data = _window().to_bytes()
    with pytest.raises(ValidationFailed, match="left over"):
        WindowSketch.from_bytes(data + b"\x00junk")
    with pytest.raises(ValidationFailed, match="truncated"):
        WindowSketch.from_bytes(data[:-6])
    assert WindowSketch.from_bytes(data, max_bytes=len(zlib.decompress(data[6:]))) is not None
    with pytest.raises(ValidationFailed, match="inflate to more than"):
        WindowSketch.from_bytes(data, max_bytes=len(zlib.decompress(data[6:])) - 1)


def _crafted(write_feature: object, *, classes: int | None = None) -> bytes:
    w = Writer()
    w.u64(1)
    w.u64(1)
    w.text("f0")
    write_feature(w)  # type: ignore[operator]
    if classes is None:
        w.u8(0)
    else:
        w.u8(1)
        w.u64(classes)
        w.ints(np.zeros(3, np.int64))
        w.floats(np.zeros(3))
    return pack(_WINDOW_CODE, w.getvalue())


def _feature(w: Writer, *, max_buckets: int = 256, gap: int = 1) -> None:
    w.u64(1)
    w.u64(0)
    for x in (0.5, 0.5, 0.5, 0.0):
        w.f64(x)
    w.floats(np.array([0.0, 1.0]))
    w.ints(np.array([0, 1, 0]))
    w.f64(0.02)
    w.u64(max_buckets)
    w.u64(0)
    w.i64(0)  # positive store: first index, gaps, counts
    w.ints(np.array([gap]))
    w.ints(np.array([1, 1]))
    w.i64(0)
    w.ints(np.zeros(0, np.int64))
    w.ints(np.zeros(0, np.int64))


def test_small_bytes_cannot_ask_for_big_arrays() -> None:
    assert WindowSketch.from_bytes(_crafted(_feature)).count == 1
    with pytest.raises(ValidationFailed, match="spans more than max_buckets"):
        WindowSketch.from_bytes(_crafted(lambda w: _feature(w, gap=1 << 40)))
    with pytest.raises(ValidationFailed, match="max_buckets is 1099511627776; at most 4096"):
        WindowSketch.from_bytes(_crafted(lambda w: _feature(w, max_buckets=1 << 40)))
    with pytest.raises(ValidationFailed, match="needs 1099511627776 counts"):
        WindowSketch.from_bytes(_crafted(_feature, classes=1 << 40))


# ---- the wire: REST and telemetry ----------------------------------------------------------


def _version(ws: Workspace) -> int:
    version = register_version(ws, "pump", seed=1)
    registry.attach_files(ws, "pump", version, {REFERENCE_PATH: REFERENCE.to_json()})
    return version


def test_rest_takes_the_packed_form_like_the_json_form(make_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    version = _version(ws)
    client = asgi_client(create_app(workspace=ws, auth=False))
    window = _window()
    body = {
        "model": "pump",
        "model_version": version,
        "source": "endpoint:api",
        "window_start": T0,
        "window_end": T0 + H,
        "sketch": window.to_packed(),
    }
    assert client.post("/api/v1/monitoring/windows", json=body).json() == {"stored": True}
    as_json = {**body, "sketch": window.to_dict()}  # the same window: already stored
    assert client.post("/api/v1/monitoring/windows", json=as_json).json() == {"stored": False}
    got = merged_windows(ws, "pump", version, start_ms=T0, end_ms=T0 + H, window_ms=H)
    assert got[0].sketch.almost_equal(window)

    def refused(sketch: object) -> str:
        answer = client.post("/api/v1/monitoring/windows", json={**body, "sketch": sketch})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["field"] == "sketch"
        return str(answer.json()["error"]["message"])

    assert "not valid base64" in refused({"packed": "not base64!"})
    assert "alone" in refused({**window.to_packed(), "type": "window_sketch"})
    assert "base64" in refused({"packed": 17})
    assert "bad magic" in refused({"packed": base64.b64encode(b"nonsense bytes").decode()})
    other = build_reference(RNG.normal(size=(100, 2)), None, labels=list(LABELS))
    unlike = other.window(RNG.normal(size=(5, 2)))
    later = {"window_start": T0 + H, "window_end": T0 + 2 * H}
    messages = []
    for sketch in (unlike.to_dict(), unlike.to_packed()):
        answer = client.post("/api/v1/monitoring/windows", json={**body, **later, "sketch": sketch})
        assert answer.status_code == 400
        messages.append(answer.json()["error"])
    assert messages[0] == messages[1]  # the same layout check, the same message
    client.close()


def test_device_telemetry_takes_the_packed_form(make_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    version = _version(ws)
    release = _releases.create_release(ws, "pump", version, "rpi4")
    device = enrolled(ws, FakeDevice("dev-1", site="plant-3"))

    def report(sketches: object, start: int) -> TelemetryReport:
        return TelemetryReport.model_validate(
            {
                "window_start": start,
                "window_end": start + H,
                "release": release.id,
                "model_version": version,
                "inference_count": 40,
                "sketches": sketches,
            }
        )

    window = _window()
    assert record_telemetry(ws, device.id, report(window.to_packed(), T0), now=T0 + H)
    merged = merged_windows(ws, "pump", version, start_ms=T0, end_ms=T0 + H, window_ms=H)
    assert merged[0].sketch.almost_equal(window) and merged[0].sources == 1
    corrupt = {"packed": base64.b64encode(window.to_bytes()[:-9]).decode()}
    with pytest.raises(ValidationFailed, match="sketches") as caught:
        record_telemetry(ws, device.id, report(corrupt, T0 + H), now=T0 + 2 * H)
    assert caught.value.details["field"].startswith("sketches")
    with ws.db.read() as s:  # nothing of the refused window was written
        assert s.query(DeviceTelemetry).filter(DeviceTelemetry.window_start == T0 + H).count() == 0


# ---- the simulator's batch packer ----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 100, 700])
def test_the_batch_packer_gives_what_a_window_gives(n: int) -> None:
    x = RNG.normal(size=(n, N_FEATURES)) * 3
    x[:, 1] = 0.0  # zeros go to the zero count
    x[:, 2] = np.exp(RNG.uniform(-200, 200, n)) * RNG.choice([-1, 1], n)  # folds buckets
    proba = RNG.dirichlet([1, 1, 1], n)
    packer = BatchPacker(REFERENCE.new_window())
    fast = WindowSketch.from_bytes(packer.pack(x, proba))
    assert fast == REFERENCE.window(x, proba)
    without = WindowSketch.from_bytes(packer.pack(x, None))
    assert without.prediction is not None and without.prediction.count == 0


def test_the_batch_packer_falls_back_to_the_window_for_nan() -> None:
    x = RNG.normal(size=(20, N_FEATURES))
    x[3, 0] = np.nan
    proba = RNG.dirichlet([1, 1, 1], 20)
    packed = BatchPacker(REFERENCE.new_window()).pack(x, proba)
    assert packed == REFERENCE.window(x, proba).to_bytes()


def test_the_batch_packer_counts_wide_batches_per_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeloop.monitoring._window_batch as batch

    monkeypatch.setattr(batch, "_MAX_COMPARISONS", 0)  # the per-feature searchsorted path
    x = RNG.normal(size=(50, N_FEATURES))
    proba = RNG.dirichlet([1, 1, 1], 50)
    fast = WindowSketch.from_bytes(BatchPacker(REFERENCE.new_window()).pack(x, proba))
    assert fast == REFERENCE.window(x, proba)
