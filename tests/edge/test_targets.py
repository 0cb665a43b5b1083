"""The target catalog: built-in boards with the published figures, user files that extend and
override it, errors that name the file, target and field, and the ``targets`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edgeloop.cli._edge import targets_app
from edgeloop.edge.targets import (
    DEFAULT_CATALOG_FILE,
    FEATURE_OPS,
    MODEL_OPS,
    REQUIRED_OPS,
    get_target,
    load_catalog,
)
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.train import FeaturePipeline, FlattenBlock, SpectralBlock

M4F = ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")

# id: (core, clock MHz, flash kB, RAM kB, deploy)
BUILT_IN = {
    "nano33ble": ("cortex-m4f", 64, 1024, 256, "c"),
    "sparkfun-edge2": ("cortex-m4f", 48, 1024, 384, "c"),
    "esp-eye": ("xtensa-lx6", 240, 4096, 520, "c"),
    "himax-we-i": ("arc-em9d", 400, 2048, 2048, "c"),
    "cortex-m4f": ("cortex-m4f", 80, 1024, 128, "c"),
    "cortex-m7": ("cortex-m7", 216, 1024, 320, "c"),
    "cortex-m0plus": ("cortex-m0plus", 48, 256, 32, "c"),
    "rpi4": ("cortex-a72", 1500, None, None, "onnx"),
    "server": ("x86-64", 3000, None, None, "onnx"),
}


def test_built_in_catalog_has_the_boards_with_their_figures() -> None:
    catalog = load_catalog()
    assert set(catalog) == set(BUILT_IN)
    for target_id, (core, clock, flash_kb, ram_kb, deploy) in BUILT_IN.items():
        t = catalog[target_id]
        assert (t.id, t.core, t.clock_mhz, t.deploy) == (target_id, core, clock, deploy)
        if flash_kb is not None:
            assert (t.flash_kb, t.ram_kb) == (flash_kb, ram_kb)
        assert 0 <= t.reserved_flash_kb < t.flash_kb and 0 <= t.reserved_ram_kb < t.ram_kb
        assert t.flash_limit_bytes == (t.flash_kb - t.reserved_flash_kb) * 1024
        assert t.ram_limit_bytes == (t.ram_kb - t.reserved_ram_kb) * 1024
        if deploy == "c":
            assert set(REQUIRED_OPS) <= set(t.cycles)
            assert all(c > 0 for c in t.cycles.values())
            assert t.gcc_flags
    assert catalog["nano33ble"].name == "Arduino Nano 33 BLE Sense"
    assert catalog["nano33ble"].gcc_flags == M4F
    assert catalog["nano33ble"].simd == "dsp" and catalog["nano33ble"].fpu
    assert catalog["cortex-m0plus"].gcc_flags == ("-mcpu=cortex-m0plus", "-mfloat-abi=soft")
    assert not catalog["cortex-m0plus"].fpu
    assert catalog["cortex-m7"].gcc_flags[0] == "-mcpu=cortex-m7"
    # no compiler for Xtensa or ARC here: the Cortex-M4F build stands in, and says so
    for proxied in ("esp-eye", "himax-we-i"):
        assert catalog[proxied].gcc_flags == M4F
        assert "Cortex-M4F" in catalog[proxied].compiler_proxy
    assert not catalog["nano33ble"].compiler_proxy
    assert catalog["server"].onnx_factor == 1.0 and catalog["rpi4"].onnx_factor > 1.0


def test_cycle_costs_are_ordered_as_the_cores_are() -> None:
    m0, m4, m7 = (get_target(t) for t in ("cortex-m0plus", "cortex-m4f", "cortex-m7"))
    for op in REQUIRED_OPS:
        assert m7.cycles[op] <= m4.cycles[op] <= m0.cycles[op], op
    assert m0.cycles["muls"] >= 10 * m4.cycles["muls"]  # soft float on the M0+
    assert 8 <= m4.cycles["mac"] <= 10  # plain C, calibrated on QEMU; SMLAD would be 0.5-1
    assert m4.cycles["divs"] == m4.cycles["sqrts"] == 14  # VDIV/VSQRT.F32


def test_every_c_target_prices_what_models_and_feature_blocks_count() -> None:
    pipeline = FeaturePipeline(blocks=(FlattenBlock(), SpectralBlock(100.0)), axes=("x", "y"))
    counted = set(pipeline.operation_counts(256))
    assert counted == set(FEATURE_OPS)
    assert set(MODEL_OPS).isdisjoint(counted)
    for target in load_catalog().values():
        if target.deploy == "c":
            assert counted | set(MODEL_OPS) <= set(target.cycles), target.id


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"no target 'uno'.*nano33ble.*server") as info:
        get_target("uno")
    assert "rpi4" in info.value.details["known"]


def test_a_user_file_adds_targets_and_overrides_fields(tmp_path: Path) -> None:
    extra = tmp_path / "boards.yaml"
    extra.write_text(
        """
cycle_tables:
  cortex-m4f:
    mac: 0.75            # CMSIS-NN: affects every target using the table
targets:
  nano33ble:
    reserved_ram_kb: 32
    cycles: {requant: 18}
  my-board:
    name: My board
    core: cortex-m4f
    clock_mhz: 120
    flash_kb: 2048
    ram_kb: 640
    fpu: true
    deploy: c
    gcc_flags: [-mcpu=cortex-m4, -mfpu=fpv4-sp-d16, -mfloat-abi=hard]
    cycles: cortex-m4f
  edge-box:
    name: Edge box
    core: cortex-a53
    clock_mhz: 1200
    flash_kb: 4194304
    ram_kb: 1048576
    fpu: true
    deploy: onnx
    cycles: {}
    onnx_factor: 12
"""
    )
    catalog = load_catalog(extra)
    assert {"my-board", "edge-box"} < set(catalog) and set(BUILT_IN) < set(catalog)
    nano = catalog["nano33ble"]
    assert nano.reserved_ram_kb == 32 and nano.ram_kb == 256  # other fields kept
    assert nano.cycles["requant"] == 18 and nano.cycles["mac"] == 0.75
    assert nano.cycles["quantize"] == get_target("nano33ble").cycles["quantize"]
    assert catalog["sparkfun-edge2"].cycles["mac"] == 0.75
    assert (
        catalog["my-board"].clock_mhz == 120 and catalog["my-board"].ram_limit_bytes == 640 * 1024
    )
    assert catalog["edge-box"].onnx_factor == 12.0
    assert get_target("nano33ble").reserved_ram_kb == 64  # the built-ins are not modified


def test_edgeloop_targets_yaml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path  # the autouse fixture runs every test in tmp_path
    DEFAULT_CATALOG_FILE.write_text("targets:\n  cortex-m7:\n    clock_mhz: 480\n")
    assert get_target("cortex-m7").clock_mhz == 480
    assert load_catalog(None)["cortex-m7"].clock_mhz == 480


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets: [1, 2", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("boards: {}", "unknown top-level key"),
        (
            "targets:\n  nano33ble:\n    ram_kb: lots",
            r"target 'nano33ble': field 'ram_kb'.*integer",
        ),
        ("targets:\n  nano33ble:\n    ram_kb: true", r"'nano33ble': field 'ram_kb'"),
        ("targets:\n  nano33ble:\n    clock_mhz: 0", r"'nano33ble': field 'clock_mhz'.*> 0"),
        ("targets:\n  nano33ble:\n    deploy: wasm", r"'nano33ble': field 'deploy'.*c, onnx"),
        ("targets:\n  nano33ble:\n    fpu: maybe", r"'nano33ble': field 'fpu'"),
        ("targets:\n  nano33ble:\n    colour: red", r"'nano33ble': field 'colour'.*not a target"),
        ("targets:\n  nano33ble:\n    reserved_ram_kb: 300", r"field 'reserved_ram_kb'.*below"),
        ("targets:\n  nano33ble:\n    cycles: {mac: -1}", r"'nano33ble': field 'cycles.mac'"),
        ("targets:\n  nano33ble:\n    cycles: fast-core", r"field 'cycles'.*no cycle table"),
        (
            "targets:\n  nano33ble:\n    gcc_flags: [-fplugin=evil.so]",
            r"'nano33ble': field 'gcc_flags'.*-m",
        ),
        ("targets:\n  Bad Id:\n    name: x", r"target 'Bad Id': field 'id'"),
        ("targets:\n  new:\n    name: New", r"target 'new': field 'core' is required"),
        (
            "targets:\n  new:\n    {name: N, core: c, clock_mhz: 1, flash_kb: 1, ram_kb: 1,"
            " fpu: false, deploy: c, gcc_flags: [-mcpu=cortex-m0], cycles: {mac: 1}}",
            r"target 'new': field 'cycles' lacks the cost of requant",
        ),
        (
            "targets:\n  new:\n    {name: N, core: c, clock_mhz: 1, flash_kb: 1, ram_kb: 1,"
            " fpu: false, deploy: c, cycles: cortex-m4f}",
            r"target 'new': field 'gcc_flags' is required",
        ),
    ],
)
def test_bad_catalog_files_name_the_file_target_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text(text)
    with pytest.raises(ValidationFailed, match=message) as info:
        load_catalog(extra)
    assert str(extra) in info.value.message


def test_a_missing_catalog_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="cannot read target catalog"):
        load_catalog(tmp_path / "nope.yaml")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(targets_app, name="targets")
    return app


def test_targets_list_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(_cli(), ["targets", "list"])
    assert listed.exit_code == 0, listed.output
    assert "nano33ble" in listed.output and "256 kB" in listed.output
    data = json.loads(runner.invoke(_cli(), ["targets", "list", "--json"]).output)
    assert {d["id"] for d in data} == set(BUILT_IN)
    shown = runner.invoke(_cli(), ["targets", "show", "esp-eye"])
    assert shown.exit_code == 0, shown.output
    assert "fft_butterflies" in shown.output and "Cortex-M4F" in shown.output
    one = json.loads(runner.invoke(_cli(), ["targets", "show", "nano33ble", "--json"]).output)
    assert one["ram_kb"] == 256 and one["cycles"]["mac"] == get_target("nano33ble").cycles["mac"]
    extra = tmp_path / "more.yaml"
    extra.write_text("targets:\n  nano33ble:\n    clock_mhz: 128\n")
    one = json.loads(
        runner.invoke(
            _cli(), ["targets", "show", "nano33ble", "--file", str(extra), "--json"]
        ).output
    )
    assert one["clock_mhz"] == 128
    missing = runner.invoke(_cli(), ["targets", "show", "uno"])
    assert isinstance(missing.exception, NotFound)
