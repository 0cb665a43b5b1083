"""``edgeloop demo`` stage 7: roll out to a simulated fleet.

An ``edgeloop server`` runs on a loopback port in a thread of the demo's process, on the
demo's own workspace, with the fleet reconciler beside it; both always stop, also on Ctrl-C
or an error. A :class:`~edgeloop.fleet.DeviceFleet` of simulated devices (200 by default, at
sites plant-1..3, 3 % of them faulty) enrolls with a pre-shared token and polls it over real
HTTP. Three release candidates of the ``machine-condition`` model for ``rpi4`` (the
predictive-maintenance pipeline with other network sizes, all on the same data) go out: a
base install to every device, then a canary that fails on the faulty devices (a self-test
failure, a corrupted download, a crash while installing, errors at inference), so its gate
trips and the rollout rolls back by itself, then a good release that completes.

A second demo reuses what exists: the candidate pipelines are cached, releases, the device
group and the devices are found again, and rollouts a stopped demo left active are aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeloop.cli._fleet import _event_rows, _wave_table
from edgeloop.cli._render import console, table
from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.fleet import DeviceFleet, _devices, _groups, _releases, _rollouts
from edgeloop.fleet._entities import ReleaseInfo, RolloutInfo
from edgeloop.fleet._simulator import FailureMode
from edgeloop.workspace import Workspace

__all__ = [
    "CANDIDATES",
    "GROUP",
    "FleetStage",
    "free_port",
    "local_server",
    "release_candidates",
    "run_fleet_stage",
]

MODEL = "machine-condition"
TARGET = "rpi4"
GROUP = "demo-fleet"
GROUP_QUERY = "target=rpi4 and tags.demo=true"
SITES = ("plant-1", "plant-2", "plant-3")
CANDIDATES = {"base": 16, "canary": 24, "good": 32}
"""Release candidates by role: the hidden layer size of each one's network."""
FAULT_MODES: tuple[FailureMode, ...] = (
    "self-test",
    "corrupt-download",
    "crash-install",
    "inference",
)
CANARY_POLICY: dict[str, Any] = {
    "waves": "10,50,100",
    "bake": "2s",
    "max_failure": "2%",
    "min_success": "95%",
    "health": "error_rate<0.05",
    "offline_timeout": "1m",
}
INSTALL_POLICY: dict[str, Any] = {**CANARY_POLICY, "waves": "50,100", "bake": 0, "health": ""}
TERMINAL = ("completed", "rolled-back", "cancelled")
log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(ws: Workspace, *, reconcile_every: float = 0.5) -> Iterator[str]:
    """``edgeloop server`` (no auth, loopback, a free port) on ``ws``'s home as a child
    process, and a reconciler pass every ``reconcile_every`` seconds in a thread of this one
    (row locks make it safe beside the server's own); yields the base URL. Both stop when the
    block ends, however it ends (Ctrl-C included). The server's log goes to
    ``<home>/demo-server.log``."""
    import httpx

    from edgeloop.fleet import reconcile_once

    port = free_port()
    home = Path(ws.settings.home).resolve()
    env = {**os.environ, "EDGELOOP_HOME": str(home), "EDGELOOP_AUTH": "off"}
    env.pop("EDGELOOP_URL", None)
    log_path = home / "demo-server.log"
    command = [
        sys.executable,
        "-m",
        "edgeloop",
        "server",
        "--port",
        str(port),
        "--no-auth",
        "--pipelines",
        str(log_path.with_name("demo-no-pipelines.yaml")),
        "--reconcile-every",
        "86400",  # this process reconciles (below), so no lease can hold it up
        "--monitor-every",
        "86400",  # and the closed loop runs the monitoring passes
        "--no-access-log",
    ]
    stop = threading.Event()

    def reconcile() -> None:
        while not stop.wait(reconcile_every):
            try:
                reconcile_once(ws, actor="reconciler:demo")
            except Exception:  # a failed pass is retried at the next one
                log.exception("demo reconciler pass failed")

    url = f"http://127.0.0.1:{port}"
    previous = None
    if threading.current_thread() is threading.main_thread():  # a kill stops it too

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, interrupt)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    thread = threading.Thread(target=reconcile, name="demo-reconciler", daemon=True)
    try:
        deadline = time.monotonic() + 60.0
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ValidationFailed(
                    f"the demo's edgeloop server did not start on {url}; see {log_path}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        thread.start()
        yield url
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(15.0)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def release_candidates(ws: Workspace, windows: str) -> dict[str, int]:
    """Train (or find, cached) one model version per candidate role on the ``windows``
    dataset version; the version number of each."""
    from edgeloop.cli._demo import maintenance_pipeline
    from edgeloop.pipelines import run_pipeline

    versions: dict[str, int] = {}
    for role, hidden in CANDIDATES.items():
        spec = maintenance_pipeline(
            name=f"machine-condition-{role}",
            dataset=windows,
            hidden=(hidden,),
            targets=(TARGET,),
            alias=None,
        )
        run = run_pipeline(ws, spec)
        if run.status != "succeeded":
            failed = next(s for s in run.steps if s.status == "failed")
            raise ValidationFailed(
                f"release candidate {role}: step {failed.name} failed: {failed.error.strip()}"
            )
        uri = str(run.lineage["produced"]["model_version"][0])
        versions[role] = int(uri.rsplit("/", 1)[1])
        cached = all(s.status == "cached" for s in run.steps)
        console.print(
            f"  {role}: models:/{MODEL}/{versions[role]} (MLP {hidden} hidden, "
            f"{'cached' if cached else 'trained'})"
        )
    return versions


def ensure_release(ws: Workspace, version: int, target: str = TARGET) -> ReleaseInfo:
    """The release of ``machine-condition`` ``version`` for ``target``, made if missing."""
    try:
        return _releases.create_release(ws, MODEL, version, target)
    except Conflict as exc:
        return _releases.get_release(ws, str(exc.details["release"]))


@dataclass
class FleetStage:
    """The simulated fleet and what the stage did with it (the closed loop goes on with it)."""

    ws: Workspace
    url: str
    fleet: DeviceFleet
    releases: dict[str, ReleaseInfo] = field(default_factory=dict)
    rollouts: dict[str, RolloutInfo] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def drive(
        self, seconds: float, until: Callable[[], bool] | None = None, check_every: float = 0.25
    ) -> None:
        """Run every device's check-in loop for up to ``seconds``, or until ``until()``."""
        asyncio.run(self.fleet.run(seconds, until=until, check_every=check_every))

    def rollout(self, role: str, release: ReleaseInfo, policy: dict[str, Any]) -> RolloutInfo:
        """Roll ``release`` out to the group and drive the fleet until the rollout ends."""
        started = time.perf_counter()
        info = _rollouts.create_rollout(self.ws, release.id, GROUP, **policy)

        def ended() -> bool:
            return _rollouts.get_rollout(self.ws, info.id).state in TERMINAL

        self.drive(120.0, until=ended)
        info = _rollouts.get_rollout(self.ws, info.id)
        self.rollouts[role] = info
        self.seconds[role] = time.perf_counter() - started
        return info

    def settle_on(self, release: ReleaseInfo, seconds: float = 20.0) -> None:
        """Drive the fleet until every device that holds a model runs ``release``."""

        def settled() -> bool:
            return all(d.release in (None, release.id) for d in self.fleet.devices)

        self.drive(seconds, until=settled)

    def show(self, role: str) -> None:
        info = self.rollouts[role]
        style = {"completed": "green", "rolled-back": "red"}.get(info.state, "yellow")
        console.print(
            f"rollout {info.id} of {info.release} (models:/{info.model}/{info.model_version}):"
            f" [bold {style}]{info.state}[/] in {self.seconds[role]:.1f} s — {info.state_reason}"
        )
        events = _rollouts.list_rollout_events(self.ws, info.id)
        breach = next((e for e in events if e.to_state == "rolled-back"), None)
        if breach is None:
            console.print(_wave_table(info))
        else:  # the devices went back: show what the gate saw when it tripped
            gates = breach.evidence
            console.print(
                f"at the breach, wave {int(gates.get('wave', 0)) + 1} "
                f"({gates.get('percent', 0):g}%): {gates.get('healthy', 0)} healthy, "
                f"{gates.get('failed', 0)} failed of {gates.get('devices', 0)} devices; "
                "failures reported by reason: "
                + ", ".join(f"{n} {r}" for r, n in sorted(self.fleet.failure_reasons.items()))
            )
        table("transitions", ["at", "state", "wave", "by", "why"], _event_rows(events))


def _abort_leftovers(ws: Workspace) -> None:
    """Abort rollouts of the demo group that a stopped demo left active."""
    for state in ("running", "paused", "awaiting-approval", "draft"):
        for info in _rollouts.list_rollouts(ws, state=state, limit=1000).items:
            if info.group == GROUP:
                _rollouts.abort_rollout(ws, info.id, "a new edgeloop demo started")


def _ensure_group(ws: Workspace) -> None:
    try:
        _groups.create_group(
            ws, GROUP, query=GROUP_QUERY, description="the simulated fleet of edgeloop demo"
        )
    except Conflict:
        _groups.get_group(ws, GROUP)


def make_fleet(url: str, *, devices: int, faulty: float, seed: int, **options: Any) -> DeviceFleet:
    """The demo's simulated fleet: ``rpi4`` devices at plant-1..3 tagged ``demo=true``;
    the faulty share fails only on the canary (``faulty_when`` is set by the stage)."""
    fleet = DeviceFleet(
        url,
        devices=devices,
        faulty=faulty,
        target=TARGET,
        sites=SITES,
        seed=seed,
        poll_interval=1.0,
        failure_modes=FAULT_MODES,
        restart_s=1.0,
        id_prefix="demo",
        **options,
    )
    for dev in fleet.devices:
        dev.attributes["tags"] = {**dev.attributes.get("tags", {}), "demo": "true"}
    return fleet


def run_fleet_stage(
    ws: Workspace,
    url: str,
    windows: str,
    *,
    devices: int,
    faulty: float,
    seed: int = 0,
    fleet_options: dict[str, Any] | None = None,
    on_stage: Callable[[FleetStage], None] | None = None,
) -> FleetStage:
    """Stage 7: candidates, releases, enrollment, base install, canary rolled back, good
    release completed; prints the rollouts and the figures."""
    started = time.perf_counter()
    console.print("release candidates (the maintenance pipeline with other network sizes):")
    versions = release_candidates(ws, windows)
    releases = {role: ensure_release(ws, v) for role, v in versions.items()}
    for role, rel in releases.items():
        console.print(
            f"  release {rel.id}: {rel.uri} for {rel.target} ({rel.runtime}, {rel.size} bytes, "
            f"{len(rel.files)} files) — {role}"
        )
    bad = releases["canary"].id
    fleet = make_fleet(url, devices=devices, faulty=faulty, seed=seed, **(fleet_options or {}))
    fleet.faulty_when = lambda manifest: manifest.get("release") == bad
    stage = FleetStage(ws=ws, url=url, fleet=fleet, releases=releases)
    if on_stage is not None:
        on_stage(stage)
    _abort_leftovers(ws)
    _, token = _devices.create_enrollment_token(ws, "edgeloop demo", max_uses=devices)
    enrolled = asyncio.run(fleet.enroll_all(token))
    _ensure_group(ws)
    faults = Counter(d.failure for d in fleet.devices if d.failure)
    console.print(
        f"enrolled {enrolled.get('accepted', 0)} of {devices} simulated {TARGET} devices at "
        f"{', '.join(SITES)} against {url}; faulty: "
        + (", ".join(f"{n} {mode}" for mode, n in sorted(faults.items())) or "none")
    )
    fleet.reset_stats()

    console.print(f"[bold]install[/] {releases['base'].uri} on every device (waves 50,100)")
    stage.rollout("base", releases["base"], INSTALL_POLICY)
    stage.show("base")
    console.print(
        f"[bold]canary[/] {releases['canary'].uri}: waves {CANARY_POLICY['waves']}, max failure "
        f"{CANARY_POLICY['max_failure']}, health {CANARY_POLICY['health']}, on failure rollback"
    )
    stage.rollout("canary", releases["canary"], CANARY_POLICY)
    stage.settle_on(releases["base"])
    stage.show("canary")
    console.print(f"[bold]good release[/] {releases['good'].uri} with the same policy")
    stage.rollout("good", releases["good"], CANARY_POLICY)
    stage.show("good")
    stats = fleet.stats()
    on_good = sum(1 for d in fleet.devices if d.release == releases["good"].id)
    rows: list[tuple[object, ...]] = [
        ("devices", f"{devices} ({sum(faults.values())} faulty), {len(SITES)} sites"),
    ]
    for role in ("base", "canary", "good"):
        info = stage.rollouts[role]
        waves = f"{info.current_wave + 1}/{len(info.waves)}"
        rows.append(
            (
                f"{role} rollout",
                f"{info.state} at wave {waves} in {stage.seconds[role]:.1f} s; "
                f"{info.counts.get('healthy', 0)} healthy, {info.counts.get('failed', 0)} failed, "
                f"{info.counts.get('rolled-back', 0)} rolled back",
            )
        )
    rows += [
        ("devices on the good release", f"{on_good} of {devices}"),
        ("bytes downloaded", f"{stats.bytes_downloaded:,}"),
        ("bytes saved by delta transfer", f"{stats.bytes_saved:,}"),
        (
            "check-ins",
            f"{stats.checkins:,} ({stats.checkins_per_s:.0f}/s, p99 "
            f"{stats.latency_ms['p99']:.1f} ms)",
        ),
        ("time", f"{time.perf_counter() - started:.1f} s"),
    ]
    table("fleet", ["figure", "value"], rows)
    return stage


def site_of(stage: FleetStage, device_id: str) -> str:
    """The site a simulated device is at."""
    try:
        return str(stage.fleet.device(device_id).attributes.get("site", ""))
    except KeyError as exc:
        raise NotFound(f"no simulated device {device_id!r}") from exc
