"""The target catalog: board profiles (core, clock, flash, RAM, FPU/SIMD, how a model is
deployed) and the cycle cost of each counted operation on the board's core.

The built-in catalog is ``targets.yaml`` next to this module (its comments justify every
default). Users extend or override it with a YAML file of the same layout,
``edgeloop-targets.yaml`` in the working directory by default::

    cycle_tables:
      my-m4:                       # a new table, or ops overriding a built-in one
        mac: 0.8                   # calibrated with CMSIS-NN kernels
    targets:
      nano33ble:                   # a built-in id: only the given fields change,
        cycles: {mac: 0.8}         # cycles op by op
      my-board:                    # a new id: every required field
        name: My board
        core: cortex-m4f
        clock_mhz: 120
        flash_kb: 2048
        ram_kb: 640
        fpu: true
        deploy: c
        gcc_flags: [-mcpu=cortex-m4, -mfpu=fpv4-sp-d16, -mfloat-abi=hard]
        cycles: cortex-m4f         # a table's name, or a mapping of op -> cycles

Top-level keys starting with ``_`` are ignored (handy for YAML anchors).

>>> get_target("nano33ble").ram_kb
256
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from edgeloop.errors import NotFound, ValidationFailed

__all__ = [
    "DEFAULT_CATALOG_FILE",
    "FEATURE_OPS",
    "MODEL_OPS",
    "REQUIRED_OPS",
    "Target",
    "get_target",
    "load_catalog",
]

DEFAULT_CATALOG_FILE = Path("edgeloop-targets.yaml")
MODEL_OPS = ("mac", "requant", "compare", "quantize")
"""Operations counted by :meth:`edgeloop.edge.runtime.QuantizedModel.operations`."""
FEATURE_OPS = ("adds", "muls", "divs", "sqrts", "logs", "compares", "fft_butterflies")
"""Operations counted by :meth:`edgeloop.train.features.FeaturePipeline.operation_counts`."""
REQUIRED_OPS = MODEL_OPS + FEATURE_OPS
"""Every ``deploy: c`` target prices all of these."""

Deploy = Literal["c", "onnx"]
_DEPLOYS: tuple[Deploy, ...] = ("c", "onnx")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FLAG = re.compile(r"^-m[a-z0-9][a-z0-9=._+-]*$")
_REQUIRED = ("name", "core", "clock_mhz", "flash_kb", "ram_kb", "fpu", "deploy", "cycles")
_OPTIONAL = (
    "simd",
    "gcc_flags",
    "compiler_proxy",
    "onnx_factor",
    "reserved_flash_kb",
    "reserved_ram_kb",
)
_FIELDS = _REQUIRED + _OPTIONAL


@dataclass(frozen=True)
class Target:
    """A board profile. Sizes are kB (1024 bytes); ``cycles`` maps an operation name to CPU
    cycles per operation; ``reserved_*_kb`` is what the board's firmware needs before a model
    gets any. ``deploy`` is ``"c"`` (generated C compiled with ``gcc_flags``) or ``"onnx"``
    (onnxruntime; latency measured here and multiplied by ``onnx_factor``). A non-empty
    ``compiler_proxy`` says why flash and RAM come from the Cortex-M4F build instead."""

    id: str
    name: str
    core: str
    clock_mhz: float
    flash_kb: int
    ram_kb: int
    fpu: bool
    deploy: Deploy
    cycles: Mapping[str, float] = field(default_factory=dict)
    simd: str = ""
    gcc_flags: tuple[str, ...] = ()
    compiler_proxy: str = ""
    onnx_factor: float = 1.0
    reserved_flash_kb: int = 0
    reserved_ram_kb: int = 0

    @property
    def flash_limit_bytes(self) -> int:
        """Flash left for the model after the firmware's reserve."""
        return (self.flash_kb - self.reserved_flash_kb) * 1024

    @property
    def ram_limit_bytes(self) -> int:
        """RAM left for the model after the firmware's reserve."""
        return (self.ram_kb - self.reserved_ram_kb) * 1024

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cycles"] = dict(self.cycles)
        data["gcc_flags"] = list(self.gcc_flags)
        return data


# ---- reading and validating catalog files -------------------------------------------------


class _Where:
    """Builds error messages that name the file, the target and the field."""

    def __init__(self, source: str, target: str | None = None) -> None:
        self.source, self.target = source, target

    def fail(self, field_name: str, message: str) -> ValidationFailed:
        where = f"{self.source}: target {self.target!r}" if self.target else self.source
        details = {"file": self.source, "target": self.target, "field": field_name}
        return ValidationFailed(f"{where}: field {field_name!r} {message}", details=details)


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            f"{source}: not valid YAML: {exc}", details={"file": source}
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed(
            f"{source}: a target catalog must be a mapping with 'targets' and optionally "
            f"'cycle_tables', got {type(data).__name__}",
            details={"file": source},
        )
    unknown = sorted(k for k in data if not str(k).startswith("_") and k not in _TOP_LEVEL)
    if unknown:
        raise ValidationFailed(
            f"{source}: unknown top-level key(s) {', '.join(map(str, unknown))}; allowed: "
            f"{', '.join(_TOP_LEVEL)} (keys starting with '_' are ignored)",
            details={"file": source},
        )
    return data


_TOP_LEVEL = ("cycle_tables", "targets")


def _cycle_table(value: object, where: _Where, field_name: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise where.fail(field_name, f"must map operation names to cycles, got {value!r}")
    table: dict[str, float] = {}
    for op, cycles in value.items():
        ok = isinstance(cycles, int | float) and not isinstance(cycles, bool)
        if not isinstance(op, str) or not ok or not math.isfinite(cycles) or cycles < 0:
            raise where.fail(
                f"{field_name}.{op}", f"must be a number of cycles >= 0, got {cycles!r}"
            )
        table[op] = float(cycles)
    return table


def _mapping(value: object, where: _Where, field_name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.fail(field_name, f"must be a mapping, got {type(value).__name__}")
    return value


def _number(where: _Where, name: str, value: object, *, integer: bool, low: float) -> Any:
    kind = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        noun = "an integer" if integer else "a number"
        raise where.fail(name, f"must be {noun}, got {value!r}")
    if value < low:
        raise where.fail(name, f"must be >= {low:g}, got {value!r}")
    return value if integer else float(value)


def _text(where: _Where, name: str, value: object, *, required: bool) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise where.fail(name, f"must be {'a non-empty' if required else 'a'} string")
    return " ".join(value.split())


def _build(
    target_id: str, fields: Mapping[str, Any], tables: Mapping[str, dict[str, float]], where: _Where
) -> Target:
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise where.fail(unknown[0], f"is not a target field; allowed: {', '.join(_FIELDS)}")
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        raise where.fail(missing[0], f"is required (missing: {', '.join(missing)})")
    deploy = fields["deploy"]
    if deploy not in _DEPLOYS:
        raise where.fail("deploy", f"must be one of {', '.join(_DEPLOYS)}, got {deploy!r}")
    cycles = fields["cycles"]
    if isinstance(cycles, str):
        if cycles not in tables:
            raise where.fail("cycles", f"names no cycle table {cycles!r}; have {sorted(tables)}")
        cycles = tables[cycles]
    cycles = _cycle_table(cycles, where, "cycles")
    flags = fields.get("gcc_flags", [])
    if not isinstance(flags, list | tuple) or not all(
        isinstance(f, str) and _FLAG.match(f) for f in flags
    ):
        raise where.fail("gcc_flags", f"must be a list of -m... options, got {flags!r}")
    if deploy == "c":
        if not flags:
            raise where.fail("gcc_flags", "is required for a deploy: c target (-mcpu=...)")
        absent = [op for op in REQUIRED_OPS if op not in cycles]
        if absent:
            raise where.fail("cycles", f"lacks the cost of {', '.join(absent)}")
    fpu = fields["fpu"]
    if not isinstance(fpu, bool):
        raise where.fail("fpu", f"must be true or false, got {fpu!r}")
    flash_kb = _number(where, "flash_kb", fields["flash_kb"], integer=True, low=1)
    ram_kb = _number(where, "ram_kb", fields["ram_kb"], integer=True, low=1)
    reserved_flash = _number(
        where, "reserved_flash_kb", fields.get("reserved_flash_kb", 0), integer=True, low=0
    )
    reserved_ram = _number(
        where, "reserved_ram_kb", fields.get("reserved_ram_kb", 0), integer=True, low=0
    )
    if reserved_flash >= flash_kb:
        raise where.fail("reserved_flash_kb", f"must be below flash_kb ({flash_kb})")
    if reserved_ram >= ram_kb:
        raise where.fail("reserved_ram_kb", f"must be below ram_kb ({ram_kb})")
    clock = _number(where, "clock_mhz", fields["clock_mhz"], integer=False, low=0)
    if clock <= 0:
        raise where.fail("clock_mhz", "must be > 0")
    factor = _number(where, "onnx_factor", fields.get("onnx_factor", 1.0), integer=False, low=0)
    if factor <= 0:
        raise where.fail("onnx_factor", "must be > 0")
    return Target(
        id=target_id,
        name=_text(where, "name", fields["name"], required=True),
        core=_text(where, "core", fields["core"], required=True),
        clock_mhz=clock,
        flash_kb=flash_kb,
        ram_kb=ram_kb,
        fpu=fpu,
        deploy=deploy,
        cycles=cycles,
        simd=_text(where, "simd", fields.get("simd", ""), required=False),
        gcc_flags=tuple(flags),
        compiler_proxy=_text(
            where, "compiler_proxy", fields.get("compiler_proxy", ""), required=False
        ),
        onnx_factor=factor,
        reserved_flash_kb=reserved_flash,
        reserved_ram_kb=reserved_ram,
    )


def _merge(
    raw: dict[str, dict[str, Any]],
    tables: dict[str, dict[str, float]],
    data: Mapping[str, Any],
    source: str,
) -> None:
    """Fold one file's ``cycle_tables`` and ``targets`` into ``tables`` and ``raw``."""
    for name, table in _mapping(data.get("cycle_tables"), _Where(source), "cycle_tables").items():
        entries = _cycle_table(table, _Where(source), f"cycle_tables.{name}")
        tables[str(name)] = {**tables.get(str(name), {}), **entries}
    for target_id, fields in _mapping(data.get("targets"), _Where(source), "targets").items():
        where = _Where(source, str(target_id))
        if not isinstance(target_id, str) or not _ID.match(target_id):
            raise where.fail(
                "id",
                "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a "
                "letter or digit",
            )
        fields = _mapping(fields, where, "targets")
        entry = dict(raw.get(target_id, {}))
        if "cycles" in fields and "cycles" in entry and isinstance(fields["cycles"], dict):
            base = entry["cycles"]
            base = (
                tables.get(base, {})
                if isinstance(base, str)
                else _cycle_table(base, where, "cycles")
            )
            fields = {**fields, "cycles": {**base, **fields["cycles"]}}
        entry.update(fields)
        entry["_source"] = source
        raw[target_id] = entry


@cache
def _builtin_text() -> str:
    return resources.files("edgeloop.edge").joinpath("targets.yaml").read_text(encoding="utf-8")


def load_catalog(extra: Path | None = None) -> dict[str, Target]:
    """The built-in targets, updated by ``extra`` (default: ``edgeloop-targets.yaml`` in the
    working directory, when present). Raises :class:`ValidationFailed` naming the file, the
    target and the field of any bad entry."""
    if extra is None and DEFAULT_CATALOG_FILE.is_file():
        extra = DEFAULT_CATALOG_FILE
    raw: dict[str, dict[str, Any]] = {}
    tables: dict[str, dict[str, float]] = {}
    builtin = "built-in targets.yaml"
    _merge(raw, tables, _read_yaml(_builtin_text(), builtin), builtin)
    if extra is not None:
        try:
            text = Path(extra).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationFailed(
                f"cannot read target catalog {extra}: {exc}", details={"file": str(extra)}
            ) from exc
        _merge(raw, tables, _read_yaml(text, str(extra)), str(extra))
    catalog: dict[str, Target] = {}
    for target_id, entry in raw.items():
        fields = {k: v for k, v in entry.items() if k != "_source"}
        catalog[target_id] = _build(target_id, fields, tables, _Where(entry["_source"], target_id))
    return dict(sorted(catalog.items()))


def get_target(target_id: str, catalog: Mapping[str, Target] | None = None) -> Target:
    """The target ``target_id`` of ``catalog`` (default: :func:`load_catalog`)."""
    catalog = load_catalog() if catalog is None else catalog
    try:
        return catalog[target_id]
    except KeyError:
        raise NotFound(
            f"no target {target_id!r}; known targets: {', '.join(sorted(catalog))}",
            details={"target": target_id, "known": sorted(catalog)},
        ) from None
