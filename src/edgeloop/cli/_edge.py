"""``edgeloop targets``: the board catalog; ``edgeloop models footprint``: a version's
stored footprint on each target; ``edgeloop tune``: constraint-aware tuning for a target."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.edge._footprint import FOOTPRINT_COLUMNS, footprint_table, format_bytes
from edgeloop.edge._service import get_footprints
from edgeloop.edge.targets import Target, get_target, load_catalog
from edgeloop.errors import ValidationFailed
from edgeloop.workspace import Workspace

if TYPE_CHECKING:
    from edgeloop.edge._tune import TunePoint

__all__ = ["footprint", "targets_app", "tune"]

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


def _workspace(
    message: str = "footprints are read from a local workspace: unset EDGELOOP_URL to read "
    "them here",
) -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(message)
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


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _architecture(params: dict[str, object]) -> str:
    hidden = params.get("hidden") or []
    layers = "x".join(str(w) for w in hidden) if isinstance(hidden, list) and hidden else "-"
    blocks = "flatten+spectral" if params.get("flatten") else "spectral"
    return (
        f"{params.get('window_samples')} samples, {blocks}, fft {params.get('fft_length')}, "
        f"{params.get('n_bands')} bands, hidden {layers}"
    )


def _trial_line(point: TunePoint) -> str:
    verdict = (
        "[green]feasible[/]" if point.feasible else f"[red]breaks {', '.join(point.violations)}[/]"
    )
    if point.repeat_of is not None:
        verdict += f" (repeats trial {point.repeat_of})"
    return (
        f"trial {point.trial:>3}  int8 {_percent(point.int8_accuracy):>6}  float "
        f"{_percent(point.float_accuracy):>6}  {point.latency_ms:8.3f} ms  RAM "
        f"{format_bytes(point.ram_kb * 1024):>8}  flash {format_bytes(point.flash_kb * 1024):>8}"
        f"  {point.seconds:5.1f} s  {verdict}  ({_architecture(point.params)})"
    )


def tune(
    dataset: str = typer.Option(
        ..., "--dataset", help="Windowed recordings, e.g. vibration-windows@latest."
    ),
    target: str = typer.Option(..., "--target", help="Target id (see edgeloop targets list)."),
    max_latency_ms: float | None = typer.Option(
        None, "--max-latency-ms", help="Latency limit on the target."
    ),
    max_ram_kb: float | None = typer.Option(
        None, "--max-ram-kb", help="RAM limit (default: what the target has)."
    ),
    max_flash_kb: float | None = typer.Option(
        None, "--max-flash-kb", help="Flash limit (default: what the target has)."
    ),
    trials: int = typer.Option(
        20, "--trials", help="Completed trials the study should hold in all (resumes a study)."
    ),
    study: str | None = typer.Option(
        None, "--study", help="Study name (default: from the dataset version and target)."
    ),
    register: str | None = typer.Option(
        None, "--register", help="Register the chosen point as the next version of this model."
    ),
    seed: int = typer.Option(0, "--seed", help="Sampler seed (give parallel workers their own)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search feature blocks and int8 MLPs for a target under latency, RAM and flash limits;
    print each trial, the Pareto front, and the chosen (and registered) point."""
    from edgeloop.edge._tune import tune as run_tune

    ws = _workspace("tune runs on a local workspace: unset EDGELOOP_URL to tune here")
    result = run_tune(
        ws,
        dataset=dataset,
        target=target,
        max_latency_ms=max_latency_ms,
        max_ram_kb=max_ram_kb,
        max_flash_kb=max_flash_kb,
        trials=trials,
        study=study,
        register=register,
        seed=seed,
        on_trial=None if as_json else lambda point: console.print(_trial_line(point)),
    )
    if as_json:
        emit_json(result.to_dict())
        return
    if not result.ran:
        console.print(f"study {result.study} already holds {len(result.trials)} trials")
    table(
        f"Pareto front of {result.study} ({len(result.front)} of {len(result.trials)} trials)",
        ["trial", "int8", "float", "latency", "RAM", "flash", "configuration", "run"],
        [
            (
                f"{p.trial}{' *' if p.trial == result.chosen.trial else ''}",
                _percent(p.int8_accuracy),
                _percent(p.float_accuracy),
                f"{p.latency_ms:.3f} ms",
                format_bytes(p.ram_kb * 1024),
                format_bytes(p.flash_kb * 1024),
                _architecture(p.params),
                p.run_id,
            )
            for p in result.front
        ],
    )
    chosen = result.chosen
    console.print(
        f"chosen: trial {chosen.trial} (int8 {_percent(chosen.int8_accuracy)}, "
        f"{chosen.latency_ms:.3f} ms, RAM {format_bytes(chosen.ram_kb * 1024)}, flash "
        f"{format_bytes(chosen.flash_kb * 1024)}); tuning run {result.run_id}, plot "
        f"{result.plot}"
    )
    if result.model_version:
        console.print(
            f"[green]registered {result.model_version}[/] with its footprint on {result.target}"
        )
