"""``edgeloop collect``: ask opted-in devices for raw samples, follow the requests, and turn
the uploads into a new dataset version."""

from __future__ import annotations

import typer

from edgeloop.cli._fleet import _workspace
from edgeloop.cli._render import JSON_OPTION, console, emit_json, table, when
from edgeloop.errors import ValidationFailed
from edgeloop.fleet import _collection, _collection_close
from edgeloop.fleet._collection_entities import CollectionInfo

__all__ = ["collect_app"]

collect_app = typer.Typer(
    help="Data collection: raw samples from opted-in devices become a new dataset version.",
    no_args_is_help=True,
)


def _tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationFailed(
                f"--tag takes name=value, got {pair!r}", details={"field": "tags"}
            )
        tags[key] = value
    return tags


def _summary(info: CollectionInfo) -> str:
    made = f" -> {info.uri}" if info.uri else ""
    return (
        f"collection {info.id} ({info.state}): {info.chosen} device(s) x "
        f"{info.samples_per_device} sample(s) for dataset {info.dataset}, {info.rows} row(s), "
        f"{info.done} device(s) done{made}"
    )


@collect_app.command("request")
def request(
    dataset: str = typer.Option(..., help="The dataset the samples go to (its latest version)."),
    devices: int = typer.Option(..., help="How many opted-in devices to ask."),
    samples: int = typer.Option(..., "--samples", help="Raw samples per device."),
    model: str | None = typer.Option(None, help="Only devices running this model."),
    group: str | None = typer.Option(None, help="Only devices of this group."),
    tag: list[str] = typer.Option([], "--tag", help="Only devices with this tag (name=value)."),
    reason: str = typer.Option("", help="Why (recorded with the request and the version)."),
    expires_in: str = typer.Option("24h", help="Close with what came after this long."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask opted-in devices for raw samples."""
    info = _collection.request_collection(
        _workspace(),
        dataset=dataset,
        devices=devices,
        samples_per_device=samples,
        model=model,
        group=group,
        tags=_tags(tag) or None,
        reason=reason,
        expires_in=expires_in,
    )
    if as_json:
        emit_json(info)
        return
    console.print(_summary(info))


@collect_app.command("list")
def list_collections(
    state: str | None = typer.Option(None, help="open, closing, closed or failed."),
    dataset: str | None = typer.Option(None, help="Only requests for this dataset."),
    limit: int = typer.Option(100),
    as_json: bool = JSON_OPTION,
) -> None:
    """List collection requests, newest first."""
    page = _collection.list_collections(_workspace(), state=state, dataset=dataset, limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "collections",
        ["id", "dataset", "state", "devices", "done", "rows", "version", "created", "deadline"],
        [
            (
                c.id,
                c.dataset,
                c.state,
                c.chosen,
                c.done,
                c.rows,
                c.uri,
                when(c.created_at),
                when(c.deadline),
            )
            for c in page.items
        ],
    )


@collect_app.command("show")
def show(
    collection_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """Show a collection request and each chosen device's progress."""
    info = _collection.get_collection(_workspace(), collection_id)
    if as_json:
        emit_json(info)
        return
    rows = [
        ("state", f"{info.state}{f' ({info.state_reason})' if info.state_reason else ''}"),
        ("dataset", f"{info.dataset} (asked at version {info.base_version})"),
        ("devices", f"{info.chosen} chosen of {info.devices_requested} asked, {info.done} done"),
        ("samples per device", info.samples_per_device),
        ("filters", ", ".join(f for f in _filters(info)) or "-"),
        ("rows", info.rows),
        ("version", info.uri),
        ("parent", info.parent),
        ("reason", info.reason or "-"),
        ("created", f"{when(info.created_at)} by {info.created_by}"),
        ("deadline", when(info.deadline)),
        ("closed", f"{when(info.closed_at)} by {info.closed_by}" if info.closed_at else "-"),
    ]
    table(info.id, ["field", "value"], rows)
    table(
        "devices",
        ["device", "uploaded", "done", "updated"],
        [(d.device, d.uploaded, d.done, when(d.updated_at)) for d in info.devices or []],
    )


def _filters(info: CollectionInfo) -> list[str]:
    found = [f"model={info.model}"] if info.model else []
    found += [f"group={info.group}"] if info.group else []
    return found + [f"tags.{k}={v}" for k, v in sorted(info.tags.items())]


@collect_app.command("close")
def close(
    collection_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """Turn the uploads into a new dataset version now (the server does it by itself once
    every device is done or the deadline passed)."""
    info = _collection_close.close_collection(_workspace(), collection_id)
    if as_json:
        emit_json(info)
        return
    console.print(_summary(info))
    if info.state_reason:
        console.print(info.state_reason)


@collect_app.command("opt-out")
def opt_out(device_id: str = typer.Argument(..., metavar="DEVICE")) -> None:
    """Turn a device's data collection off (only the device itself can opt in)."""
    info = _collection.disable_data_collection(_workspace(), device_id)
    console.print(f"device {info.id}: data collection off")
