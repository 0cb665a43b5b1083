"""A simulated device fleet: thousands of agents in one process (asyncio, real HTTP).

Each :class:`SimulatedDevice` speaks the device side of ``docs/fleet-protocol.md`` like
``edgeloop-agent`` does: it enrolls with a pre-shared token, checks in every poll interval,
follows its assignment (download the manifest and signature, verify them with the fleet
public key, check the bundle fits, fetch only the files it lacks, report ``downloading,
downloaded, installing, verifying`` and then ``healthy`` or ``failed``/``rolled-back``), and
sends a telemetry window per interval. A share of the devices is faulty, with one failure
mode each, assigned deterministically from the seed:

=================== ==========================================================================
``crash-install``   dies while installing, restarts after ``restart_s``, reports ``failed``
                    then ``rolled-back`` with reason ``crash`` (the agent's recovery)
``corrupt-download`` a downloaded file has a flipped byte: ``verify_file`` refuses it,
                    ``failed`` with reason ``hash``
``self-test``       the model fails its self-test vectors on this hardware: ``failed`` then
                    ``rolled-back`` with reason ``self-test``
``inference``       installs fine, then its telemetry shows a high error rate
``offline``         stops checking in for periods (a few poll intervals at a time)
=================== ==========================================================================

The release-dependent modes (all but ``offline``) apply to every release unless
``faulty_when`` (a predicate on the verified manifest) says otherwise.

To keep 5,000 devices cheap, verification and files are shared in-process: every device
downloads the manifest and signature, but a manifest (with its signature) is verified once,
a file is fetched over HTTP and hash-checked once per URL and SHA-256 (the other devices
count the bytes as theirs), and the self-test runs once per release (the update flow is
:mod:`edgeloop.fleet._sim_update`); requests go over a lean keep-alive HTTP/1.1 client
(:mod:`edgeloop.fleet._sim_http`, about 0.3 ms of CPU per request). ``first_seen`` records
when each device first found each assignment in a check-in answer (a rollback's reach).

>>> stats = run_fleet("http://127.0.0.1:8080", devices=200, faulty=0.03,
...                   enrollment_token="ele_…", duration_s=60)  # doctest: +SKIP
>>> stats.checkins, stats.latency_ms["p99"]  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._sim_collect import SampleSource, answer_collection
from edgeloop.fleet._sim_device import (
    _LATENCY_SHAPE,
    API_PREFIX,
    FAILURE_MODES,
    LATENCY_EDGES,
    FailureMode,
    FleetStats,
    SimulatedDevice,
    _p95,
    _percentiles,
    _Transient,
)
from edgeloop.fleet._sim_http import HttpError, SimHttp, SimResponse
from edgeloop.fleet._sim_sketches import DataSource, SimSketches, device_tags
from edgeloop.fleet._sim_update import Shared, run_update
from edgeloop.fleet.bundle import load_public_key

__all__ = [
    "FAILURE_MODES",
    "DeviceFleet",
    "FailureMode",
    "FleetStats",
    "SimulatedDevice",
    "run_fleet",
]


class DeviceFleet:
    """``devices`` simulated devices talking to the server at ``server_url``.

    ``faulty`` is the share (0-1) of devices with a failure mode, spread over
    ``failure_modes`` in turn; ``poll_interval`` (seconds) replaces the server's, 0 checks in
    as fast as ``concurrency`` (the most requests in flight) allows; ``faulty_when`` limits
    the release-dependent failure modes to the releases whose manifest it accepts.
    ``collect_share`` of the devices (chosen from the seed) opt in to data collection and
    answer collection requests with the rows ``sample_source(device_id, tags, n, now_ms)``
    gives (see :mod:`edgeloop.fleet._sim_collect`).
    With ``data_source(device_id, tags, n, now_ms) -> (features, proba)``, a device running a
    release with a monitoring reference sketches each window's inferences on it and sends the
    sketch with its telemetry (see :mod:`edgeloop.fleet._sim_sketches`).

    >>> fleet = DeviceFleet("http://127.0.0.1:8080", devices=100, faulty=0.05, seed=1)
    >>> await fleet.enroll_all("ele_…"); await fleet.run(30.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        server_url: str,
        *,
        devices: int,
        faulty: float = 0.0,
        target: str = "rpi4",
        sites: Sequence[str] = ("plant-1", "plant-2", "plant-3"),
        seed: int = 0,
        poll_interval: float | None = None,
        jitter: float | None = None,
        concurrency: int = 256,
        failure_modes: Sequence[FailureMode] = FAILURE_MODES,
        faulty_when: Callable[[Mapping[str, Any]], bool] | None = None,
        telemetry: bool = True,
        telemetry_interval: float | None = None,
        restart_s: float | None = None,
        offline_for: tuple[float, float] = (3.0, 6.0),
        online_for: tuple[float, float] = (1.0, 3.0),
        id_prefix: str = "sim",
        first_index: int = 0,
        firmware: str = "1.4.2",
        timeout: float = 30.0,
        trace: bool = False,
        sample_source: SampleSource | None = None,
        data_source: DataSource | None = None,
        collect_share: float = 0.0,
    ) -> None:
        parts = urlsplit(server_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationFailed(f"server must be an http(s) URL, got {server_url!r}")
        if devices < 0:
            raise ValidationFailed(f"devices must be >= 0, got {devices}")
        if not 0.0 <= faulty <= 1.0:
            raise ValidationFailed(f"faulty must be a share between 0 and 1, got {faulty}")
        unknown = sorted(set(failure_modes) - set(FAILURE_MODES))
        if unknown or (faulty and not failure_modes):
            raise ValidationFailed(
                f"failure_modes must be among {', '.join(FAILURE_MODES)}, got {list(failure_modes)}"
            )
        if poll_interval is not None and poll_interval < 0:
            raise ValidationFailed("poll_interval must be >= 0 seconds")
        if concurrency < 1:
            raise ValidationFailed("concurrency must be >= 1")
        if not 0.0 <= collect_share <= 1.0:
            raise ValidationFailed(
                f"collect_share must be a share between 0 and 1, got {collect_share}"
            )
        self.sample_source = sample_source
        self.sketches = SimSketches(data_source)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.seed = seed
        self.poll_interval = poll_interval
        self.jitter = jitter
        self.concurrency = concurrency
        self.faulty_when = faulty_when
        self.telemetry = telemetry
        self.telemetry_interval = telemetry_interval
        self.restart_s = restart_s
        self.offline_for = offline_for
        self.online_for = online_for
        self.timeout = timeout
        self.trace = trace
        self.firmware = firmware
        self.server_poll_s = 30.0
        self.server_jitter_s = 0.0
        self.fleet_public_key: Ed25519PublicKey | None = None
        self.devices: list[SimulatedDevice] = []
        picker = random.Random(f"faulty:{seed}")
        n_faulty = round(devices * faulty)
        chosen = sorted(picker.sample(range(devices), n_faulty)) if n_faulty else []
        modes = {index: failure_modes[i % len(failure_modes)] for i, index in enumerate(chosen)}
        for i in range(devices):
            name = f"{id_prefix}-{first_index + i:05d}"
            secret = hashlib.sha256(f"edgeloop-sim:{seed}:{name}".encode()).digest()
            rng = random.Random(f"{seed}:{name}")
            site = sites[(first_index + i) % len(sites)] if sites else None
            attributes: dict[str, Any] = {"target": target, "firmware": firmware}
            if site is not None:
                attributes["site"] = site
            attributes["tags"] = {"sim": "true", "line": "ab"[(first_index + i) % 2]}
            self.devices.append(
                SimulatedDevice(
                    id=name,
                    target=target,
                    attributes=attributes,
                    key=Ed25519PrivateKey.from_private_bytes(secret),
                    rng=rng,
                    failure=modes.get(i),
                )
            )
        n_collect = round(devices * collect_share)
        for index in random.Random(f"collect:{seed}").sample(range(devices), n_collect):
            self.devices[index].collect = True  # opts in to data collection at enrollment
        self._shared = Shared()
        # (rollout, release, rollback) -> device id -> when (time.time()) the device first
        # found that assignment in a check-in answer; kept across reset_stats
        self.first_seen: dict[tuple[str, str, bool], dict[str, float]] = {}
        self._client: SimHttp | None = None
        self._limit: asyncio.Semaphore | None = None
        self._stop: asyncio.Event | None = None
        self.reset_stats()

    # ---- statistics -------------------------------------------------------------------------

    def reset_stats(self) -> None:
        """Start counting afresh (device state is kept)."""
        self.latencies: list[float] = []
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.reported: Counter[str] = Counter()
        self.failure_reasons: Counter[str] = Counter()
        self.telemetry_windows = 0
        self.samples_uploaded = 0
        self.bytes_downloaded = self.bytes_saved = self.bytes_fetched = 0
        self._started = time.perf_counter()

    def stats(self) -> FleetStats:
        """Counts since the fleet was made or :meth:`reset_stats` was last called."""
        elapsed = max(1e-9, time.perf_counter() - self._started)
        checkins = self.requests["checkin"]
        return FleetStats(
            devices=len(self.devices),
            faulty=dict(Counter(d.failure for d in self.devices if d.failure is not None)),
            enrolled=sum(1 for d in self.devices if d.token),
            elapsed_s=round(elapsed, 3),
            checkins=checkins,
            checkins_per_s=round(checkins / elapsed, 1),
            latency_ms=_percentiles(self.latencies),
            requests=dict(self.requests),
            errors=dict(self.errors),
            states=dict(self.reported),
            failures=dict(self.failure_reasons),
            releases=dict(Counter(d.release or "none" for d in self.devices)),
            telemetry_windows=self.telemetry_windows,
            bytes_downloaded=self.bytes_downloaded,
            bytes_saved=self.bytes_saved,
            bytes_fetched=self.bytes_fetched,
        )

    def device(self, device_id: str) -> SimulatedDevice:
        for dev in self.devices:
            if dev.id == device_id:
                return dev
        raise KeyError(device_id)

    # ---- HTTP -------------------------------------------------------------------------------

    def _http(self) -> SimHttp:
        if self._client is None:
            raise RuntimeError("the fleet has no open HTTP client (use enroll_all or run)")
        return self._client

    async def _open(self) -> bool:
        if self._client is not None:
            return False
        # asyncio primitives belong to one event loop: made afresh for each run
        self._limit = asyncio.Semaphore(self.concurrency)
        self._shared.locks.clear()
        self._client = SimHttp(self.origin, connections=self.concurrency, timeout=self.timeout)
        return True

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str = "",
        body: Mapping[str, Any] | None = None,
    ) -> SimResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert self._limit is not None
        async with self._limit:
            start = time.perf_counter()
            try:
                response = await self._http().request(
                    method, path, body=dict(body) if body is not None else None, headers=headers
                )
            except HttpError as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                self.errors[f"{kind}:{type(cause).__name__}"] += 1
                raise _Transient(str(exc)) from exc
            elapsed = (time.perf_counter() - start) * 1000.0
        self.requests[kind] += 1
        if kind == "checkin":
            self.latencies.append(elapsed)
        if response.status_code >= 500:
            self.errors[f"{kind}:{response.status_code}"] += 1
            raise _Transient(f"HTTP {response.status_code}")
        return response

    async def _device_call(
        self, dev: SimulatedDevice, kind: str, method: str, path: str, body: Any = None
    ) -> SimResponse:
        """A ``/device/...`` call; a refused token is collected again once (it rotates)."""
        response = await self._send(kind, method, path, token=dev.token, body=body)
        if response.status_code == 401 and await self._collect_token(dev):
            response = await self._send(kind, method, path, token=dev.token, body=body)
        return response

    # ---- enrollment -------------------------------------------------------------------------

    def _accept(self, dev: SimulatedDevice, answer: Mapping[str, Any]) -> None:
        key = answer.get("fleet_public_key")
        if isinstance(key, str) and key and self.fleet_public_key is None:
            self.fleet_public_key = load_public_key(key)
        dev.token = str(answer["device_token"])
        dev.status = "accepted"
        self._poll_settings(answer)

    def _poll_settings(self, answer: Mapping[str, Any]) -> None:
        poll, jitter = answer.get("poll_interval_s"), answer.get("jitter_s")
        if isinstance(poll, int | float) and not isinstance(poll, bool) and poll >= 0:
            self.server_poll_s = float(poll)
        if isinstance(jitter, int | float) and not isinstance(jitter, bool) and jitter >= 0:
            self.server_jitter_s = float(jitter)

    async def _collect_token(self, dev: SimulatedDevice) -> bool:
        timestamp = int(time.time() * 1000)
        body = {"timestamp": timestamp, "signature": dev.signature(timestamp)}
        path = f"{API_PREFIX}/devices/{quote(dev.id, safe='')}/token"
        response = await self._send("token", "POST", path, body=body)
        if response.status_code != 200:
            dev.status = "pending" if response.status_code == 403 else dev.status
            return False
        self._accept(dev, response.json())
        return True

    async def _enroll(self, dev: SimulatedDevice, enrollment_token: str | None) -> str:
        body: dict[str, Any] = {
            "id": dev.id,
            "public_key": dev.public_key,
            "attributes": dev.attributes,
        }
        if enrollment_token:
            body["enrollment_token"] = enrollment_token
        if dev.collect:
            body["data_collection"] = True
        response = await self._send("enroll", "POST", f"{API_PREFIX}/devices/enroll", body=body)
        if response.status_code not in (200, 201):
            dev.status = f"refused:{response.status_code}"
            return dev.status
        answer = response.json()
        self._poll_settings(answer)
        if answer.get("status") == "accepted" and answer.get("device_token"):
            self._accept(dev, answer)
        elif answer.get("status") == "accepted":
            await self._collect_token(dev)  # enrolled before: rotate and collect
        else:
            dev.status = str(answer.get("status", "pending"))
        return dev.status

    async def enroll_all(self, enrollment_token: str | None = None) -> dict[str, int]:
        """Enroll every device not yet enrolled (with a pre-shared token they are accepted at
        once); the count of devices per status (``accepted``, ``pending``, ``refused:409``)."""
        opened = await self._open()
        try:

            async def one(dev: SimulatedDevice) -> str:
                if dev.token:
                    return "accepted"
                for attempt in range(6):  # back off and retry, as the agent does
                    try:
                        return await self._enroll(dev, enrollment_token)
                    except _Transient:
                        await asyncio.sleep(0.1 * 2**attempt * dev.rng.uniform(0.5, 1.0))
                return "unreachable"

            statuses = await asyncio.gather(*(one(dev) for dev in self.devices))
        finally:
            if opened:
                await self._close()
        return dict(Counter(statuses))

    # ---- the check-in loop ------------------------------------------------------------------

    def interval(self) -> float:
        return self.server_poll_s if self.poll_interval is None else self.poll_interval

    def _next_delay(self, dev: SimulatedDevice) -> float:
        interval = self.interval()
        if self.jitter is not None:
            jitter = self.jitter
        elif self.poll_interval is None:
            jitter = self.server_jitter_s
        else:
            jitter = 0.1 * interval
        return max(0.0, interval + (dev.rng.uniform(-jitter, jitter) if jitter else 0.0))

    async def run(
        self,
        duration_s: float | None = None,
        *,
        until: Callable[[], bool | Awaitable[bool]] | None = None,
        check_every: float = 0.1,
    ) -> FleetStats:
        """Run every enrolled device's check-in loop for ``duration_s`` seconds, or until
        ``until()`` (sync or async) is true (whichever comes first); the stats."""
        if duration_s is None and until is None:
            raise ValidationFailed("run needs a duration_s or an until condition")
        opened = await self._open()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s if duration_s is not None else math.inf
        tasks = [asyncio.create_task(self._device_loop(dev)) for dev in self.devices if dev.token]
        try:
            while loop.time() < deadline:
                if until is not None:
                    done = until()
                    if inspect.isawaitable(done):
                        done = await done
                    if done:
                        break
                await asyncio.sleep(min(check_every, max(0.0, deadline - loop.time())))
        finally:
            self._stop.set()
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=self.timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if opened:
                await self._close()
        return self.stats()

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self._stop is None:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _offline_now(self, dev: SimulatedDevice, now: float) -> float:
        """Seconds the device stays offline from ``now`` (0 when online)."""
        if dev.failure != "offline":
            return 0.0
        interval = max(self.interval(), 0.05)
        if dev.online_until == math.inf:  # first call: online for a while first
            dev.online_until = now + dev.rng.uniform(*self.online_for) * interval
        if now < dev.offline_until:
            return dev.offline_until - now
        if now >= dev.online_until:
            dev.offline_until = now + dev.rng.uniform(*self.offline_for) * interval
            dev.online_until = dev.offline_until + dev.rng.uniform(*self.online_for) * interval
            dev.offline_periods.append((now, dev.offline_until))
            return dev.offline_until - now
        return 0.0

    async def _device_loop(self, dev: SimulatedDevice) -> None:
        loop = asyncio.get_running_loop()
        await self._pause(dev.rng.uniform(0, self.interval()))  # spread the first check-ins
        while not self._stopping():
            now = loop.time()
            away = max(self._offline_now(dev, now), dev.down_until - now)
            if away > 0:
                await self._pause(away)
                continue
            with contextlib.suppress(_Transient):  # the next check-in tries again
                await self._turn(dev)
            await self._pause(self._next_delay(dev))

    # ---- one check-in -----------------------------------------------------------------------

    async def _checkin(
        self, dev: SimulatedDevice, update: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "firmware": self.firmware,
            "slots": dev.slots,
            "active": dev.active,
        }
        if update is not None:
            body["update"] = dict(update)
        response = await self._device_call(
            dev, "checkin", "POST", f"{API_PREFIX}/device/checkin", body
        )
        if self.trace:
            dev.checkin_times.append(asyncio.get_running_loop().time())
        if response.status_code != 200:
            self.errors[f"checkin:{response.status_code}"] += 1
            raise _Transient(f"check-in answered {response.status_code}")
        if update is not None:
            state = str(update["state"])
            self.reported[state] += 1
            if not dev.states or dev.states[-1] != state:
                dev.states.append(state)
            if state == "failed":
                self.failure_reasons[str(update.get("reason", ""))] += 1
                dev.failures.append(str(update.get("reason", "")))
        answer: dict[str, Any] = response.json()
        assignment = answer.get("assignment")
        if isinstance(assignment, dict):
            key = (
                str(assignment.get("rollout")),
                str(assignment.get("release")),
                bool(assignment.get("rollback")),
            )
            self.first_seen.setdefault(key, {}).setdefault(dev.id, time.time())
        if self.poll_interval is None:
            self._poll_settings(answer)
        return answer

    async def _turn(self, dev: SimulatedDevice) -> None:
        answer: dict[str, Any] | None = None
        while dev.pending:  # outcomes of an update the server has not heard of yet
            answer = await self._checkin(dev, dev.pending[0])
            dev.pending.pop(0)
        if answer is None:
            answer = await self._checkin(dev, None)
        assignment = answer.get("assignment")
        if (
            isinstance(assignment, dict)
            and all(
                isinstance(assignment.get(k), str) and assignment[k]
                for k in ("rollout", "release", "manifest_url", "signature_url", "files_url")
            )
            and (assignment["rollout"], assignment["release"]) not in dev.done
        ):
            await run_update(self, dev, assignment)
            if dev.down_until <= asyncio.get_running_loop().time():
                while dev.pending:  # report the outcome at once, as the agent does
                    await self._checkin(dev, dev.pending[0])
                    dev.pending.pop(0)
        if dev.collect:
            await answer_collection(self, dev, answer)
        if self.telemetry:
            await self._send_telemetry(dev)

    # ---- telemetry --------------------------------------------------------------------------

    async def _send_telemetry(self, dev: SimulatedDevice) -> None:
        if dev.release is None:
            return
        now = int(time.time() * 1000)
        every = self.telemetry_interval if self.telemetry_interval is not None else self.interval()
        if dev.window_start_ms and now - dev.window_start_ms < every * 1000:
            return
        start = dev.window_start_ms or now
        count = dev.rng.randint(80, 120)
        errors = round(count * dev.rng.uniform(0.3, 0.5)) if dev.bad_release == dev.release else 0
        counts = [round(count * share * dev.rng.uniform(0.9, 1.1)) for share in _LATENCY_SHAPE]
        counts[3] += count - sum(counts)  # the bins add up to the inferences
        if counts[3] < 0:
            counts[2] += counts[3]
            counts[3] = 0
        report = {
            "window_start": start,
            "window_end": now,
            "release": dev.release,
            "model_version": dev.model_version,
            "inference_count": count,
            "error_count": errors,
            "latency_ms": {"edges": list(LATENCY_EDGES), "counts": counts},
            "latency_p95_ms": _p95(counts),
            "dropped_windows": 0,
            "sketches": self.sketches.window(
                dev.id, device_tags(dev.target, dev.attributes), count, now
            ),
        }
        response = await self._device_call(
            dev, "telemetry", "POST", f"{API_PREFIX}/device/telemetry", report
        )
        if response.status_code < 300:
            self.telemetry_windows += 1
            dev.window_start_ms = now
        else:
            self.errors[f"telemetry:{response.status_code}"] += 1


# ---- entry points ---------------------------------------------------------------------------


def run_fleet(
    server_url: str,
    *,
    devices: int,
    faulty: float = 0.0,
    enrollment_token: str | None = None,
    duration_s: float | None = None,
    until: Callable[[], bool | Awaitable[bool]] | None = None,
    **options: Any,
) -> FleetStats:
    """Make a :class:`DeviceFleet`, enroll it and run it (blocking); the stats.
    ``options`` are :class:`DeviceFleet`'s keyword arguments."""
    fleet = DeviceFleet(server_url, devices=devices, faulty=faulty, **options)

    async def main() -> FleetStats:
        await fleet.enroll_all(enrollment_token)
        fleet.reset_stats()
        return await fleet.run(duration_s, until=until)

    return asyncio.run(main())
