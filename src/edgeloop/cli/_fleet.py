"""``edgeloop devices | groups | releases | rollouts | reconcile``: the device fleet and OTA
rollouts, on the local workspace."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress_bar import ProgressBar
from rich.table import Table

from edgeloop.cli._render import JSON_OPTION, console, emit_json, fmt, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.errors import ValidationFailed
from edgeloop.fleet import _devices, _groups, _reconciler, _releases, _rollouts
from edgeloop.fleet._entities import RolloutEventInfo, RolloutInfo
from edgeloop.fleet.bundle import pack_tar
from edgeloop.workspace import Workspace

__all__ = ["devices_app", "groups_app", "reconcile", "releases_app", "rollouts_app", "sim_fleet"]

devices_app = typer.Typer(help="Devices: enrollment, acceptance, inventory.", no_args_is_help=True)
enrollment_app = typer.Typer(
    help="Pre-shared enrollment tokens: devices that bring one are accepted at once.",
    no_args_is_help=True,
)
devices_app.add_typer(enrollment_app, name="enrollment-token")
groups_app = typer.Typer(help="Device groups: static lists or tag queries.", no_args_is_help=True)
releases_app = typer.Typer(
    help="Releases: a model version for a target, as a signed bundle.", no_args_is_help=True
)
rollouts_app = typer.Typer(
    help="Rollouts: a release through waves of a group, with gates.", no_args_is_help=True
)
REASON_OPTION = typer.Option("", "--reason", help="Why (recorded with the transition).")


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "the fleet commands work on a local workspace: unset EDGELOOP_URL, or call the "
            "server's /api/v1 fleet endpoints"
        )
    return backend.ws


def _ago(ms: int | None) -> str:
    return when(ms)


def _share(value: float) -> str:
    return f"{100 * value:g}%"


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# ---- devices --------------------------------------------------------------------------------


@devices_app.command("list")
def list_devices(
    status: str | None = typer.Option(None, help="pending, accepted or rejected."),
    target: str | None = typer.Option(None, help="Only devices of this target."),
    limit: int = typer.Option(1000),
    as_json: bool = JSON_OPTION,
) -> None:
    """List devices with their status, release and last contact."""
    page = _devices.list_devices(_workspace(), status=status, target=target, limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "devices",
        ["id", "status", "target", "site", "firmware", "release", "collect", "last seen"],
        [
            (
                d.id,
                d.status,
                d.target,
                d.site,
                d.firmware,
                d.current_release,
                "yes" if d.data_collection else "no",
                _ago(d.last_seen),
            )
            for d in page.items
        ],
    )


@devices_app.command("show")
def show_device(
    device_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """Show a device: attributes, slots, health and its recent updates."""
    ws = _workspace()
    info = _devices.get_device(ws, device_id)
    updates = _devices.list_device_updates(ws, device_id)
    if as_json:
        emit_json({"device": info, "updates": updates})
        return
    rows = [
        ("status", f"{info.status}{f' ({info.status_reason})' if info.status_reason else ''}"),
        ("target", info.target),
        ("site", info.site),
        ("firmware", info.firmware),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(info.tags.items())) or "-"),
        ("token", "collected" if info.has_token else "none"),
        ("data collection", "opted in" if info.data_collection else "off"),
        ("active slot", info.active_slot),
        ("release", info.current_release),
        ("last seen", _ago(info.last_seen)),
        ("enrolled", f"{_ago(info.enrolled_at)} by {info.enrolled_by}"),
        (
            "accepted",
            f"{_ago(info.accepted_at)} by {info.accepted_by}" if info.accepted_at else "-",
        ),
    ]
    for slot, content in sorted(info.slots.items()):
        rows.append((f"slot {slot}", (content or {}).get("release") or "empty"))
    for key, value in sorted(info.health.items()):
        rows.append((f"health {key}", fmt(value)))
    table(info.id, ["field", "value"], rows)
    if updates:
        table(
            "updates",
            ["rollout", "wave", "release", "previous", "state", "reason", "updated"],
            [
                (
                    u.rollout,
                    u.wave + 1,
                    u.release,
                    u.previous_release,
                    f"{u.state}{' (rollback)' if u.rollback else ''}",
                    u.reason,
                    _ago(u.updated_at),
                )
                for u in updates
            ],
        )


@devices_app.command("accept")
def accept(device_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION) -> None:
    """Accept a pending device: it can collect its token at its next poll."""
    info = _devices.accept_device(_workspace(), device_id, reason)
    console.print(f"accepted {info.id} ({info.target})")


@devices_app.command("reject")
def reject(device_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION) -> None:
    """Reject a device: its token stops working."""
    info = _devices.reject_device(_workspace(), device_id, reason)
    console.print(f"rejected {info.id}")


@devices_app.command("remove")
def remove(device_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Remove a device with its history, e.g. so that it can enroll again with a new key."""
    _devices.remove_device(_workspace(), device_id)
    console.print(f"removed {device_id}")


@enrollment_app.command("create")
def create_enrollment_token(
    name: str = typer.Option("enrollment", help="A name to recognise it by."),
    max_uses: int | None = typer.Option(None, "--max-uses", help="Devices it may enroll."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime, e.g. 7d or 12h."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a pre-shared enrollment token; it is printed once and never shown again."""
    expires_ms = None if expires is None else _rollouts.parse_duration(expires, "expires")
    info, token = _devices.create_enrollment_token(
        _workspace(), name, max_uses=max_uses, expires_in_ms=expires_ms
    )
    if as_json:
        emit_json({"info": info, "token": token})
        return
    console.print(f"enrollment token {info.id}; store it now, it is not shown again:")
    typer.echo(token)


@enrollment_app.command("list")
def list_enrollment_tokens(as_json: bool = JSON_OPTION) -> None:
    """List enrollment tokens (never their secrets)."""
    items = _devices.list_enrollment_tokens(_workspace())
    if as_json:
        emit_json(items)
        return
    table(
        "enrollment tokens",
        ["id", "name", "uses", "max uses", "expires", "created", "revoked"],
        [
            (
                t.id,
                t.name,
                t.uses,
                t.max_uses,
                _ago(t.expires_at),
                _ago(t.created_at),
                _ago(t.revoked_at),
            )
            for t in items
        ],
    )


@enrollment_app.command("revoke")
def revoke_enrollment_token(token_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Revoke an enrollment token (devices it enrolled stay enrolled)."""
    _devices.revoke_enrollment_token(_workspace(), token_id)
    console.print(f"revoked {token_id}")


# ---- groups ---------------------------------------------------------------------------------


@groups_app.command("create")
def create_group(
    name: str = typer.Argument(...),
    static: str | None = typer.Option(None, "--static", help="Device ids, comma-separated."),
    query: str | None = typer.Option(
        None, "--query", help="A tag query, e.g. 'target=nano33ble and site=plant-3'."
    ),
    description: str = typer.Option("", help="What the group is for."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a static group (--static) or a query group (--query)."""
    members = None if static is None else [m.strip() for m in static.split(",") if m.strip()]
    info = _groups.create_group(
        _workspace(), name, members=members, query=query, description=description
    )
    if as_json:
        emit_json(info)
        return
    console.print(f"group {info.name} ({info.kind}): {len(info.devices or [])} accepted devices")


@groups_app.command("list")
def list_groups(as_json: bool = JSON_OPTION) -> None:
    """List device groups."""
    items = _groups.list_groups(_workspace())
    if as_json:
        emit_json(items)
        return
    table(
        "groups",
        ["name", "kind", "definition", "created"],
        [
            (
                g.name,
                g.kind,
                g.query if g.kind == "query" else ", ".join(g.members),
                _ago(g.created_at),
            )
            for g in items
        ],
    )


@groups_app.command("show")
def show_group(name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Show a group and the accepted devices it holds now."""
    info = _groups.get_group(_workspace(), name)
    if as_json:
        emit_json(info)
        return
    definition = info.query if info.kind == "query" else ", ".join(info.members)
    console.print(f"[bold]{info.name}[/] ({info.kind}) {definition}")
    devices = info.devices or []
    console.print(
        f"{len(devices)} accepted devices: {', '.join(devices[:50])}"
        + (" …" if len(devices) > 50 else "")
    )


@groups_app.command("delete")
def delete_group(name: str = typer.Argument(...)) -> None:
    """Delete a group no active rollout uses."""
    _groups.delete_group(_workspace(), name)
    console.print(f"deleted group {name}")


# ---- releases -------------------------------------------------------------------------------


def _parse_ref(ref: str) -> tuple[str, str]:
    text = ref.removeprefix("models:/")
    name, sep, version = text.rpartition("/")
    if not sep or not name or not version:
        raise ValidationFailed(f"{ref!r} is not MODEL/VERSION (e.g. pump/3)", details={"ref": ref})
    return name, version


@releases_app.command("create")
def create_release(
    ref: str = typer.Argument(..., metavar="MODEL/VERSION", help="e.g. pump/3"),
    target: str = typer.Option(..., "--target", help="Target id (edgeloop targets list)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build and sign the bundle of a model version for a target."""
    name, version = _parse_ref(ref)
    info = _releases.create_release(_workspace(), name, version, target)
    if as_json:
        emit_json(info)
        return
    console.print(
        f"release {info.id}: models:/{info.model}/{info.model_version} for {info.target} "
        f"(runtime {info.runtime}, {len(info.files)} files, {info.size} bytes, "
        f"manifest {info.manifest_digest[:12]})"
    )


@releases_app.command("list")
def list_releases(
    model: str | None = typer.Option(None, help="Only releases of this model."),
    limit: int = typer.Option(100),
    as_json: bool = JSON_OPTION,
) -> None:
    """List releases, newest first."""
    page = _releases.list_releases(_workspace(), model=model, limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "releases",
        ["id", "model", "version", "target", "runtime", "bytes", "created"],
        [
            (r.id, r.model, r.model_version, r.target, r.runtime, r.size, _ago(r.created_at))
            for r in page.items
        ],
    )


@releases_app.command("show")
def show_release(
    release_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """Show a release and its files."""
    info = _releases.get_release(_workspace(), release_id)
    if as_json:
        emit_json(info)
        return
    console.print(
        f"[bold]{info.id}[/] models:/{info.model}/{info.model_version} for {info.target} "
        f"(runtime {info.runtime}), manifest sha256 {info.manifest_digest}"
    )
    table(
        "files",
        ["path", "bytes", "sha256"],
        [(p, f["size"], f["sha256"]) for p, f in sorted(info.files.items())],
    )


@releases_app.command("export")
def export_release(
    release_id: str = typer.Argument(..., metavar="ID"),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the bundle tar."),
) -> None:
    """Write the signed bundle as a tar (manifest.json, manifest.sig, files)."""
    data = pack_tar(_releases.load_bundle(_workspace(), release_id))
    out.write_bytes(data)
    console.print(f"wrote {out} ({len(data)} bytes)")


# ---- rollouts -------------------------------------------------------------------------------


@rollouts_app.command("create")
def create_rollout(
    release: str = typer.Option(..., "--release", help="Release id (rel_…)."),
    group: str = typer.Option(..., "--group", help="Device group."),
    waves: str = typer.Option("1,10,50,100", help="Cumulative percentages of the group."),
    bake: str = typer.Option("10m", help="How long each wave bakes before it may advance."),
    max_failure: str = typer.Option("5%", "--max-failure", help="Share failed that breaches."),
    min_success: str = typer.Option("95%", "--min-success", help="Share healthy to advance."),
    health: str = typer.Option(
        "", help="Telemetry thresholds, e.g. 'error_rate<0.02,latency_p95_ms<40'."
    ),
    on_failure: str = typer.Option("rollback", "--on-failure", help="rollback or pause."),
    approve_each_wave: bool = typer.Option(
        False, "--approve-each-wave", help="Wait for 'rollouts approve' before every wave."
    ),
    offline_timeout: str = typer.Option(
        "30m", "--offline-timeout", help="Silence after which a device leaves the denominator."
    ),
    draft: bool = typer.Option(False, "--draft", help="Create it without starting it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create (and start) a rollout of a release to a group."""
    info = _rollouts.create_rollout(
        _workspace(),
        release,
        group,
        waves=waves,
        bake=bake,
        max_failure=max_failure,
        min_success=min_success,
        health=health,
        on_failure=on_failure,
        approve_each_wave=approve_each_wave,
        offline_timeout=offline_timeout,
        start=not draft,
    )
    if as_json:
        emit_json(info)
        return
    console.print(f"rollout {info.id}: {info.state} ({info.state_reason})")


@rollouts_app.command("list")
def list_rollouts(
    state: str | None = typer.Option(None, help="Only rollouts in this state."),
    limit: int = typer.Option(100),
    as_json: bool = JSON_OPTION,
) -> None:
    """List rollouts, newest first."""
    page = _rollouts.list_rollouts(_workspace(), state=state, limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "rollouts",
        ["id", "release", "model", "group", "state", "wave", "healthy", "failed", "created"],
        [
            (
                r.id,
                r.release,
                f"{r.model}/{r.model_version}",
                r.group,
                r.state,
                f"{r.current_wave + 1}/{len(r.waves)}",
                r.counts.get("healthy", 0),
                r.counts.get("failed", 0),
                _ago(r.created_at),
            )
            for r in page.items
        ],
    )


def _wave_table(info: RolloutInfo) -> Table:
    t = Table(title="waves (cumulative)", title_justify="left")
    for column in (
        "wave",
        "share",
        "devices",
        "progress",
        "healthy",
        "failed",
        "in progress",
        "offline",
    ):
        t.add_column(column)
    for wave in info.progress:
        current = wave.index == info.current_wave and info.state not in (
            "completed",
            "rolled-back",
            "cancelled",
        )
        marker = "▶ " if current else "  "
        total = max(wave.target, wave.assigned, 1)
        bar = ProgressBar(total=total, completed=wave.healthy, width=30)
        t.add_row(
            f"{marker}{wave.index + 1}",
            f"{wave.percent:g}%",
            f"{wave.assigned}/{wave.target}",
            bar,
            str(wave.healthy),
            str(wave.failed),
            str(wave.in_progress),
            str(wave.offline),
        )
    return t


def _event_rows(events: list[RolloutEventInfo]) -> list[tuple[object, ...]]:
    return [
        (
            _ago(e.at),
            f"{e.from_state or '-'} → {e.to_state}",
            "-" if e.wave is None else e.wave + 1,
            e.actor,
            e.reason,
        )
        for e in events
    ]


@rollouts_app.command("show")
def show_rollout(
    rollout_id: str = typer.Argument(..., metavar="ID"),
    events: int = typer.Option(10, help="How many of the latest transitions to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a rollout: wave progress bars, gates, bytes saved and its transitions."""
    ws = _workspace()
    info = _rollouts.get_rollout(ws, rollout_id)
    history = _rollouts.list_rollout_events(ws, rollout_id)
    if as_json:
        emit_json({"rollout": info, "events": history})
        return
    health = ", ".join(str(rule) for rule in info.health) or "-"
    console.print(
        f"[bold]{info.id}[/] {info.release} (models:/{info.model}/{info.model_version}, "
        f"{info.target}) → group {info.group}\n"
        f"state [bold]{info.state}[/] at wave {info.current_wave + 1} of {len(info.waves)}"
        f" — {info.state_reason}\n"
        f"policy: bake {_duration(info.bake_ms)}, max failure {_share(info.max_failure)}, "
        f"min success {_share(info.min_success)}, health {health}, on failure "
        f"{info.on_failure}{', approve each wave' if info.approve_each_wave else ''}, offline "
        f"after {_duration(info.offline_timeout_ms)}\n"
        f"transfer: {info.bytes_downloaded} bytes downloaded, {info.bytes_saved} bytes saved "
        "by delta transfer"
    )
    console.print(_wave_table(info))
    if info.gates:
        gates = info.gates
        verdict = "passed" if gates["passed"] else "breached" if gates["breach"] else "waiting"
        console.print(
            f"gates of wave {gates['wave'] + 1}: {verdict}; healthy "
            f"{gates['healthy']}/{gates['devices']}, failed {gates['failed']}, offline dropped "
            f"{gates['offline_dropped']}"
        )
        for line in [*gates["breach"], *gates["waiting"]]:
            console.print(f"  - {line}")
    table(
        "transitions",
        ["at", "state", "wave", "by", "why"],
        _event_rows(history[-events:] if events > 0 else []),
    )


def _steer(verb: str, rollout_id: str, reason: str) -> None:
    action = {
        "start": _rollouts.start_rollout,
        "approve": _rollouts.approve_rollout,
        "pause": _rollouts.pause_rollout,
        "resume": _rollouts.resume_rollout,
        "abort": _rollouts.abort_rollout,
        "rollback": _rollouts.rollback_rollout,
    }[verb]
    info = action(_workspace(), rollout_id, reason)
    console.print(f"rollout {info.id}: {info.state} ({info.state_reason})")


@rollouts_app.command("start")
def start(rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION) -> None:
    """Start a draft rollout."""
    _steer("start", rollout_id, reason)


@rollouts_app.command("approve")
def approve(
    rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION
) -> None:
    """Approve the wave a rollout waits for."""
    _steer("approve", rollout_id, reason)


@rollouts_app.command("pause")
def pause(rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION) -> None:
    """Pause a rollout: no new assignments, no wave advances."""
    _steer("pause", rollout_id, reason)


@rollouts_app.command("resume")
def resume(
    rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION
) -> None:
    """Resume a paused rollout at its wave (failures so far are accepted)."""
    _steer("resume", rollout_id, reason)


@rollouts_app.command("abort")
def abort(rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION) -> None:
    """Cancel a rollout; devices keep what they installed."""
    _steer("abort", rollout_id, reason)


@rollouts_app.command("rollback")
def rollback(
    rollout_id: str = typer.Argument(..., metavar="ID"), reason: str = REASON_OPTION
) -> None:
    """Send every device of the rollout back to its previous release."""
    _steer("rollback", rollout_id, reason)


def reconcile(as_json: bool = JSON_OPTION) -> None:
    """One reconciler pass now: advance, pause or roll back rollouts by their gates."""
    report = _reconciler.reconcile_once(_workspace(), actor="reconcile:cli")
    if as_json:
        emit_json(report)
        return
    console.print(
        f"{report.rollouts} rollouts looked at, {report.assigned} devices assigned, "
        f"{len(report.transitions)} transitions in {report.elapsed_ms:.0f} ms"
    )
    for e in report.transitions:
        console.print(f"  {e.rollout}: {e.from_state} → {e.to_state} ({e.reason})")


def sim_fleet(
    devices: int = typer.Option(200, help="Simulated devices."),
    faulty: str = typer.Option("3%", help="Share of faulty devices, e.g. 3% or 0.03."),
    server: str = typer.Option("http://127.0.0.1:8080", help="The edgeloop server."),
    duration: str = typer.Option("60s", help="How long to run, e.g. 60s, 2m."),
    enrollment_token: str = typer.Option("", help="Pre-shared enrollment token."),
    seed: int = typer.Option(0, help="Seed for identities and failure modes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run simulated devices against an edgeloop server and print what they did."""
    from edgeloop.fleet import run_fleet

    stats = run_fleet(
        server,
        devices=devices,
        faulty=_rollouts.parse_share(faulty, "faulty"),
        enrollment_token=enrollment_token or None,
        duration_s=_rollouts.parse_duration(duration, "duration") / 1000,
        seed=seed,
    )
    if as_json:
        emit_json(stats.to_dict())
        return

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "0"

    lat = stats.latency_ms
    table(
        f"simulated fleet: {stats.devices} devices, {stats.elapsed_s:.0f} s",
        ["figure", "value"],
        [
            ("enrolled", stats.enrolled),
            ("faulty", counts(stats.faulty)),
            ("check-ins", f"{stats.checkins} ({stats.checkins_per_s:.0f}/s)"),
            (
                "latency p50 / p95 / p99",
                f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} ms",
            ),
            ("states reported", counts(stats.states)),
            ("failures", counts(stats.failures)),
            ("releases", counts(stats.releases)),
            ("telemetry windows", stats.telemetry_windows),
            ("bytes downloaded / saved", f"{stats.bytes_downloaded} / {stats.bytes_saved}"),
            ("errors", counts(stats.errors)),
        ],
    )
