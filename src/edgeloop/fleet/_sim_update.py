"""The update flow of a simulated device (:mod:`edgeloop.fleet._simulator`): follow an
assignment like ``edgeloop-agent`` does — report ``downloading``, fetch and verify the
manifest and its signature with the fleet public key, check the bundle fits, fetch only the
files the device lacks (delta), report ``downloaded``, ``installing``, ``verifying``, run the
self-test, switch slots and report ``healthy`` — or fail the way the device's failure mode
says (``crash-install``, ``corrupt-download``, ``self-test``, ``inference``).

Verification and files are shared by the devices of one process (:class:`Shared`): a
manifest (with its signature) is verified once, a file is fetched over HTTP and hash-checked
once per URL and SHA-256, and the self-test runs once per release.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeloop.fleet._sim_device import (
    _MAX_BUNDLE_BYTES,
    _MAX_MANIFEST_BYTES,
    FailureMode,
    SimulatedDevice,
    _Failed,
    _flipped,
    _Transient,
)
from edgeloop.fleet._sim_http import SimResponse
from edgeloop.fleet._sim_sketches import SimSketches
from edgeloop.fleet.bundle import (
    BundleRejected,
    check_compatible,
    delta,
    run_self_test,
    verify_file,
    verify_manifest,
)

__all__ = ["Shared", "run_update"]


class Shared:
    """Verification results and file bytes shared by the devices of one process."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any] | BundleRejected] = {}
        self.files: dict[tuple[str, str], bytes] = {}
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.self_tests: dict[str, BundleRejected | None] = {}

    def verify(self, data: bytes, signature: bytes, key: Ed25519PublicKey) -> dict[str, Any]:
        cache_key = hashlib.sha256(data + b"\x00" + signature).hexdigest()
        if cache_key not in self.manifests:
            try:
                self.manifests[cache_key] = verify_manifest(data, signature, key)
            except BundleRejected as exc:
                self.manifests[cache_key] = exc
        found = self.manifests[cache_key]
        if isinstance(found, BundleRejected):
            raise found
        return found

    def self_test(
        self, digest: str, manifest: Mapping[str, Any], files: Mapping[str, bytes]
    ) -> None:
        if digest not in self.self_tests:
            try:
                run_self_test(manifest, files)
                self.self_tests[digest] = None
            except BundleRejected as exc:
                self.self_tests[digest] = exc
        found = self.self_tests[digest]
        if found is not None:
            raise found


class _Fleet(Protocol):
    """What the update flow uses of a :class:`~edgeloop.fleet._simulator.DeviceFleet`."""

    _shared: Shared
    faulty_when: Callable[[Mapping[str, Any]], bool] | None
    fleet_public_key: Ed25519PublicKey | None
    restart_s: float | None
    sketches: SimSketches
    bytes_downloaded: int
    bytes_saved: int
    bytes_fetched: int

    def interval(self) -> float: ...

    def _device_call(
        self, dev: SimulatedDevice, kind: str, method: str, path: str, body: Any = None
    ) -> Awaitable[SimResponse]: ...

    def _checkin(
        self, dev: SimulatedDevice, update: Mapping[str, Any] | None
    ) -> Awaitable[dict[str, Any]]: ...


def _applies(
    fleet: _Fleet, dev: SimulatedDevice, mode: FailureMode, manifest: Mapping[str, Any]
) -> bool:
    return dev.failure == mode and (fleet.faulty_when is None or fleet.faulty_when(manifest))


async def _get(fleet: _Fleet, dev: SimulatedDevice, kind: str, url: str, limit: int) -> bytes:
    response = await fleet._device_call(dev, kind, "GET", url)
    if response.status_code in (403, 404):
        raise _Failed("unavailable", f"the server no longer serves {url}")
    if response.status_code >= 400:
        raise _Transient(f"{url} answered {response.status_code}")
    if len(response.content) > limit:
        raise _Failed("size", f"{url} is over {limit} bytes")
    return response.content


async def _file(
    fleet: _Fleet, dev: SimulatedDevice, manifest: Mapping[str, Any], files_url: str, path: str
) -> bytes:
    entry = manifest["files"][path]
    url = files_url.rstrip("/") + "/" + "/".join(quote(p, safe="") for p in path.split("/"))
    key = (url, str(entry["sha256"]))
    lock = fleet._shared.locks.setdefault(key, asyncio.Lock())
    async with lock:
        if key not in fleet._shared.files:
            data = await _get(fleet, dev, "file", url, int(entry["size"]) + 1)
            fleet.bytes_fetched += len(data)
            verify_file(manifest, path, data)  # raises on a bad download: not cached
            fleet._shared.files[key] = data
    return fleet._shared.files[key]


async def run_update(fleet: _Fleet, dev: SimulatedDevice, a: Mapping[str, Any]) -> None:
    rollout, release, rollback = str(a["rollout"]), str(a["release"]), bool(a.get("rollback"))
    sent = {"downloaded": 0, "saved": 0}

    def body(state: str, reason: str = "") -> dict[str, Any]:
        return {
            "rollout": rollout,
            "release": release,
            "state": state,
            "reason": reason,
            "bytes_downloaded": sent["downloaded"],
            "bytes_saved": sent["saved"],
        }

    async def progress(state: str) -> None:
        await fleet._checkin(dev, body(state))

    try:
        await progress("downloading")
        manifest_bytes = await _get(
            fleet, dev, "manifest", str(a["manifest_url"]), _MAX_MANIFEST_BYTES
        )
        signature = await _get(fleet, dev, "signature", str(a["signature_url"]), 1024)
        if fleet.fleet_public_key is None:
            raise _Failed("signature", "the device holds no fleet public key")
        manifest = fleet._shared.verify(manifest_bytes, signature, fleet.fleet_public_key)
        if manifest["release"] != release:
            raise _Failed("release", f"the manifest is for {manifest['release']}")
        limit = _MAX_BUNDLE_BYTES
        if isinstance(a.get("max_bundle_bytes"), int):
            limit = min(limit, int(a["max_bundle_bytes"]))
        check_compatible(
            manifest,
            target=dev.target,
            current_version=dev.model_version,
            rollback=rollback,
            max_bytes=limit,
        )
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        total = sum(int(e["size"]) for e in manifest["files"].values())
        idle = dev.idle_slot()
        if dev.manifest_digest == digest:  # already runs this very bundle
            sent["saved"] = total
            dev.pending.append(body("healthy"))
            dev.done.add((rollout, release))
            await progress("downloaded")
            fleet.bytes_saved += total
            return
        held = dev.slots.get(idle)
        write = held is None or held.get("bundle_digest") != digest
        if not write:  # the idle slot holds this bundle (a rollback): nothing to fetch
            sent["saved"] = total
        else:
            plan = delta(dev.manifest, manifest)
            sent["saved"] = plan.bytes_saved
            for path in plan.fetch:
                data = await _file(fleet, dev, manifest, str(a["files_url"]), path)
                if _applies(fleet, dev, "corrupt-download", manifest):
                    verify_file(manifest, path, _flipped(data, dev.rng))  # reason hash
            sent["downloaded"] = total - plan.bytes_saved
        await progress("downloaded")
        if write:
            await progress("installing")
        fleet.bytes_downloaded += sent["downloaded"]
        fleet.bytes_saved += sent["saved"]
        if _applies(fleet, dev, "crash-install", manifest):
            dev.done.add((rollout, release))
            dev.pending.extend([body("failed", "crash"), body("rolled-back", "crash")])
            restart = fleet.restart_s if fleet.restart_s is not None else 2 * fleet.interval()
            dev.down_until = asyncio.get_running_loop().time() + restart
            return
        if write:  # the agent reports verifying once it has written the slot
            await progress("verifying")
        if _applies(fleet, dev, "self-test", manifest):
            raise _Failed("self-test-switched", "the model fails its self-test here")
        files = _bundle_files(fleet, manifest)
        if files is not None:
            fleet._shared.self_test(digest, manifest, files)
    except BundleRejected as exc:
        dev.done.add((rollout, release))
        dev.pending.append(body("failed", exc.reason))
        return
    except _Failed as exc:
        dev.done.add((rollout, release))
        if exc.reason == "self-test-switched":  # failed on trial: switched back
            dev.pending.extend([body("failed", "self-test"), body("rolled-back", "self-test")])
        else:
            dev.pending.append(body("failed", exc.reason))
        return
    _commit(fleet, dev, manifest, digest, release, rollback)
    dev.done.add((rollout, release))
    dev.pending.append(body("healthy"))


def _bundle_files(fleet: _Fleet, manifest: Mapping[str, Any]) -> dict[str, bytes] | None:
    """The release's files from the shared cache, looked up by hash (for the self-test);
    None if one was never fetched in this process."""
    by_hash = {sha: data for (_, sha), data in fleet._shared.files.items()}
    wanted = {path: str(entry["sha256"]) for path, entry in manifest["files"].items()}
    if not all(sha in by_hash for sha in wanted.values()):
        return None
    return {path: by_hash[sha] for path, sha in wanted.items()}


def _commit(
    fleet: _Fleet,
    dev: SimulatedDevice,
    manifest: dict[str, Any],
    digest: str,
    release: str,
    rollback: bool,
) -> None:
    slot = dev.idle_slot()
    dev.slots[slot] = {"release": release, "bundle_digest": digest}
    dev.active = slot
    dev.release, dev.manifest, dev.manifest_digest = release, manifest, digest
    dev.model_version = int(manifest["model_version"])
    dev.bad_release = release if _applies(fleet, dev, "inference", manifest) else None
    dev.window_start_ms = int(time.time() * 1000)  # a window belongs to one release
    by_hash = {sha: data for (_, sha), data in fleet._shared.files.items()}
    fleet.sketches.commit(dev.id, manifest, by_hash)
