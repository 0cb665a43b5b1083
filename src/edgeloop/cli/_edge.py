"""``edgeloop targets``: the board catalog; ``edgeloop models footprint``: a version's
stored footprint on each target."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.edge._footprint import FOOTPRINT_COLUMNS, footprint_table, format_bytes
from edgeloop.edge._service import get_footprints
from edgeloop.edge.targets import Target, get_target, load_catalog
from edgeloop.errors import ValidationFailed
from edgeloop.workspace import Workspace

__all__ = ["footprint", "targets_app"]

targets_app = typer.Typer(
    help="Board targets: core, clock, flash, RAM and cycle costs.", no_args_is_help=True
)
FILE_OPTION = typer.Option(
    None,
    "--file",
    "-f",
    help="Extra catalog file that adds or overrides targets (default: edgeloop-targets.yaml "
    "in the working directory, if present).",
)


def _kb(kb: int) -> str:
    return format_bytes(kb * 1024)


@targets_app.command("list")
def list_targets(file: Path | None = FILE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List the known targets."""
    catalog = load_catalog(file)
    if as_json:
        emit_json([t.to_dict() for t in catalog.values()])
        return
    table(
        "targets",
        ["id", "name", "core", "clock", "flash", "RAM", "deploy"],
        [
            (t.id, t.name, t.core, f"{t.clock_mhz:g} MHz", _kb(t.flash_kb), _kb(t.ram_kb), t.deploy)
            for t in catalog.values()
        ],
    )


def _show(t: Target) -> None:
    reserve = "reserved for the firmware"
    rows = [
        ("name", t.name),
        ("core", t.core),
        ("clock", f"{t.clock_mhz:g} MHz"),
        ("flash", f"{_kb(t.flash_kb)} ({_kb(t.reserved_flash_kb)} {reserve})"),
        ("RAM", f"{_kb(t.ram_kb)} ({_kb(t.reserved_ram_kb)} {reserve})"),
        (
            "available",
            f"flash {_kb(t.flash_kb - t.reserved_flash_kb)}, "
            f"RAM {_kb(t.ram_kb - t.reserved_ram_kb)}",
        ),
        ("fpu", "yes" if t.fpu else "no"),
        ("simd", t.simd or "-"),
        ("deploy", t.deploy),
    ]
    if t.deploy == "c":
        rows.append(("gcc flags", " ".join(t.gcc_flags)))
    else:
        rows.append(("onnx factor", f"{t.onnx_factor:g}x this machine's onnxruntime latency"))
    if t.compiler_proxy:
        rows.append(("compiler proxy", t.compiler_proxy))
    table(t.id, ["field", "value"], rows)
    if t.cycles:
        table(
            f"cycles per operation at {t.clock_mhz:g} MHz",
            ["operation", "cycles", "ns"],
            [(op, c, f"{c / t.clock_mhz * 1e3:.1f}") for op, c in sorted(t.cycles.items())],
        )


@targets_app.command("show")
def show_target(
    target_id: str = typer.Argument(..., metavar="ID"),
    file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show every field of target ID, with its cycle costs."""
    target = get_target(target_id, load_catalog(file))
    if as_json:
        emit_json(target.to_dict())
        return
    _show(target)


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "footprints are read from a local workspace: unset EDGELOOP_URL to read them here"
        )
    return backend.ws


def _parse_ref(ref: str) -> tuple[str, str]:
    text = ref.removeprefix("models:/")
    name, sep, version = text.rpartition("/")
    if not sep or not name or not version:
        raise ValidationFailed(f"{ref!r} is not NAME/VERSION (e.g. kws/3)", details={"ref": ref})
    return name, version


def footprint(
    ref: str = typer.Argument(..., metavar="NAME/VERSION", help="Model version, e.g. kws/3."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a model version's footprint on each measured target: flash, RAM, latency and
    whether it fits (exit code 0 either way)."""
    name, version = _parse_ref(ref)
    records = get_footprints(_workspace(), name, version)
    if as_json:
        emit_json(
            [
                {
                    **r.footprint.to_dict(),
                    "measured_at": r.measured_at,
                    "measured_by": r.measured_by,
                }
                for r in records
            ]
        )
        return
    if not records:
        console.print(f"models:/{name}/{version} has no footprints yet")
        return
    rows = footprint_table(r.footprint for r in records)
    table(
        f"footprint of models:/{name}/{version}",
        [*FOOTPRINT_COLUMNS, "measured"],
        [[*row.values(), when(r.measured_at)] for row, r in zip(rows, records, strict=True)],
    )
    misfits = [r.footprint.target for r in records if not r.footprint.fits]
    if misfits:
        console.print(f"[red]does not fit on {', '.join(misfits)}[/]")
    else:
        console.print(f"[green]fits on all {len(records)} targets[/]")
