"""``edgeloop monitors ingest``: sketch a table (Parquet or CSV) against a model version's
monitoring reference and store it as a monitoring window, on the local workspace (a remote
source posts the window to ``/api/v1/monitoring/windows``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json
from edgeloop.client import LocalBackend, get_backend
from edgeloop.edge import load_reference
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring import SketchWindowIn, ingest_window, sketch_batch
from edgeloop.workspace import Workspace, now_ms

__all__ = ["monitors_ingest"]


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "edgeloop monitors ingest works on a local workspace: unset EDGELOOP_URL, or "
            "POST the window (WindowSketch.to_dict()) to the server's /api/v1/monitoring/windows"
        )
    return backend.ws


def _read_table(path: Path) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValidationFailed(f"{path} is not a file", details={"field": "file"})
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pq.read_table(path)
    if suffix in (".csv", ".tsv"):
        options = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
        return pacsv.read_csv(path, parse_options=options)
    raise ValidationFailed(
        f"{path.name}: read .parquet or .csv files (got {suffix or 'no extension'})",
        details={"field": "file"},
    )


def _time(value: str | None, default: int, option: str) -> int:
    """Epoch ms from digits or an ISO 8601 time (``2026-01-05T10:00:00+00:00``)."""
    if value is None:
        return default
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError as exc:
        raise ValidationFailed(
            f"{option} {value!r} is neither epoch milliseconds nor an ISO 8601 time",
            details={"field": option},
        ) from exc


def monitors_ingest(
    model: str = typer.Option(..., "--model", help="The registered model."),
    version: int = typer.Option(..., "--version", help="Its version (the reference's)."),
    file: Path = typer.Option(..., "--file", help="A .parquet or .csv table of features."),
    source: str | None = typer.Option(
        None, "--source", help="Who saw the data (default batch:<file name>)."
    ),
    start: str | None = typer.Option(None, "--start", help="Window start (ms or ISO; now)."),
    end: str | None = typer.Option(None, "--end", help="Window end (ms or ISO; the start)."),
    tag: list[str] = typer.Option([], "--tag", help="key=value tags (repeatable)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sketch a table of features (and proba_LABEL or prediction columns) against the
    version's reference and store it as one monitoring window."""
    ws = _workspace()
    reference = load_reference(ws, model, version)
    table = _read_table(file)
    window = sketch_batch(reference, table)
    at = now_ms()
    start_ms = _time(start, at, "start")
    end_ms = _time(end, start_ms, "end")
    tags: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--tag {item!r} must be key=value", details={"field": "tag"})
        tags[key] = value
    name = source or f"batch:{file.stem}"
    stored = ingest_window(
        ws,
        SketchWindowIn(model, version, name, start_ms, end_ms, window.to_dict(), tags),
        now=at,
    )
    result = {
        "model": model,
        "version": version,
        "source": name,
        "window_start": start_ms,
        "window_end": end_ms,
        "samples": window.count,
        "features": len(window.feature_names),
        "stored": stored,
    }
    if as_json:
        emit_json(result)
        return
    verb = "stored" if stored else "already stored"
    console.print(
        f"{verb}: {window.count} samples x {len(window.feature_names)} features of "
        f"models:/{model}/{version} from {name}"
    )
