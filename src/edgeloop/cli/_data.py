"""``edgeloop data``: versioned, validated and profiled datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgeloop import data
from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.datasets import DatasetVersionInfo
from edgeloop.errors import DataRejected

app = typer.Typer(
    help="Datasets: versions, validation, profiles, labels, splits, windows.", no_args_is_help=True
)


def _print_failures(results: list[dict[str, Any]]) -> None:
    table(
        "validation failures",
        ["rule", "column", "failed", "message", "sample"],
        [
            (
                r.get("rule"),
                r.get("column"),
                r.get("failed"),
                r.get("message"),
                str(next(iter(r.get("samples") or [""]), ""))[:60],
            )
            for r in results
        ],
    )


def _summary(v: DatasetVersionInfo) -> str:
    return f"{v.uri}  {v.rows} rows  {v.status}  sha256 {v.digest[:12]}"


@app.command("add")
def add(
    name: str,
    paths: list[Path],
    label_from: str = typer.Option("", help="column:NAME, folder, or file:labels.csv"),
    key: str = typer.Option("", help="Column that identifies a row (used by diff and relabel)."),
    policy: str = typer.Option("", help="reject or quarantine data that breaks expectations."),
    sample_rate: float = typer.Option(0.0, help="Hz, for sensor CSVs without a time column."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add files as the next version of NAME (identical data returns the existing version)."""
    try:
        result = data.add(
            name,
            paths,
            label_from=label_from or None,
            key=key or None,
            policy=policy or None,
            sample_rate=sample_rate or None,
        )
    except DataRejected as exc:
        report = exc.details.get("report", {})
        if isinstance(report, dict):
            _print_failures(list(report.get("results", [])))
        raise
    if as_json:
        emit_json(result)
        return
    v = result.version
    console.print(("added " if result.created else "unchanged, already ") + _summary(v))
    if v.status == "quarantined":
        _print_failures(list(v.validation.get("results", [])))
        console.print(f"quarantined: pipelines refuse it until 'edgeloop data accept {v.uri}'")


@app.command("list")
def list_datasets(as_json: bool = JSON_OPTION) -> None:
    """List datasets."""
    page = data.list_datasets()
    if as_json:
        emit_json(page.items)
        return
    table(
        "datasets",
        ["name", "latest", "policy", "updated"],
        [(d.name, d.latest_version, d.policy, when(d.updated_at)) for d in page.items],
    )


@app.command("versions")
def versions(name: str, as_json: bool = JSON_OPTION) -> None:
    """List the versions of a dataset."""
    items = data.versions(name)
    if as_json:
        emit_json(items)
        return
    table(
        f"versions of {name}",
        ["version", "status", "rows", "change", "parent", "created", "by"],
        [
            (
                v.version,
                v.status,
                v.rows,
                v.transformation.get("kind"),
                v.parent,
                when(v.created_at),
                v.created_by,
            )
            for v in items
        ],
    )


@app.command("show")
def show(ref: str, as_json: bool = JSON_OPTION) -> None:
    """A version: provenance, schema, validation and its profile per column."""
    v = data.get(ref)
    prof = data.profile(ref)
    if as_json:
        emit_json({"version": v, "profile": prof.to_dict()})
        return
    console.print(_summary(v))
    console.print(f"source {v.source}  transformation {v.transformation}  parent {v.parent}")
    table(
        "profile",
        ["column", "kind", "count", "nulls", "min", "max", "mean", "p50", "top"],
        [(c, *p.summary_row()) for c, p in prof.columns.items()],
    )


@app.command("diff")
def diff(
    a: str,
    b: str,
    key: str = typer.Option("", help="Match rows by this column."),
    as_json: bool = JSON_OPTION,
) -> None:
    """What changed between two versions: schema, rows, labels, distributions."""
    d = data.diff(a, b, key=key or None)
    if as_json:
        emit_json(d)
        return
    console.print(f"[bold]{d.a} → {d.b}[/]  schema {d.schema_changes}")
    rows = d.rows
    console.print(
        f"rows ({rows['by']}): +{rows['added']} -{rows['removed']} "
        f"~{rows['changed'] if rows['changed'] is not None else '?'}"
    )
    table(
        "labels",
        ["label", "a", "b", "delta"],
        [(k, v["a"], v["b"], v["delta"]) for k, v in d.labels.items()],
    )
    table(
        "distribution shift",
        ["column", "kind", "psi"],
        [(c, v["kind"], v["psi"]) for c, v in d.columns.items()],
    )


@app.command("relabel")
def relabel(
    ref: str,
    changes: Path = typer.Option(..., help="CSV: sample,label"),
    reason: str = typer.Option(..., help="Why the labels change (recorded)."),
) -> None:
    """Correct labels: makes a new version and records who changed which label and why."""
    v = data.relabel(ref, changes, reason=reason)
    console.print(f"relabelled: {_summary(v)} ({v.transformation.get('changes')} changes)")


@app.command("history")
def history(name: str, sample: str, as_json: bool = JSON_OPTION) -> None:
    """The label history of one sample."""
    items = data.label_history(name, sample)
    if as_json:
        emit_json(items)
        return
    table(
        f"labels of {sample}",
        ["version", "from", "to", "by", "when", "reason"],
        [(c.version, c.old_label, c.new_label, c.actor, when(c.at), c.reason) for c in items],
    )


@app.command("accept")
def accept(ref: str, note: str = typer.Option("", help="Why it is acceptable.")) -> None:
    """Accept a quarantined version."""
    console.print(f"accepted {_summary(data.accept(ref, note))}")


@app.command("schema")
def schema(
    name: str, set_from: Path = typer.Option(None, "--set", help="YAML file to apply.")
) -> None:
    """Print the schema and expectations as YAML, or replace them (--set FILE)."""
    if set_from is not None:
        typer.echo(data.set_schema(name, set_from.read_text(encoding="utf-8")), nl=False)
        return
    typer.echo(data.schema(name), nl=False)


@app.command("policy")
def policy(name: str, value: str) -> None:
    """Set what happens to data that breaks expectations: reject or quarantine."""
    console.print(f"{name}: policy {data.set_policy(name, value).policy}")


@app.command("split")
def split(
    ref: str,
    name: str = typer.Option("default"),
    method: str = typer.Option("random", help="random, stratified or group"),
    test: float = typer.Option(0.2),
    validation: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    label: str = typer.Option(""),
    group: str = typer.Option("", help="Column whose groups never straddle the split."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a deterministic split of a version."""
    info = data.split(
        ref,
        name,
        method=method,
        test=test,
        validation=validation,
        seed=seed,
        label=label or None,
        group=group or None,
    )
    if as_json:
        emit_json(info)
        return
    console.print(f"split {info.name} of datasets:/{info.dataset}@{info.version}: {info.counts}")


@app.command("folds")
def folds(
    ref: str,
    name: str = typer.Option("folds"),
    method: str = typer.Option("kfold", help="kfold, stratified or group"),
    k: int = typer.Option(5),
    seed: int = typer.Option(0),
    label: str = typer.Option(""),
    group: str = typer.Option(""),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record k folds of a version (group k-fold keeps each group in one fold)."""
    info = data.folds(
        ref, name, method=method, k=k, seed=seed, label=label or None, group=group or None
    )
    if as_json:
        emit_json(info)
        return
    console.print(f"folds {info.name} of datasets:/{info.dataset}@{info.version}: {info.counts}")


@app.command("window")
def window(
    ref: str,
    length_ms: float = typer.Option(..., help="Window length in milliseconds."),
    stride_ms: float = typer.Option(..., help="Step between windows in milliseconds."),
    into: str = typer.Option("", help="Dataset to store the windows in (default NAME-windows)."),
    pad: str = typer.Option("drop", help="drop or zero: recordings shorter than a window."),
) -> None:
    """Cut sensor recordings into fixed windows (a derived version)."""
    result = data.window(ref, length_ms=length_ms, stride_ms=stride_ms, into=into or None, pad=pad)
    console.print(f"windows: {_summary(result.version)}")
