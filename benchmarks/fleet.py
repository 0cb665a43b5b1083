"""Fleet benchmark: simulated devices polling one ``edgeloop server``.

1. Start ``edgeloop server`` (subprocess, auth on, reconciler every second) on a loopback
   port, on SQLite (then PostgreSQL when ``EDGELOOP_BENCH_PG_URL`` or the Makefile's URL
   answers; a fresh schema is made and dropped).
2. Enroll N devices (default 5,000) with a pre-shared token, from ``--workers`` client
   processes (one Python process cannot drive the rate alone: see the results' ``clients``).
3. Check-in load at increasing target rates (open loop: each device polls every
   ``N / rate`` seconds, telemetry off); the sustained rate is the highest whose achieved
   rate is >= 95 % of the target with p99 < 100 ms.
4. A 4-wave rollout (1, 10, 50, 100 %) with no bake time to every device: time until
   completed; then roll it back: time until every device of the rollout is back on its
   previous release, in poll intervals.

Targets (2-core machine): >= 1,000 check-ins/s at p99 < 100 ms with 5,000 devices; a rollback
reaches every device of the rollout within two polling intervals. ``--check`` exits 1 when a
target is missed. Results: ``benchmarks/results/fleet.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "fleet.json"
PG_URL = os.environ.get(
    "EDGELOOP_BENCH_PG_URL", "postgresql+psycopg://edgeloop:edgeloop@127.0.0.1:5432/edgeloop_test"
)
P99_TARGET_MS = 100.0
RATE_TARGET = 1000.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999) - 1))], 3)

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 3)}


# ---- client processes -----------------------------------------------------------------------


def _worker(
    url: str,
    token: str,
    first: int,
    count: int,
    plan: list[dict[str, Any]],
    control: Path,
    out: Any,
) -> None:
    """Enroll ``count`` devices, then run each phase of ``plan``; send stats per phase."""
    import asyncio

    from edgeloop.fleet._simulator import DeviceFleet

    fleet = DeviceFleet(
        url,
        devices=count,
        first_index=first,
        seed=0,
        telemetry=False,
        concurrency=512,
        id_prefix="bench",
    )

    async def main() -> None:
        started = time.perf_counter()
        statuses = await fleet.enroll_all(token)
        out.put(("enrolled", statuses, time.perf_counter() - started))
        for phase in plan:
            fleet.poll_interval = phase["poll"]
            fleet.jitter = phase["poll"] * 0.1
            fleet.telemetry = phase.get("telemetry", False)
            fleet.reset_stats()
            flag = control / phase["name"]
            await fleet.run(
                phase.get("duration"), until=flag.exists if phase.get("until") else None
            )
            stats = fleet.stats().to_dict()
            out.put((phase["name"], stats, list(fleet.latencies)))

    asyncio.run(main())


# ---- the server -----------------------------------------------------------------------------


def _prepare(env: dict[str, str]) -> tuple[str, str, list[str]]:
    """Admin token, enrollment token and two releases in the server's workspace."""
    os.environ.update(env)
    from tests.fleet._fleet import register_version  # a tiny int8 model with an edge export

    from edgeloop.config import load_settings
    from edgeloop.fleet import _devices, _releases
    from edgeloop.governance import ensure_admin_token
    from edgeloop.workspace import Workspace

    ws = Workspace.open(load_settings())
    try:
        admin = ensure_admin_token(ws) or ""
        _, enroll = _devices.create_enrollment_token(ws, "bench")
        releases = []
        for seed in (1, 2):
            version = register_version(ws, "bench-model", seed=seed)
            releases.append(_releases.create_release(ws, "bench-model", version, "rpi4").id)
    finally:
        ws.close()
    return admin, enroll, releases


def _start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [str(ROOT / ".venv/bin/edgeloop"), "server", "--port", str(port), "--auth"]
    cmd += ["--reconcile-every", "1"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=sink, stderr=sink)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"edgeloop server did not start: see {log}")


def _api(url: str, admin: str, method: str, path: str, body: Any = None) -> Any:
    import httpx

    r = httpx.request(
        method,
        f"{url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {admin}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


def run_backend(name: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    admin, enroll, releases = _prepare(env)
    log = Path(env["EDGELOOP_HOME"]) / "server.log"
    proc = _start_server(env, port, log)
    control = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    n, workers = args.devices, args.workers
    rates = [r for r in args.rates if r <= n * 20]
    plan: list[dict[str, Any]] = [
        {"name": f"load-{r}", "poll": n / r, "duration": args.phase_s} for r in rates
    ]
    poll = args.rollout_poll
    plan.append({"name": "rollout", "poll": poll, "until": True, "telemetry": False})
    plan.append({"name": "rollback", "poll": poll, "until": True})
    queue: Any = mp.get_context("spawn").Queue()
    share = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    procs = []
    first = 0
    for count in share:
        p = mp.get_context("spawn").Process(
            target=_worker, args=(url, enroll, first, count, plan, control, queue)
        )
        p.start()
        procs.append(p)
        first += count
    result: dict[str, Any] = {"backend": name, "devices": n, "clients": workers, "phases": []}
    try:
        enrolled = [queue.get(timeout=600) for _ in procs]
        result["enroll_s"] = round(max(e[2] for e in enrolled), 2)
        result["enrolled"] = sum(e[1].get("accepted", 0) for e in enrolled)
        for phase in plan[:-2]:
            parts = [queue.get(timeout=600) for _ in procs]
            latencies = [x for part in parts for x in part[2]]
            achieved = sum(part[1]["checkins_per_s"] for part in parts)
            target = n / phase["poll"]
            errors = sum(sum(part[1]["errors"].values()) for part in parts)
            result["phases"].append(
                {
                    "target_per_s": round(target),
                    "achieved_per_s": round(achieved, 1),
                    "latency_ms": _percentiles(latencies),
                    "errors": errors,
                }
            )
            print(name, result["phases"][-1], flush=True)
        ok = [
            p
            for p in result["phases"]
            if p["achieved_per_s"] >= 0.95 * p["target_per_s"]
            and p["latency_ms"]["p99"] < P99_TARGET_MS
            and not p["errors"]
        ]
        result["sustained_checkins_per_s"] = max((p["achieved_per_s"] for p in ok), default=0.0)
        # rollout: every device to release[0] in 4 waves, no bake
        group = f"bench-{uuid.uuid4().hex[:6]}"
        members = [f"bench-{i:05d}" for i in range(n)]
        _api(url, admin, "POST", "/device-groups", {"name": group, "members": members})
        first_rollout = _api(
            url,
            admin,
            "POST",
            "/rollouts",
            {
                "release": releases[0],
                "group": group,
                "waves": "1,10,50,100",
                "bake": 0,
                "max_failure": "5%",
                "min_success": "95%",
            },
        )
        started = time.perf_counter()
        state = _wait_rollout(url, admin, first_rollout["id"], args.timeout)
        result["rollout_to_release_1"] = {
            "state": state,
            "seconds": round(time.perf_counter() - started, 2),
        }
        second = _api(
            url,
            admin,
            "POST",
            "/rollouts",
            {
                "release": releases[1],
                "group": group,
                "waves": "1,10,50,100",
                "bake": 0,
                "max_failure": "5%",
                "min_success": "95%",
            },
        )
        started = time.perf_counter()
        state = _wait_rollout(url, admin, second["id"], args.timeout)
        result["rollout_4_waves"] = {
            "state": state,
            "seconds": round(time.perf_counter() - started, 2),
            "poll_interval_s": poll,
        }
        print(name, "rollout", result["rollout_4_waves"], flush=True)
        (control / "rollout").touch()
        [queue.get(timeout=600) for _ in procs]
        started = time.perf_counter()
        _api(url, admin, "POST", f"/rollouts/{second['id']}/rollback", {"reason": "bench"})
        back = _wait_back(url, admin, second["id"], args.timeout)
        seconds = time.perf_counter() - started
        result["rollback"] = {
            "all_back": back,
            "seconds": round(seconds, 2),
            "poll_intervals": round(seconds / poll, 2),
        }
        print(name, "rollback", result["rollback"], flush=True)
        (control / "rollback").touch()
        [queue.get(timeout=600) for _ in procs]
    finally:
        (control / "rollout").touch()
        (control / "rollback").touch()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.terminate()
        proc.terminate()
        proc.wait(30)
    return result


def _wait_rollout(url: str, admin: str, rollout: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = _api(url, admin, "GET", f"/rollouts/{rollout}")["state"]
        if state in ("completed", "rolled-back", "cancelled", "paused"):
            return str(state)
        time.sleep(0.25)
    return f"timeout ({state})"


def _wait_back(url: str, admin: str, rollout: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _api(url, admin, "GET", f"/rollouts/{rollout}/devices")
        if rows and all(r["state"] in ("rolled-back", "failed") for r in rows):
            return True
        time.sleep(0.25)
    return False


def _pg_schema() -> tuple[str, str] | None:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_URL)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception as exc:  # no PostgreSQL here: say so in the results
        print(f"PostgreSQL not available ({exc}); skipping it", flush=True)
        return None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--quick", action="store_true", help="500 devices, short phases")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.phase_s = 10.0
    args.rates = [250, 500, 750, 1000, 1500]
    args.rollout_poll = 5.0
    args.timeout = 600.0
    if args.quick:
        args.devices = min(args.devices, 500)
        args.phase_s = 5.0
        args.rates = [250, 500, 1000]
        args.rollout_poll = 2.0
        args.timeout = 180.0
    results: dict[str, Any] = {"machine_cpus": os.cpu_count(), "backends": []}
    backends: list[tuple[str, dict[str, str], str | None]] = []
    home = tempfile.mkdtemp(prefix="fleet-bench-sqlite-")
    backends.append(("sqlite", {"EDGELOOP_HOME": home}, None))
    if not args.no_postgres and (pg := _pg_schema()) is not None:
        home_pg = tempfile.mkdtemp(prefix="fleet-bench-pg-")
        backends.append(("postgresql", {"EDGELOOP_HOME": home_pg, "EDGELOOP_DB_URL": pg[0]}, pg[1]))
    for name, env, _schema in backends:
        results["backends"].append(run_backend(name, env, args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    missed = []
    for b in results["backends"]:
        if b.get("sustained_checkins_per_s", 0) < RATE_TARGET:
            missed.append(f"{b['backend']}: sustained {b.get('sustained_checkins_per_s')} /s")
        if not b.get("rollback", {}).get("all_back") or b["rollback"]["poll_intervals"] > 2:
            missed.append(f"{b['backend']}: rollback {b.get('rollback')}")
    for line in missed:
        print("target missed:", line)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
