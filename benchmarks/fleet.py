"""Fleet benchmark: simulated devices polling one ``edgeloop server``.

1. Start ``edgeloop server`` (subprocess, auth on, ``--workers 2`` uvicorn processes, no
   access log, reconciler every second) on a loopback port, on SQLite, then on PostgreSQL
   when ``EDGELOOP_BENCH_PG_URL`` (default: the Makefile's test database) answers: the
   benchmark makes a schema of its own there and drops it at the end.
2. Enroll N devices (default 5,000) with a pre-shared token, from ``--clients`` client
   processes, with the fleet simulator (``edgeloop.fleet._simulator.DeviceFleet``).
3. Check-in load at increasing target rates, open loop: each device sends its heartbeat
   check-in (its own device token, the body the simulator sends) every ``N / rate`` seconds
   (+-10 % jitter). These phases use a lean HTTP/1.1 keep-alive client on loopback (the
   simulator's httpx client would need more CPU than the server on a 2-core machine).
   Latency is timed from the moment the check-in was due, so client-side queueing counts.
   The sustained rate is the highest achieved rate that is >= 95 % of its target with
   p99 < 100 ms and no errors. The server's CPU time per check-in (all its processes, from
   ``/proc``) is reported per phase: unlike the rates, it hardly depends on what else runs.
4. A 4-wave rollout (1, 10, 50, 100 %) with no bake time to every device, by the full
   simulator (download, verify, install, self-test, report) polling every
   ``--rollout-poll`` seconds: time until completed (after a first rollout that puts every
   device on a known release); then roll it back. Each simulated device records when it
   first found an assignment in a check-in answer; the rollback's *reach* (p50/p95/max, in
   seconds and poll intervals) is the time from the rollback request until then, which is
   what the target measures. Also reported: the time until the server has a report from
   every device about the rollback, and until every device is back on its previous release
   (its whole update flow), and the check-ins/s the simulator achieved in each rollout phase
   against the ``N / poll`` its devices should make (did the clients keep up?).

Targets (2-core machine): >= 1,000 check-ins/s at p99 < 100 ms with 5,000 devices; a rollback
reaches every device of the rollout within two polling intervals. ``--check`` exits 1 when a
target is missed. Results: ``benchmarks/results/fleet.json``. Everything runs on 127.0.0.1
and stops by itself (every wait has a deadline).

Run::

    .venv/bin/python benchmarks/fleet.py                      # 5,000 devices, ~10 minutes
    .venv/bin/python benchmarks/fleet.py --devices 1000 --duration 10 --no-postgres
    .venv/bin/python benchmarks/fleet.py --check              # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
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
HOST = "127.0.0.1"
CHECKIN = "/api/v1/device/checkin"
TIMEOUT_S = 30.0
"""No single request, nor any wait for a client process, lasts longer than this."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999) - 1))], 3)

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 3)}


# ---- the lean check-in client ----------------------------------------------------------------


class Heartbeats:
    """Open-loop heartbeat check-ins of many devices over a pool of keep-alive connections."""

    def __init__(self, port: int, tokens: list[str], body: dict[str, Any], conns: int = 64):
        data = json.dumps(body, separators=(",", ":")).encode()
        self.port, self.conns = port, conns
        self.requests = [
            (
                f"POST {CHECKIN} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
            for token in tokens
        ]
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.done = 0

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(HOST, self.port), TIMEOUT_S)

    async def _exchange(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> int:
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(head[9:12])

    async def _one(self, pool: asyncio.Queue[Any], i: int, due: float) -> None:
        conn = await pool.get()
        try:
            for attempt in (0, 1):  # a kept-alive connection the server closed: once more
                try:
                    status = await asyncio.wait_for(
                        self._exchange(conn, self.requests[i]), TIMEOUT_S
                    )
                    break
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    conn[1].close()
                    conn = await self._connect()
                    if attempt:
                        self._error(type(exc).__name__)
                        return
                except TimeoutError:
                    conn[1].close()
                    conn = await self._connect()
                    self._error("timeout")
                    return
            if status == 200:
                self.done += 1
                self.latencies.append((time.perf_counter() - due) * 1000.0)
            else:
                self._error(f"http {status}")
        finally:
            pool.put_nowait(conn)

    async def run(self, interval: float, duration: float, *, seed: int = 0) -> float:
        """Each device checks in every ``interval`` s (+-10 %) for ``duration`` s; the
        seconds it took."""
        pool: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(self.conns):
            pool.put_nowait(await self._connect())
        rng = random.Random(seed)
        start = time.perf_counter()
        end = start + duration
        pending: set[asyncio.Task[None]] = set()

        async def device(i: int) -> None:
            due = start + rng.uniform(0, interval)
            while due < end:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                task = asyncio.create_task(self._one(pool, i, due))
                pending.add(task)
                task.add_done_callback(pending.discard)
                due += interval * rng.uniform(0.9, 1.1)

        await asyncio.gather(*(device(i) for i in range(len(self.requests))))
        if pending:
            await asyncio.wait(pending, timeout=TIMEOUT_S)
        elapsed = min(time.perf_counter(), end) - start
        while not pool.empty():
            pool.get_nowait()[1].close()
        return elapsed


# ---- client processes -----------------------------------------------------------------------


def _wait_for(flag: Path, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while not flag.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _worker(
    url: str,
    port: int,
    token: str,
    first: int,
    count: int,
    plan: list[dict[str, Any]],
    control: Path,
    out: Any,
) -> None:
    """Enroll ``count`` devices, then run each phase of ``plan`` when the parent says go;
    send the stats of each phase."""
    from edgeloop.fleet._simulator import DeviceFleet

    fleet = DeviceFleet(
        url,
        devices=count,
        first_index=first,
        seed=0,
        telemetry=False,
        concurrency=256,
        id_prefix="bench",
    )

    async def main() -> None:
        started = time.perf_counter()
        statuses = await fleet.enroll_all(token)
        out.put(("enrolled", statuses, time.perf_counter() - started))
        devices = [d for d in fleet.devices if d.token]
        body = {"firmware": fleet.firmware, "slots": {"a": None, "b": None}, "active": None}
        for phase in plan:
            if not _wait_for(control / f"go-{phase['name']}", 900):
                return
            if phase["kind"] == "heartbeats":
                load = Heartbeats(port, [d.token for d in devices], body)
                interval = phase["devices"] / phase["rate"]  # the same for every device
                elapsed = await load.run(interval, phase["duration"], seed=first)
                stats = {"checkins": load.done, "seconds": elapsed, "errors": load.errors}
                out.put((phase["name"], stats, load.latencies))
                continue
            fleet.poll_interval = phase["poll"]
            fleet.jitter = phase["poll"] * 0.1
            fleet.reset_stats()
            flag = control / phase["name"]
            await fleet.run(phase["timeout"], until=flag.exists)
            seen = [[*key, times] for key, times in fleet.first_seen.items()]
            out.put((phase["name"], fleet.stats().to_dict(), fleet.latencies, seen))

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


def _start_server(
    env: dict[str, str], port: int, workers: int, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [str(ROOT / ".venv/bin/edgeloop"), "server", "--host", HOST, "--port", str(port)]
    cmd += ["--auth", "--reconcile-every", "1", "--workers", str(workers), "--no-access-log"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=sink, stderr=sink)
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"edgeloop server did not start: see {log}")


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants (Linux ``/proc``; 0 elsewhere)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, IndexError, ValueError):
            continue
    return total


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


def _collect(queue: Any, procs: list[Any], name: str) -> list[Any]:
    parts = []
    for _ in procs:
        part = queue.get(timeout=900)
        if part[0] != name:
            raise RuntimeError(f"expected the results of {name!r}, got {part[0]!r}")
        parts.append(part)
    return parts


def run_backend(name: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    url = f"http://{HOST}:{port}"
    admin, enroll, releases = _prepare(env)
    log = Path(env["EDGELOOP_HOME"]) / "server.log"
    proc = _start_server(env, port, args.server_workers, log)
    control = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    n, clients = args.devices, args.clients
    poll = args.rollout_poll
    plan: list[dict[str, Any]] = [
        # every device checks in once first (its first check-in stores its inventory)
        {"name": "warm-up", "kind": "heartbeats", "rate": min(500.0, n / 2), "duration": 2.0},
    ]
    plan += [
        {"name": f"load-{r:g}", "kind": "heartbeats", "rate": r, "duration": args.duration}
        for r in args.rates
    ]
    for phase in plan:
        phase["devices"] = n
    plan += [
        {"name": name, "kind": "fleet", "poll": poll, "timeout": args.timeout * 1.5}
        for name in ("baseline", "rollout", "rollback")
    ]
    plan[0]["duration"] = max(2.0, n / plan[0]["rate"] * 1.2)
    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue()
    share = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    procs = []
    first = 0
    for count in share:
        p = ctx.Process(
            target=_worker, args=(url, port, enroll, first, count, plan, control, queue)
        )
        p.start()
        procs.append(p)
        first += count
    result: dict[str, Any] = {
        "backend": name,
        "devices": n,
        "client_processes": clients,
        "server_workers": args.server_workers,
        "phases": [],
    }
    try:
        enrolled = _collect(queue, procs, "enrolled")
        result["enroll_s"] = round(max(e[2] for e in enrolled), 2)
        result["enrolled"] = sum(e[1].get("accepted", 0) for e in enrolled)
        for phase in plan:
            if phase["kind"] != "heartbeats":
                continue
            cpu = _cpu_seconds(proc.pid)
            (control / f"go-{phase['name']}").touch()
            parts = _collect(queue, procs, phase["name"])
            cpu = _cpu_seconds(proc.pid) - cpu
            checkins = sum(part[1]["checkins"] for part in parts)
            seconds = max(part[1]["seconds"] for part in parts)
            errors: dict[str, int] = {}
            for part in parts:
                for kind, count in part[1]["errors"].items():
                    errors[kind] = errors.get(kind, 0) + count
            row = {
                "phase": phase["name"],
                "target_per_s": round(phase["rate"]),
                "achieved_per_s": round(checkins / seconds, 1) if seconds else 0.0,
                "latency_ms": _percentiles([x for part in parts for x in part[2]]),
                "errors": errors,
                "server_cpu_ms_per_checkin": round(cpu / checkins * 1000, 3) if checkins else None,
            }
            print(name, row, flush=True)
            if phase["name"] != "warm-up":
                result["phases"].append(row)
        ok = [
            p
            for p in result["phases"]
            if p["achieved_per_s"] >= 0.95 * p["target_per_s"]
            and p["latency_ms"]["p99"] < P99_TARGET_MS
            and not p["errors"]
        ]
        result["sustained_checkins_per_s"] = max((p["achieved_per_s"] for p in ok), default=0.0)
        costs = sorted(
            p["server_cpu_ms_per_checkin"]
            for p in result["phases"]
            if p["server_cpu_ms_per_checkin"] is not None
        )
        result["server_cpu_ms_per_checkin_median"] = costs[len(costs) // 2] if costs else None
        _rollouts(url, admin, releases, n, poll, args, control, queue, procs, result, proc.pid)
    finally:
        for phase in plan:
            (control / f"go-{phase['name']}").touch()
            (control / phase["name"]).touch()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.terminate()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(control, ignore_errors=True)
    return result


def _rollout_body(release: str, group: str) -> dict[str, Any]:
    return {
        "release": release,
        "group": group,
        "waves": "1,10,50,100",
        "bake": 0,
        "max_failure": "5%",
        "min_success": "95%",
    }


def _cpu_now(server: int, procs: list[Any]) -> tuple[float, float]:
    """CPU seconds so far of the server (all its processes) and of the client processes."""
    return _cpu_seconds(server), sum(_cpu_seconds(p.pid) for p in procs)


def _fleet_phase(
    queue: Any,
    procs: list[Any],
    name: str,
    n: int,
    poll: float,
    server: int,
    cpu: tuple[float, float],
) -> tuple[dict[str, Any], dict[tuple[str, str, bool], dict[str, float]]]:
    """The full simulator's check-ins in one phase (did the clients keep up with ``n / poll``
    check-ins/s?), CPU per request of the server and the clients (``cpu``: their CPU seconds
    when the phase began), and when each device first saw each assignment
    (``time.time()``)."""
    parts = _collect(queue, procs, name)
    server_cpu, client_cpu = (b - a for a, b in zip(cpu, _cpu_now(server, procs), strict=True))
    checkins = sum(part[1]["checkins"] for part in parts)
    seconds = max(part[1]["elapsed_s"] for part in parts)
    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    seen: dict[tuple[str, str, bool], dict[str, float]] = {}
    for part in parts:
        for key, count in part[1]["requests"].items():
            requests[key] = requests.get(key, 0) + count
        for key, count in part[1]["errors"].items():
            errors[key] = errors.get(key, 0) + count
        for rollout, release, rollback, times in part[3]:
            seen.setdefault((rollout, release, rollback), {}).update(times)
    row = {
        "seconds": round(seconds, 2),
        "checkins": checkins,
        "checkins_per_s": round(checkins / seconds, 1) if seconds else 0.0,
        "heartbeat_rate_per_s": round(n / poll, 1),
        "checkin_latency_ms": _percentiles([x for part in parts for x in part[2]]),
        "requests": requests,
        "errors": errors,
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
    }
    total = sum(requests.values())
    if total:
        row["server_cpu_ms_per_request"] = round(server_cpu / total * 1000, 3)
        row["client_cpu_ms_per_request"] = round(client_cpu / total * 1000, 3)
    return row, seen


def _reach(times: dict[str, float], expected: int, since: float, poll: float) -> dict[str, Any]:
    """How long after ``since`` (``time.time()``) the devices first saw an assignment."""
    delays = [max(0.0, t - since) for t in times.values()]
    seconds = _percentiles(delays)
    return {
        "devices": expected,
        "reached": len(delays),
        "seconds": {k: seconds[k] for k in ("p50", "p95", "max")},
        "poll_intervals": {k: round(seconds[k] / poll, 2) for k in ("p50", "p95", "max")},
    }


def _rollouts(
    url: str,
    admin: str,
    releases: list[str],
    n: int,
    poll: float,
    args: argparse.Namespace,
    control: Path,
    queue: Any,
    procs: list[Any],
    result: dict[str, Any],
    server: int,
) -> None:
    """Every device to releases[0], then a timed 4-wave rollout of releases[1], then its
    rollback, while the full simulator polls every ``poll`` seconds. For the last two: when
    each device first found the assignment in a check-in answer (reach), and when the
    rollout completed / every device reported being back on its previous release."""
    group = f"bench-{uuid.uuid4().hex[:6]}"
    members = [f"bench-{i:05d}" for i in range(n)]
    _api(url, admin, "POST", "/device-groups", {"name": group, "members": members})
    cpu = _cpu_now(server, procs)
    (control / "go-baseline").touch()
    first = _api(url, admin, "POST", "/rollouts", _rollout_body(releases[0], group))
    started = time.perf_counter()
    state = _wait_rollout(url, admin, first["id"], args.timeout)
    result["rollout_to_release_1"] = {
        "state": state,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (control / "baseline").touch()
    phase = _fleet_phase(queue, procs, "baseline", n, poll, server, cpu)
    result["rollout_to_release_1"]["fleet"] = phase[0]
    print(result["backend"], "baseline", result["rollout_to_release_1"], flush=True)

    cpu = _cpu_now(server, procs)
    (control / "go-rollout").touch()
    wall = time.time()
    second = _api(url, admin, "POST", "/rollouts", _rollout_body(releases[1], group))
    started = time.perf_counter()
    state = _wait_rollout(url, admin, second["id"], args.timeout)
    seconds = time.perf_counter() - started
    (control / "rollout").touch()
    fleet, seen = _fleet_phase(queue, procs, "rollout", n, poll, server, cpu)
    result["rollout_4_waves"] = {
        "state": state,
        "seconds": round(seconds, 2),
        "poll_interval_s": poll,
        "poll_intervals": round(seconds / poll, 2),
        "reach": _reach(seen.get((second["id"], releases[1], False), {}), n, wall, poll),
        "fleet": fleet,
    }
    print(result["backend"], "rollout", result["rollout_4_waves"], flush=True)

    rows = _api(url, admin, "GET", f"/rollouts/{second['id']}/devices")
    expected = sum(  # the devices start_rollback sends back (the others are back already)
        1
        for r in rows
        if r["state"] not in ("failed", "rolled-back")
        and r["previous_release"] not in (None, releases[1])
    )
    cpu = _cpu_now(server, procs)
    (control / "go-rollback").touch()
    wall = time.time()
    started = time.perf_counter()
    _api(url, admin, "POST", f"/rollouts/{second['id']}/rollback", {"reason": "bench"})
    api_s = time.perf_counter() - started
    reported, back = _wait_back(url, admin, second["id"], args.timeout, started)
    (control / "rollback").touch()
    fleet, seen = _fleet_phase(queue, procs, "rollback", n, poll, server, cpu)
    reach = _reach(seen.get((second["id"], releases[0], True), {}), expected, wall, poll)

    def intervals(value: float | None) -> float | None:
        return round(value / poll, 2) if value is not None else None

    result["rollback"] = {
        "poll_interval_s": poll,
        "api_s": round(api_s, 3),
        "reach": reach,
        "reached_all": reach["reached"] >= expected,
        "reported_all_s": round(reported, 2) if reported is not None else None,
        "reported_all_poll_intervals": intervals(reported),
        "all_back": back is not None,
        "all_back_s": round(back, 2) if back is not None else None,
        "all_back_poll_intervals": intervals(back),
        "fleet": fleet,
    }
    print(result["backend"], "rollback", result["rollback"], flush=True)


def _wait_rollout(url: str, admin: str, rollout: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = _api(url, admin, "GET", f"/rollouts/{rollout}")["state"]
        if state in ("completed", "rolled-back", "cancelled", "paused"):
            return str(state)
        time.sleep(0.25)
    return f"timeout ({state})"


def _wait_back(
    url: str, admin: str, rollout: str, timeout: float, started: float
) -> tuple[float | None, float | None]:
    """Seconds from ``started`` until the server has a report from every device of the
    rollout about the rollback (it is working on it, or was already back), and until every
    one is back on its previous release (rolled back, or failed); None for what did not
    happen in time. (When each device *received* the rollback is measured on the devices.)
    Polls the rollout's per-state counts, not its device list (cheap for the server)."""
    deadline = time.monotonic() + timeout
    reached: float | None = None
    while time.monotonic() < deadline:
        counts: dict[str, int] = _api(url, admin, "GET", f"/rollouts/{rollout}")["counts"]
        if reached is None and counts and not counts.get("assigned"):
            reached = time.perf_counter() - started
        if counts and set(counts) <= {"rolled-back", "failed"}:
            done = time.perf_counter() - started
            return (reached if reached is not None else done), done
        time.sleep(0.25)
    return reached, None


# ---- PostgreSQL -----------------------------------------------------------------------------


def _pg_schema() -> tuple[str, str] | None:
    """A fresh schema on the benchmark's PostgreSQL: (URL using it, schema), or None."""
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


def _drop_pg_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


# ---- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--server-workers", type=int, default=2, help="edgeloop server --workers")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument(
        "--rates", default="250,500,750,1000,1250", help="check-ins/s of the load phases"
    )
    parser.add_argument(
        "--rollout-poll", type=float, default=None, help="device poll interval (s) in rollouts"
    )
    parser.add_argument("--quick", action="store_true", help="500 devices, short phases")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    args.timeout = 600.0
    if args.quick:
        args.devices = min(args.devices, 500)
        args.duration = min(args.duration, 5.0)
        args.rates = [250.0, 500.0, 1000.0]
        args.timeout = 180.0
    if args.rollout_poll is None:  # the full simulator's check-ins at about 500/s at most
        args.rollout_poll = max(2.0, args.devices / 500)
    results: dict[str, Any] = {
        "machine_cpus": os.cpu_count(),
        "command": " ".join(["benchmarks/fleet.py", *sys.argv[1:]]),
        "backends": [],
    }
    homes: list[str] = []
    schema: str | None = None
    try:
        backends: list[tuple[str, dict[str, str]]] = []
        if not args.no_sqlite:
            homes.append(tempfile.mkdtemp(prefix="fleet-bench-sqlite-"))
            backends.append(("sqlite", {"EDGELOOP_HOME": homes[-1]}))
        if not args.no_postgres and (pg := _pg_schema()) is not None:
            schema = pg[1]
            homes.append(tempfile.mkdtemp(prefix="fleet-bench-pg-"))
            backends.append(("postgresql", {"EDGELOOP_HOME": homes[-1], "EDGELOOP_DB_URL": pg[0]}))
        for name, env in backends:
            results["backends"].append(run_backend(name, env, args))
    finally:
        if schema is not None:
            _drop_pg_schema(schema)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    missed = []
    for b in results["backends"]:
        if b.get("sustained_checkins_per_s", 0) < RATE_TARGET:
            missed.append(f"{b['backend']}: sustained {b.get('sustained_checkins_per_s')} /s")
        rollback = b.get("rollback", {})
        reach = rollback.get("reach", {})
        if not rollback.get("reached_all") or reach["poll_intervals"]["max"] > 2:
            missed.append(f"{b['backend']}: rollback reach {reach}")
    for line in missed:
        print("target missed:", line)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
