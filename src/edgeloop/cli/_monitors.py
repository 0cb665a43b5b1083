"""``edgeloop monitors create | list | delete | run | report``: drift and performance per
window, on the local workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.errors import ValidationFailed
from edgeloop.fleet._rollouts import parse_duration
from edgeloop.monitors import _monitors, _report, _run
from edgeloop.monitors._entities import MonitorInfo, ReportInfo
from edgeloop.workspace import Workspace, now_ms

__all__ = ["monitors_app"]

monitors_app = typer.Typer(
    help="Monitors: data drift, prediction drift and performance per window.",
    no_args_is_help=True,
)


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "the monitors commands work on a local workspace: unset EDGELOOP_URL, or call the "
            "server's /api/v1/monitors endpoints"
        )
    return backend.ws


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(f"{option} {item!r} is not key=value", details={"field": option})
        out[key.strip()] = value.strip()
    return out


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(value: float | None) -> str:
    return "-" if not value else str(int(value))


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


@monitors_app.command("create")
def create(
    name: str = typer.Argument(..., metavar="NAME"),
    model: str = typer.Option(..., "--model", help="The registered model to watch."),
    window: str = typer.Option("1h", "--window", help="Window length: 15m, 1h, 1d..."),
    group: str | None = typer.Option(None, "--group", help="Only this device group."),
    tag: list[str] = typer.Option([], "--tag", help="Only sources with this tag (key=value)."),
    source: list[str] = typer.Option([], "--source", help="Only this source (device:ID...)."),
    test: list[str] = typer.Option(
        [], "--test", help="feature=test[:threshold], e.g. rms=ks:0.05 or '*=psi:0.2'."
    ),
    drift_share: float = typer.Option(0.5, "--drift-share", help="Dataset drift at this share."),
    min_samples: int = typer.Option(
        _monitors.DEFAULT_MIN_SAMPLES, "--min-samples", help="Fewer samples: window skipped."
    ),
    slice_by: list[str] = typer.Option(["site"], "--slice-by", help="Tags to slice scores by."),
    delay: str = typer.Option("0s", "--delay", help="Wait this long after a window closes."),
    backfill: str = typer.Option("0s", "--backfill", help="Also evaluate this much history."),
    description: str = typer.Option("", "--description"),
) -> None:
    """Create a monitor of a model's inputs, predictions and performance."""
    at = now_ms()
    info = _monitors.create_monitor(
        _workspace(),
        name,
        model=model,
        window=window,
        group=group,
        tags=_pairs(tag, "--tag") or None,
        sources=source or None,
        tests=test or None,
        drift_share=drift_share,
        min_samples=min_samples,
        slice_by=slice_by,
        delay=delay,
        start=at - parse_duration(backfill, "backfill"),
        description=description,
        now=at,
    )
    console.print(
        f"monitor {info.name}: {info.model}, {_duration(info.window_ms)} windows over "
        f"{info.scope.describe()}, from {when(info.start_at)}"
    )


@monitors_app.command("list")
def list_(
    model: str | None = typer.Option(None, "--model", help="Only monitors of this model."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List monitors."""
    items = _monitors.list_monitors(_workspace(), model=model)
    if as_json:
        emit_json(items)
        return
    table(
        "monitors",
        ["name", "model", "window", "scope", "tests", "drift share", "reports", "evaluated to"],
        [
            (
                m.name,
                m.model,
                _duration(m.window_ms),
                m.scope.describe(),
                _tests(m),
                m.drift_share,
                m.reports,
                when(m.evaluated_until),
            )
            for m in items
        ],
    )


def _tests(info: MonitorInfo) -> str:
    if not info.tests:
        return "defaults"
    return ", ".join(
        f"{k}={v.test or ''}{f':{v.threshold:g}' if v.threshold is not None else ''}"
        for k, v in info.tests.items()
    )


@monitors_app.command("delete")
def delete(name: str = typer.Argument(..., metavar="NAME")) -> None:
    """Delete a monitor and its reports."""
    info = _monitors.delete_monitor(_workspace(), name)
    console.print(f"deleted monitor {info.name} ({info.reports} reports)")


def _rows(reports: list[ReportInfo]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for r in reports:
        m = r.metrics
        drifted = r.drifted_features()
        rows.append(
            (
                when(r.window_start),
                r.model_version,
                r.status if not r.reason or r.status == "ok" else f"skipped: {r.reason}",
                r.samples,
                _pct(m.get("drift_share")),
                ", ".join(drifted[:6]) + (" …" if len(drifted) > 6 else "") or "-",
                "yes"
                if m.get("prediction_drift")
                else "-"
                if m.get("prediction_drift") is None
                else "no",
                _num(m.get("mean_confidence")),
                _signed(m.get("confidence_shift")),
                _num(m.get("accuracy")),
                _num(m.get("f1_macro")),
                _count(m.get("labeled")),
            )
        )
    return rows


_COLUMNS = [
    "window",
    "version",
    "status",
    "samples",
    "drift share",
    "drifted features",
    "pred. drift",
    "confidence",
    "shift",
    "accuracy",
    "F1",
    "labeled",
]


@monitors_app.command("run")
def run(name: str = typer.Argument(..., metavar="NAME"), as_json: bool = JSON_OPTION) -> None:
    """Evaluate the closed windows not yet reported."""
    reports = _run.run_monitor(_workspace(), name)
    if as_json:
        emit_json(reports)
        return
    if not reports:
        console.print(f"monitor {name}: no closed window to evaluate yet")
        return
    table(f"{name}: {len(reports)} new reports", _COLUMNS, _rows(reports))


@monitors_app.command("report")
def report(
    name: str = typer.Argument(..., metavar="NAME"),
    windows: int = typer.Option(24, "--windows", help="How many of the newest windows."),
    out: Path | None = typer.Option(None, "--out", help="Write SVG plots to this directory."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest windows: drift share, drifted features, confidence and performance.

    With --out, SVG plots of drift per feature over time and reference-vs-current
    distributions.
    """
    ws = _workspace()
    summary = _report.monitor_report(ws, name, windows=windows)
    written: list[Path] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for file_name, svg in _report.report_plots(ws, name, windows=windows).items():
            path = out / file_name
            path.write_text(svg, encoding="utf-8")
            written.append(path)
    if as_json:
        emit_json({"summary": summary, "plots": [str(p) for p in written]})
        return
    info = summary.monitor
    console.print(
        f"monitor {info.name}: {info.model}, {_duration(info.window_ms)} windows over "
        f"{info.scope.describe()}; dataset drift at {_pct(info.drift_share)} of features"
    )
    if not summary.reports:
        console.print("no reports yet: run `edgeloop monitors run NAME` once a window has closed")
    else:
        table(f"{name}: last {len(summary.reports)} reports", _COLUMNS, _rows(summary.reports))
    for path in written:
        console.print(f"wrote {path}")
