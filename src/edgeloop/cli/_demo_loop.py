"""``edgeloop demo`` stage 8: the closed loop.

The simulated devices of stage 7 classify vibration windows of the machines at their site
(:class:`~edgeloop.sim.FieldData`: the machines the model was trained on, recorded anew) with
the model they run (its own feature block and int8 network, loaded from the registry) and
send monitoring sketches with their telemetry; nothing raw leaves a device unless it opted in
to data collection. One monitor per site compares each window's merged sketches with the
model version's reference profile. Then the simulator drifts two sites (plant-2: the sensor's
gain decays and the machines run hotter; plant-3: a new machine type), and the loop runs by
itself: the monitors see the drift from sketches alone → their rule opens an alert with the
report as evidence → its actions request data collection from opted-in devices and queue the
retraining pipeline (the pipeline's alert trigger) → the collection closes into a new dataset
version → the pipeline retrains on it, its gate compares the new model with production →
a new version and release → a canary rollout → completed. The stage ends with the figures:
drift per site, and accuracy on held-out windows of every site before and after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from edgeloop import monitors
from edgeloop.cli._demo_field import WINDOW_S, DeployedModels, FleetSources
from edgeloop.cli._demo_fleet import CANARY_POLICY, MODEL, SITES, FleetStage, ensure_release
from edgeloop.cli._render import console, table
from edgeloop.errors import NotFound
from edgeloop.fleet import close_collection, get_collection
from edgeloop.monitors import AlertInfo, ReportInfo
from edgeloop.sim import Drift, FieldData
from edgeloop.workspace import Workspace

__all__ = ["DRIFTS", "ClosedLoop", "run_closed_loop", "summary_rows"]

DATASET = "vibration-windows"
PIPELINE = "predictive_maintenance"
DRIFTS = {
    "plant-2": Drift(gain=0.6, temperature_shift_c=12.0),
    "plant-3": Drift(new_machine_type="compressor-c"),
}
"""What the simulator does to the field: a decaying, warmer sensor and a new machine type."""
RULE = "drift_share >= 0.5 for 2 windows"
COLLECT = "20x30"  # devices x samples per device
TESTS = {"*": "wasserstein"}
"""Normalised Wasserstein distance (threshold 0.1) for every feature: a window merges
thousands of samples, at which size p-value tests flag differences too small to matter."""


@contextmanager
def _ticking(ws: Workspace, every: float = 2.0) -> Iterator[None]:
    """Monitoring passes (monitors, rules, actions) every ``every`` seconds in a thread."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                monitors.tick(ws)
            except Exception as exc:  # a failed pass is retried at the next one
                console.print(f"[yellow]monitoring pass failed: {exc}[/]")

    thread = threading.Thread(target=loop, name="demo-monitors", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30.0)


@dataclass
class ClosedLoop:
    """What the loop did, for the summary (and the end-to-end test)."""

    monitors: dict[str, str] = field(default_factory=dict)
    before: dict[str, float | None] = field(default_factory=dict)
    after: dict[str, float | None] = field(default_factory=dict)
    alerts: list[AlertInfo] = field(default_factory=list)
    collections: list[Any] = field(default_factory=list)
    pipeline_run: Any = None
    version: int | None = None
    release: Any = None
    rollout: Any = None
    accuracy: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.0


def _monitor_names() -> dict[str, str]:
    return {site: f"demo-{site}" for site in SITES}


def _setup_monitors(ws: Workspace, window_s: int) -> dict[str, str]:
    """One monitor per site with its rule; what an earlier demo left is replaced."""
    names = _monitor_names()
    for rule in monitors.list_rules(ws):
        if rule.monitor in names.values():
            monitors.delete_rule(ws, rule.id)
    for name in names.values():
        with suppress(NotFound):
            monitors.delete_monitor(ws, name)
    for site, name in names.items():
        monitors.create_monitor(
            ws,
            name,
            model=MODEL,
            window=f"{window_s}s",
            tags={"site": site},
            tests=TESTS,
            delay=f"{window_s * 500}ms",  # the devices' last telemetry of the window is in
            min_samples=500,
            description=f"edgeloop demo: machine-condition at {site}",
        )
        monitors.create_rule(
            ws,
            RULE,
            monitor=name,
            actions=["notify", f"collect:{DATASET}:{COLLECT}", f"retrain:{PIPELINE}"],
            cooldown="1h",
            description=f"edgeloop demo: drift at {site} → collect data and retrain",
        )
    return names


def _ok_reports(ws: Workspace, name: str, since: int) -> list[ReportInfo]:
    return [
        r
        for r in monitors.list_reports(ws, name, since=since)
        if r.status == "ok" and r.window_start >= since
    ]


def _report_rows(
    ws: Workspace, names: dict[str, str], since: int, until: int | None = None
) -> tuple[list[tuple[object, ...]], dict[str, float | None]]:
    rows: list[tuple[object, ...]] = []
    shares: dict[str, float | None] = {}
    for site, name in names.items():
        reports = [
            r for r in _ok_reports(ws, name, since) if until is None or r.window_start < until
        ]
        for r in reports[-2:]:
            m = r.metrics
            rows.append(
                (
                    site,
                    time.strftime("%H:%M:%S", time.localtime(r.window_start / 1000)),
                    f"v{r.model_version}",
                    r.sources,
                    r.samples,
                    f"{m.get('drift_share') or 0:.2f}",
                    "yes" if m.get("dataset_drift") else "no",
                    "yes" if m.get("prediction_drift") else "no",
                    f"{m.get('mean_confidence') or 0:.3f}",
                )
            )
        shares[site] = reports[-1].metrics.get("drift_share") if reports else None
    return rows, shares


_REPORT_COLUMNS = [
    "site",
    "window",
    "model",
    "devices",
    "samples",
    "drift share",
    "dataset drift",
    "prediction drift",
    "confidence",
]


def _alerts_for(ws: Workspace, rules: set[str], since: int) -> list[AlertInfo]:
    page = monitors.list_alerts(ws, limit=100)
    found = [a for a in page.items if a.rule in rules and a.opened_at >= since]
    return [monitors.get_alert(ws, a.id) for a in found]


def run_closed_loop(
    stage: FleetStage,
    field: FieldData,
    models: DeployedModels,
    sources: FleetSources,
    *,
    drifts: dict[str, Drift] | None = None,
    window_s: int = WINDOW_S,
    timeout_s: float = 150.0,
) -> ClosedLoop:
    """Stage 8 on the fleet of stage 7 (devices on its good release); prints each hop."""
    from edgeloop.cli._demo import maintenance_pipeline
    from edgeloop.pipelines import Scheduler

    ws = stage.ws
    started = time.perf_counter()
    loop = ClosedLoop()
    drifts = DRIFTS if drifts is None else drifts
    good = stage.releases["good"]
    sources.sketching = True
    names = _setup_monitors(ws, window_s)
    window_ms = window_s * 1000
    loop.monitors = names
    rule_ids = {r.id for r in monitors.list_rules(ws) if r.monitor in names.values()}
    since = int(time.time() * 1000) // window_ms * window_ms
    console.print(
        f"monitors {', '.join(names.values())}: {MODEL} per site, windows of {window_s} s, "
        f"normalised Wasserstein per feature; rule '{RULE}' → notify, collect "
        f"{COLLECT} from opted-in devices, retrain {PIPELINE}"
    )
    with _ticking(ws):

        def steady() -> bool:
            return all(len(_ok_reports(ws, n, since)) >= 2 for n in names.values())

        stage.drive(timeout_s, until=steady, check_every=1.0)
        rows, loop.before = _report_rows(ws, names, since)
        table("monitors before drift (from sketches only)", _REPORT_COLUMNS, rows)

        drift_at = int(time.time() * 1000)
        for site, drift in drifts.items():
            field.set_drift(site, drift)
        console.print(
            "[bold]drift[/]: "
            + "; ".join(f"{site} {_describe(d)}" for site, d in drifts.items())
            + f"; {', '.join(s for s in SITES if s not in drifts)} unchanged"
        )

        def alerted() -> bool:
            alerts = _alerts_for(ws, rule_ids, drift_at)
            if not {names[s] for s in drifts} <= {a.evidence.get("monitor") for a in alerts}:
                return False
            return all(
                a.actions and all(x.status not in ("pending", "running") for x in a.actions)
                for a in alerts
            )

        stage.drive(timeout_s, until=alerted, check_every=1.0)
        rows, loop.after = _report_rows(ws, names, drift_at // window_ms * window_ms)
        table("monitors after drift", _REPORT_COLUMNS, rows)
        loop.alerts = _alerts_for(ws, rule_ids, drift_at)
    for alert in loop.alerts:
        evidence = alert.evidence
        console.print(
            f"alert {alert.id} ({alert.subject}): {alert.when}, value {alert.value or 0:.2f}; "
            f"evidence reports {evidence.get('reports')}, "
            f"{len(evidence.get('drifted_features') or [])} drifted features"
        )
        for action in alert.actions:
            console.print(f"  {action.kind}: {action.status} {action.result or action.error}")
    collection_ids = [
        str(x.result["collection"])
        for a in loop.alerts
        for x in a.actions
        if x.kind == "collect" and x.status == "succeeded"
    ]
    if not collection_ids:
        console.print("[red]no data collection was requested: the loop stops here[/]")
        loop.seconds = time.perf_counter() - started
        return loop

    def uploaded() -> bool:
        infos = [get_collection(ws, c) for c in collection_ids]
        return all(i.state != "open" or i.done >= i.chosen for i in infos)

    stage.drive(60.0, until=uploaded, check_every=0.5)
    for collection_id in collection_ids:
        info = close_collection(ws, collection_id, actor="edgeloop demo")
        loop.collections.append(info)
        console.print(
            f"collection {info.id}: {info.done}/{info.chosen} opted-in devices, {info.rows} "
            f"windows → {info.uri or 'no version'} ({info.state_reason})"
        )
    console.print(f"retraining: the alerts queued {PIPELINE}; the scheduler runs it")
    scheduler = Scheduler(ws, {PIPELINE: maintenance_pipeline()}, holder="edgeloop-demo")
    runs: list[Any] = []
    worker = threading.Thread(target=lambda: runs.extend(scheduler.tick()), daemon=True)
    worker.start()
    stage.drive(600.0, until=lambda: not worker.is_alive(), check_every=0.5)
    worker.join()
    scheduler.release()
    run = next((r for r in runs if r.pipeline == PIPELINE), None)
    loop.pipeline_run = run
    if run is None:
        console.print(f"[red]no run of {PIPELINE} was queued: the loop stops here[/]")
        loop.seconds = time.perf_counter() - started
        return loop
    kinds = sorted(run.reasons)
    console.print(
        f"pipeline run {run.id} ({', '.join(kinds)} trigger): "
        + ", ".join(f"{s.name} {s.status}" for s in run.steps)
    )
    produced = run.lineage.get("produced", {}).get("model_version") or []
    if run.status != "succeeded" or not produced:
        console.print(f"[red]the pipeline did not register a model ({run.error})[/]")
        loop.seconds = time.perf_counter() - started
        return loop
    loop.version = int(str(produced[0]).rsplit("/", 1)[1])
    release = ensure_release(ws, loop.version)
    loop.release = release
    console.print(f"[bold]canary[/] of the retrained {release.uri} ({release.id})")
    loop.rollout = stage.rollout("retrained", release, CANARY_POLICY)
    stage.show("retrained")
    before_model, before_predict = models.get(int(good.model_version))
    after_model, after_predict = models.get(loop.version)
    for site in SITES:
        loop.accuracy[site] = (
            field.accuracy(site, before_model, before_predict),
            field.accuracy(site, after_model, after_predict),
        )
    loop.seconds = time.perf_counter() - started
    return loop


def _describe(drift: Drift) -> str:
    parts = []
    if drift.gain != 1.0:
        parts.append(f"sensor gain x{drift.gain:g}")
    if drift.temperature_shift_c:
        parts.append(f"{drift.temperature_shift_c:+g} °C")
    if drift.new_machine_type:
        parts.append(f"new machine type {drift.new_machine_type}")
    return ", ".join(parts) or "none"


def summary_rows(
    loop: ClosedLoop, drifts: dict[str, Drift] | None = None
) -> list[tuple[object, ...]]:
    """The loop's figures per site: drift share before and after, accuracy before and after."""
    drifts = DRIFTS if drifts is None else drifts
    rows: list[tuple[object, ...]] = []
    for site in SITES:
        before, after = loop.accuracy.get(site, (float("nan"), float("nan")))
        rows.append(
            (
                site,
                _describe(drifts[site]) if site in drifts else "none",
                _share(loop.before.get(site)),
                _share(loop.after.get(site)),
                f"{before:.3f}",
                f"{after:.3f}",
            )
        )
    return rows


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
