"""Footprints: flash and RAM from compiling for the core, latency from counted operations and
cycle costs, ONNX latency measured and scaled, the verdict, and storage on a model version
(SQLite and PostgreSQL), read back by ``edgeloop models footprint``."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from onnx import TensorProto, helper, numpy_helper
from sqlalchemy import select
from typer.testing import CliRunner

from edgeloop import registry, tracking
from edgeloop.cli._edge import footprint
from edgeloop.client import LocalBackend, set_backend
from edgeloop.edge._footprint import (
    METHOD_GCC,
    METHOD_ONNX,
    METHOD_PROXY,
    Footprint,
    LimitExceeded,
    estimate_latency,
    exception_frame_bytes,
    footprint_table,
    measure_c,
    measure_onnx,
)
from edgeloop.edge._service import get_footprints, set_footprints
from edgeloop.edge.runtime import Dense, QuantizedModel, QuantParams
from edgeloop.edge.targets import get_target
from edgeloop.errors import BackendUnavailable, NotFound, PermissionDenied, ValidationFailed
from edgeloop.store import ModelFootprint, ModelVersion
from edgeloop.train import FeaturePipeline, FlattenBlock, SpectralBlock
from edgeloop.workspace import Principal, Workspace

compiler = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc (make services)"
)


def c_model(table_bytes: int, arena_bytes: int, *, seed: int = 0) -> dict[str, bytes]:
    """A hand-written int8 "model": a const weight table of ``table_bytes`` (flash), a static
    arena of ``arena_bytes`` (RAM), a quantize step calling floorf and a dot product."""
    weights = np.random.default_rng(seed).integers(-128, 128, table_bytes)
    table = ",".join(map(str, weights))
    header = b"#include <stdint.h>\nint32_t model_predict(const float *x, int n);\n"
    source = f"""#include <math.h>
#include "model.h"
static const int8_t weights[{table_bytes}] = {{{table}}};
static int8_t arena[{arena_bytes}];

static int32_t dot(const int8_t *a, int n) {{
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += (int32_t)a[i] * weights[i % {table_bytes}];
    return acc;
}}

int32_t model_predict(const float *x, int n) {{
    for (int i = 0; i < n && i < {arena_bytes}; i++) arena[i] = (int8_t)floorf(x[i] * 4.0f);
    return dot(arena, {min(arena_bytes, table_bytes)});
}}
"""
    return {"model.c": source.encode(), "model.h": header}


NO_OPS: dict[str, int] = {}


# ---- latency ----------------------------------------------------------------------------


def test_latency_is_operations_times_cycles_over_the_clock() -> None:
    board = dataclasses.replace(
        get_target("cortex-m4f"), clock_mhz=100.0, cycles={"mac": 2.0, "requant": 10.0}
    )
    ms, cycles = estimate_latency({"mac": 1000, "requant": 10}, board)
    assert cycles == {"mac": 2000.0, "requant": 100.0}
    assert ms == pytest.approx(2100 / 100e6 * 1e3)  # 21 µs
    nano = get_target("nano33ble")
    ops = {"mac": 64_000, "requant": 200, "compare": 100, "quantize": 64}
    expected = sum(n * nano.cycles[op] for op, n in ops.items()) / 64e6 * 1e3
    assert estimate_latency(ops, nano)[0] == pytest.approx(expected)
    assert estimate_latency(ops, get_target("cortex-m7"))[0] < estimate_latency(ops, nano)[0]


def test_a_model_and_its_feature_blocks_are_priced_together() -> None:
    model = QuantizedModel(
        input_shape=(6,),
        mean=np.zeros(6, np.float32),
        inv_std=np.ones(6, np.float32),
        input=QuantParams(0.1, 0),
        layers=(
            Dense(
                weights=np.ones((2, 6), np.int8),
                bias=np.zeros(2, np.int32),
                multiplier=np.full(2, 1 << 30, np.int32),
                shift=np.zeros(2, np.int32),
                weight_scales=np.ones(2, np.float32),
                output=QuantParams(0.1, 0),
            ),
        ),
        labels=("a", "b"),
    )
    features = FeaturePipeline(blocks=(FlattenBlock(), SpectralBlock(100.0)), axes=("x",))
    ops = {**model.operations(), **features.operation_counts(128)}
    m0, m4 = get_target("cortex-m0plus"), get_target("cortex-m4f")
    ms_m0, _ = estimate_latency(ops, m0)
    ms_m4, per_op = estimate_latency(ops, m4)
    assert per_op["mac"] == 12 * m4.cycles["mac"]
    assert per_op["fft_butterflies"] > 0
    assert ms_m0 > 10 * ms_m4  # soft float on the M0+


def test_an_unknown_operation_is_an_error_not_free() -> None:
    with pytest.raises(ValidationFailed, match=r"no cycle cost for operation\(s\) conv3d_mac"):
        estimate_latency({"mac": 1, "conv3d_mac": 5}, get_target("nano33ble"))
    with pytest.raises(ValidationFailed, match="conv3d_mac") as info:
        measure_c(
            c_model(16, 16), get_target("nano33ble"), operations={"conv3d_mac": 1}, arena_bytes=16
        )
    assert info.value.details["unknown_operations"] == ["conv3d_mac"]
    with pytest.raises(ValidationFailed, match="integer >= 0"):
        estimate_latency({"mac": -1}, get_target("nano33ble"))


# ---- measure_c -----------------------------------------------------------------------------


@compiler
@pytest.mark.slow
def test_flash_grows_with_the_weight_table_and_ram_holds_the_arena() -> None:
    nano = get_target("nano33ble")
    small = measure_c(c_model(1000, 512), nano, operations=NO_OPS, arena_bytes=512)
    large = measure_c(c_model(9000, 512), nano, operations=NO_OPS, arena_bytes=512)
    assert small.method == METHOD_GCC and not small.note
    assert 8000 <= large.flash_bytes - small.flash_bytes <= 8000 + 16
    assert small.flash_bytes == small.parts["text"] + small.parts["data"]
    assert small.flash_bytes >= 1000
    parts = small.parts
    assert parts["arena"] == 512 and parts["bss"] >= 512  # static: in bss, counted once
    assert small.ram_bytes == parts["data"] + parts["bss"] + parts["stack"]
    assert 512 < small.ram_bytes < 512 + 1024
    assert parts["stack"] >= exception_frame_bytes(nano) == 104
    assert small.details["stack_chain"][0] == "model_predict"
    assert "floorf" in small.details["library_calls"]
    assert small.details["buffers_in_bss"] is True
    bigger_arena = measure_c(c_model(1000, 4096), nano, operations=NO_OPS, arena_bytes=4096)
    assert bigger_arena.ram_bytes - small.ram_bytes == pytest.approx(4096 - 512, abs=16)
    assert small.fits and small.verdict == "fits" and small.exceeded == ()


@compiler
@pytest.mark.slow
def test_buffers_the_application_provides_are_added() -> None:
    fp = measure_c(
        c_model(64, 32),
        get_target("nano33ble"),
        operations=NO_OPS,
        arena_bytes=32,
        feature_buffer_bytes=2048,
    )
    assert fp.details["buffers_in_bss"] is False
    assert fp.ram_bytes == fp.parts["data"] + 32 + 2048 + fp.parts["stack"]


@compiler
@pytest.mark.slow
def test_too_big_for_a_cortex_m0plus_names_the_limit() -> None:
    m0 = get_target("cortex-m0plus")  # 256 kB flash - 32 reserved, 32 kB RAM - 8 reserved
    ops = {"mac": 1000, "quantize": 64}
    fits = measure_c(c_model(8 * 1024, 1024), m0, operations=ops, arena_bytes=1024)
    assert fits.fits and fits.method == METHOD_GCC
    assert fits.parts["stack"] >= exception_frame_bytes(m0) == 32
    assert any(c.startswith("__aeabi_") for c in fits.details["library_calls"])  # soft float
    assert fits.latency_ms == pytest.approx(
        (1000 * m0.cycles["mac"] + 64 * m0.cycles["quantize"]) / 48e3
    )

    table = measure_c(c_model(230 * 1024, 1024), m0, operations=ops, arena_bytes=1024)
    assert not table.fits
    assert [e.resource for e in table.exceeded] == ["flash"]
    assert table.exceeded[0].available_bytes == 224 * 1024
    assert table.exceeded[0].over_bytes == table.flash_bytes - 224 * 1024 > 0
    assert table.verdict.startswith("does not fit: flash 230.")
    assert table.verdict.endswith("> 224 kB")

    arena = measure_c(c_model(1024, 30 * 1024), m0, operations=ops, arena_bytes=30 * 1024)
    assert [e.resource for e in arena.exceeded] == ["ram"]
    assert arena.verdict.startswith("does not fit: RAM 30.") and "> 24 kB" in arena.verdict
    # the same model fits a Nano 33 BLE Sense
    assert measure_c(
        c_model(1024, 30 * 1024), get_target("nano33ble"), operations=ops, arena_bytes=30 * 1024
    ).fits


@compiler
@pytest.mark.slow
def test_cores_without_a_compiler_use_the_cortex_m4f_build_and_say_so() -> None:
    files, ops = c_model(2048, 256), {"mac": 2048, "quantize": 256}
    m4 = measure_c(files, get_target("nano33ble"), operations=ops, arena_bytes=256)
    for board in ("esp-eye", "himax-we-i"):
        target = get_target(board)
        fp = measure_c(files, target, operations=ops, arena_bytes=256)
        assert fp.method == METHOD_PROXY and "Cortex-M4F" in fp.note
        assert (fp.flash_bytes, fp.ram_bytes) == (m4.flash_bytes, m4.ram_bytes)
        assert fp.latency_ms == pytest.approx(estimate_latency(ops, target)[0])
        (row,) = footprint_table([fp])
        assert row["method"] == METHOD_PROXY and row["note"].startswith("proxy build:")


@compiler
@pytest.mark.slow
def test_compile_errors_and_bad_inputs_are_validation_errors() -> None:
    nano = get_target("nano33ble")
    with pytest.raises(
        ValidationFailed, match=r"compiling bad.c for nano33ble .*failed:\nbad.c:1:"
    ):
        measure_c({"bad.c": b"int f( {"}, nano, operations=NO_OPS, arena_bytes=0)
    with pytest.raises(ValidationFailed, match=r"no \.c file"):
        measure_c({"model.h": b""}, nano, operations=NO_OPS, arena_bytes=0)
    with pytest.raises(ValidationFailed, match="relative path"):
        measure_c({"../evil.c": b""}, nano, operations=NO_OPS, arena_bytes=0)
    with pytest.raises(ValidationFailed, match="arena_bytes"):
        measure_c(c_model(8, 8), nano, operations=NO_OPS, arena_bytes=-1)
    with pytest.raises(ValidationFailed, match="deploys ONNX"):
        measure_c(c_model(8, 8), get_target("rpi4"), operations=NO_OPS, arena_bytes=8)


def test_a_missing_compiler_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="gcc-arm-none-eabi"):
        measure_c(c_model(8, 8), get_target("nano33ble"), operations=NO_OPS, arena_bytes=8)


# ---- measure_onnx --------------------------------------------------------------------------


def tiny_onnx(n_in: int = 16, hidden: int = 32, n_out: int = 4) -> bytes:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((n_in, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, n_out)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="dense1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], name="dense2"),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_onnx_latency_is_measured_here_and_scaled_by_the_target_factor() -> None:
    data = tiny_onnx()
    server = measure_onnx(data, get_target("server"), input_shape=(16,), runs=30)
    assert server.method == METHOD_ONNX and server.fits
    assert server.flash_bytes == len(data) == server.parts["model"]
    # largest node: the ReLU holds its input and output, 32 float32 each
    assert server.parts["activations"] == 2 * 32 * 4
    assert server.details["largest_node"] == "relu"
    assert server.ram_bytes == len(data) + 256
    assert server.latency_ms == pytest.approx(server.details["measured_median_ms"])
    assert 0 < server.latency_ms < 100
    rpi = measure_onnx(data, get_target("rpi4"), input_shape=(16,), runs=30)
    assert rpi.latency_ms == pytest.approx(rpi.details["measured_median_ms"] * 8.0)
    assert rpi.details["input_shape"] == [1, 16]
    tight = dataclasses.replace(get_target("rpi4"), ram_kb=2, reserved_ram_kb=0)
    small = measure_onnx(data, tight, input_shape=(16,), runs=5)
    assert [e.resource for e in small.exceeded] == ["ram"]
    assert small.verdict.endswith("> 2 kB")


def test_onnx_errors() -> None:
    with pytest.raises(ValidationFailed, match="not a loadable ONNX model"):
        measure_onnx(b"not onnx", get_target("server"), input_shape=(16,))
    with pytest.raises(ValidationFailed, match="does not run on input"):
        measure_onnx(tiny_onnx(), get_target("server"), input_shape=(15,), runs=2)
    with pytest.raises(ValidationFailed, match="runs"):
        measure_onnx(tiny_onnx(), get_target("server"), input_shape=(16,), runs=0)


# ---- the footprint record --------------------------------------------------------------------


def make_footprint(
    target: str = "nano33ble", ram: int = 300 * 1024, **changes: object
) -> Footprint:
    t = get_target(target)
    fp = Footprint(
        target=target,
        flash_bytes=40_000,
        ram_bytes=ram,
        latency_ms=12.5,
        method=METHOD_GCC,
        flash_limit_bytes=t.flash_limit_bytes,
        ram_limit_bytes=t.ram_limit_bytes,
        parts={"text": 39_000, "data": 1000, "bss": ram - 1200, "stack": 200},
        details={"operations": {"mac": 1}},
    )
    return dataclasses.replace(fp, **changes)  # type: ignore[arg-type]


def test_verdict_exceeded_and_round_trip() -> None:
    fp = make_footprint(ram=300 * 1024)
    assert not fp.fits
    assert fp.exceeded == (LimitExceeded("ram", 300 * 1024, 192 * 1024),)
    assert fp.exceeded[0].over_bytes == 108 * 1024
    assert fp.verdict == "does not fit: RAM 300 kB > 192 kB"
    both = make_footprint(ram=300 * 1024, flash_bytes=900 * 1024)
    assert both.verdict == "does not fit: flash 900 kB > 832 kB; RAM 300 kB > 192 kB"
    data = json.loads(json.dumps(fp.to_dict()))
    assert data["fits"] is False and data["exceeded"][0]["resource"] == "ram"
    assert Footprint.from_dict(data) == fp
    with pytest.raises(ValidationFailed, match="not a footprint"):
        Footprint.from_dict({"target": "x"})
    rows = footprint_table([fp, make_footprint(ram=1000)])
    assert rows[0]["RAM"] == "300 kB / 192 kB" and rows[0]["verdict"].startswith("does not fit")
    assert rows[0]["exceeded"] == "RAM by 108 kB" and rows[1]["exceeded"] == "-"
    assert rows[1]["verdict"] == "fits" and rows[1]["latency"] == "12.50 ms"


# ---- stored on a model version (SQLite and PostgreSQL) ---------------------------------------


def registered_version(ws: Workspace, name: str = "kws") -> int:
    run = tracking.create_run(ws, "exp")
    tracking.put_artifact(ws, run.id, "model/model.c", io.BytesIO(b"int x;"))
    return registry.create_model_version(ws, name, run_id=run.id).version


def test_footprints_are_stored_per_target_and_replaced(workspace: Workspace) -> None:
    version = registered_version(workspace)
    alice = workspace.acting_as(Principal("alice", "editor"))
    stored = set_footprints(
        alice, "kws", version, [make_footprint("nano33ble"), make_footprint("cortex-m7", 1000)]
    )
    assert [r.footprint.target for r in stored] == ["cortex-m7", "nano33ble"]
    records = get_footprints(workspace, "kws", version)
    assert [(r.footprint.target, r.measured_by) for r in records] == [
        ("cortex-m7", "alice"),
        ("nano33ble", "alice"),
    ]
    assert records[1].footprint == make_footprint("nano33ble")
    assert records[1].footprint.verdict == "does not fit: RAM 300 kB > 192 kB"
    # measuring again replaces that target's footprint and keeps the others
    bob = workspace.acting_as(Principal("bob", "admin"))
    set_footprints(bob, "kws", str(version), [make_footprint("nano33ble", 1000)])
    records = get_footprints(workspace, "kws", version)
    assert [(r.footprint.target, r.measured_by, r.footprint.fits) for r in records] == [
        ("cortex-m7", "alice", True),
        ("nano33ble", "bob", True),
    ]
    assert get_footprints(workspace, "kws", registered_version(workspace)) == []


def test_storing_footprints_needs_an_editor_and_an_existing_version(workspace: Workspace) -> None:
    version = registered_version(workspace)
    viewer = workspace.acting_as(Principal("val", "viewer"))
    with pytest.raises(PermissionDenied, match="editor"):
        set_footprints(viewer, "kws", version, [make_footprint()])
    assert get_footprints(viewer, "kws", version) == []  # reading is allowed
    with pytest.raises(NotFound, match="no version 9"):
        set_footprints(workspace, "kws", 9, [make_footprint()])
    with pytest.raises(NotFound):
        get_footprints(workspace, "other", 1)
    with pytest.raises(ValidationFailed, match="version"):
        get_footprints(workspace, "kws", "latest")
    with pytest.raises(ValidationFailed, match="one footprint per target"):
        set_footprints(workspace, "kws", version, [make_footprint(), make_footprint()])
    # all or nothing: a bad item stores none of the good ones
    long_id = dataclasses.replace(make_footprint(), target="x" * 65)
    with pytest.raises(ValidationFailed):
        set_footprints(workspace, "kws", version, [make_footprint("cortex-m7"), long_id])
    assert get_footprints(workspace, "kws", version) == []


def test_footprints_go_with_their_version(workspace: Workspace) -> None:
    version = registered_version(workspace)
    set_footprints(workspace, "kws", version, [make_footprint()])
    with workspace.db.write() as s:
        s.delete(s.scalars(select(ModelVersion)).one())
    with workspace.db.read() as s:
        assert s.scalars(select(ModelFootprint)).all() == []


@compiler
@pytest.mark.slow
def test_models_footprint_command(
    make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    ws = make_workspace()
    set_backend(LocalBackend(workspace=ws))
    version = registered_version(ws)
    measured = [
        measure_c(c_model(4096, 1024), get_target(t), operations={"mac": 4096}, arena_bytes=1024)
        for t in ("nano33ble", "esp-eye")
    ]
    set_footprints(ws, "kws", version, [*measured, make_footprint("cortex-m4f", 300 * 1024)])
    app = typer.Typer()
    app.command("footprint")(footprint)
    app.command("other")(lambda: None)  # two commands: footprint stays a subcommand
    runner = CliRunner()
    result = runner.invoke(app, ["footprint", f"kws/{version}"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nano33ble" in out and "fits" in out
    assert "does not fit: RAM 300 kB > 112 kB" in out
    assert "RAM by 188 kB" in out
    assert "proxy" in out and "Cortex-M4F" in out
    assert "does not fit on cortex-m4f" in out
    data = json.loads(runner.invoke(app, ["footprint", f"models:/kws/{version}", "--json"]).output)
    assert [d["target"] for d in data] == ["cortex-m4f", "esp-eye", "nano33ble"]
    assert data[0]["fits"] is False and data[2]["fits"] is True
    assert data[1]["method"] == METHOD_PROXY and data[2]["measured_by"].startswith("local:")
    empty = runner.invoke(app, ["footprint", f"kws/{registered_version(ws)}"])
    assert empty.exit_code == 0 and "no footprints yet" in empty.output
    bad = runner.invoke(app, ["footprint", "kws"])
    assert isinstance(bad.exception, ValidationFailed)


def test_prefixed_operations_are_priced_by_their_last_part() -> None:
    target = get_target("nano33ble")
    plain, _ = estimate_latency({"adds": 1000, "mac": 10}, target)
    prefixed, cycles = estimate_latency({"features.adds": 1000, "mac": 10}, target)
    assert prefixed == plain > 0
    assert cycles["features.adds"] == 1000 * target.cycles["adds"]
    with pytest.raises(ValidationFailed, match=r"features\.nope"):
        estimate_latency({"features.nope": 1}, target)
