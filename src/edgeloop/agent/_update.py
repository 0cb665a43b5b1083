"""One update, as a state machine driven by the journal.

:meth:`Updater.advance` reads how far the current update got and does the next step until
the update is finished (or needs the network and may not use it)::

    assigned / downloading  → fetch + verify the manifest, check it fits, stage the files
                              (reused from a slot or downloaded with resume), each verified
    downloaded / installing → write the idle slot, fsync                 → verifying
    verifying               → verify the slot from disk, switch ``active`` → switched
    switched                → self-test + smoke inference on the new slot → healthy
    healthy                 → committed
    failed (switched)       → switch back                                 → rolled-back

Any :class:`~edgeloop.fleet.bundle.BundleRejected` or :class:`UpdateFailed` becomes a
``failed`` record with its reason; a transient error (the server unreachable) propagates and
leaves the update where it was, to be resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeloop.agent._client import FleetClient
from edgeloop.agent._crash import crash_point
from edgeloop.agent._download import fetch_file
from edgeloop.agent._errors import UpdateFailed, failure_reason, safe_join
from edgeloop.agent._fs import atomic_write, remove_tree
from edgeloop.agent._journal import Journal, UpdateRecord
from edgeloop.agent._model import LoadedModel, load_model, smoke_test
from edgeloop.agent._slots import SlotStore, other_slot
from edgeloop.errors import EdgeloopError, NotFound, PermissionDenied
from edgeloop.fleet.bundle import (
    MANIFEST,
    SIGNATURE,
    BundleRejected,
    check_compatible,
    delta,
    run_self_test,
    verify_file,
    verify_manifest,
)

__all__ = ["Updater"]

log = logging.getLogger("edgeloop.agent")
MAX_MANIFEST_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 1024
MAX_INSTALL_ATTEMPTS = 3
LOCAL_STEPS = ("downloaded", "installing", "verifying", "switched", "healthy", "failed")


@dataclass
class Updater:
    """Everything an update needs from the agent."""

    journal: Journal
    slots: SlotStore
    client: FleetClient
    downloads: Path
    target: str
    max_bundle_bytes: int
    token: Callable[[], str]
    public_key: Callable[[], Ed25519PublicKey]
    progress: Callable[[UpdateRecord, str], None]
    committed: Callable[[LoadedModel], None]

    # entry points -------------------------------------------------------------------------

    def start(self, assignment: Mapping[str, Any]) -> UpdateRecord:
        committed = self.journal.state().committed_slot
        fields = {k: assignment.get(k) for k in ("rollout", "release", "manifest_url")}
        fields.update(
            rollback=bool(assignment.get("rollback", False)),
            signature_url=assignment.get("signature_url"),
            files_url=assignment.get("files_url"),
            max_bundle_bytes=assignment.get("max_bundle_bytes"),
        )
        self.journal.append("assigned", **fields, slot=other_slot(committed), previous=committed)
        update = self.journal.state().update
        assert update is not None
        return update

    def abandon(self, update: UpdateRecord, reason: str, message: str) -> None:
        """Give up an update that has not switched (a newer assignment replaces it)."""
        self._fail(update, UpdateFailed(reason, message))

    def advance(self, *, network: bool, report: bool = True) -> None:
        """Take the current update as far as it goes (see the module docstring)."""
        while True:
            update = self.journal.state().update
            if update is None or update.finished:
                return
            last = update.last
            if last == "failed":  # failed after the switch
                self._switch_back(update)
                continue
            if last not in LOCAL_STEPS and not network:
                return
            try:
                if last in ("assigned", "downloading"):
                    if report:
                        self.progress(update, "downloading")
                    self._download(update)
                    if report:
                        self.progress(self._current(), "downloaded")
                elif last in ("downloaded", "installing"):
                    self._install(update, report=report)
                elif last == "verifying":
                    self._switch(update)
                elif last == "switched":
                    self._trial(update)
                elif last == "healthy":
                    self._commit(update)
            except (BundleRejected, UpdateFailed) as exc:
                self._fail(update, exc)
            except OSError as exc:  # the disk, not the network (the client wraps those)
                self._fail(update, exc)

    # steps --------------------------------------------------------------------------------

    def _current(self) -> UpdateRecord:
        update = self.journal.state().update
        assert update is not None
        return update

    def staging(self, release: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", release)[:64]
        if safe != release:
            safe += "-" + hashlib.sha256(release.encode()).hexdigest()[:12]
        return self.downloads / safe

    def _manifest(self, update: UpdateRecord, staging: Path) -> tuple[bytes, bytes]:
        cached_m, cached_s = staging / MANIFEST, staging / SIGNATURE
        if cached_m.is_file() and cached_s.is_file():
            return cached_m.read_bytes(), cached_s.read_bytes()
        a = update.assignment
        token = self.token()
        with _unavailable(update.release):
            manifest = self.client.get_bytes(
                str(a["manifest_url"]), token=token, limit=MAX_MANIFEST_BYTES
            )
            signature = self.client.get_bytes(
                str(a["signature_url"]), token=token, limit=MAX_SIGNATURE_BYTES
            )
        return manifest, signature

    def _committed_manifest(self) -> dict[str, Any] | None:
        slot = self.journal.state().committed_slot
        if slot is None or not self.slots.has_bundle(slot):
            return None
        try:
            return dict(
                verify_manifest(
                    self.slots.manifest_bytes(slot),
                    (self.slots.path(slot) / SIGNATURE).read_bytes(),
                    self.public_key(),
                )
            )
        except (BundleRejected, OSError):
            return None

    def _download(self, update: UpdateRecord) -> None:
        staging = self.staging(update.release)
        manifest_bytes, signature = self._manifest(update, staging)
        manifest = verify_manifest(manifest_bytes, signature, self.public_key())
        if manifest["release"] != update.release:
            raise UpdateFailed(
                "release",
                f"the manifest is for release {manifest['release']!r}, the assignment for "
                f"{update.release!r}",
            )
        current = self._committed_manifest()
        limit = self.max_bundle_bytes
        if isinstance(update.assignment.get("max_bundle_bytes"), int):
            limit = min(limit, int(update.assignment["max_bundle_bytes"]))
        check_compatible(
            manifest,
            target=self.target,
            current_version=int(current["model_version"]) if current else None,
            rollback=bool(update.assignment.get("rollback")),
            max_bytes=limit,
        )
        if manifest["runtime"] not in ("int8", "trees", "onnx"):
            raise BundleRejected(
                f"this agent runs int8, trees and onnx bundles, not {manifest['runtime']!r}",
                reason="format",
            )
        files = dict(manifest["files"])
        total = sum(int(entry["size"]) for entry in files.values())
        committed = self.journal.state().committed_slot
        if (
            current is not None
            and committed is not None
            and self.slots.manifest_bytes(committed) == manifest_bytes
        ):  # the device already runs this very bundle: nothing to install
            self.journal.append("downloaded", bytes_downloaded=0, bytes_saved=total)
            self.journal.append(
                "committed",
                slot=committed,
                release=update.release,
                model_version=int(manifest["model_version"]),
                bundle_digest=self.slots.digest(committed),
            )
            return
        if self._idle_holds(update.slot, manifest_bytes):  # e.g. a rollback to the release
            # nothing to download or write: straight to verifying, in one record
            self.journal.append(
                "verifying", slot=update.slot, bytes_downloaded=0, bytes_saved=total
            )
            return
        staging.mkdir(parents=True, exist_ok=True)
        atomic_write(staging / SIGNATURE, signature)
        atomic_write(staging / MANIFEST, manifest_bytes)
        reuse = self._reuse_sources(current, manifest)
        saved = sum(int(files[p]["size"]) for p in reuse)
        fetch = sorted(set(files) - set(reuse))
        self.journal.append(
            "downloading", bytes_total=total, bytes_saved=saved, fetch=fetch, reuse=sorted(reuse)
        )
        files_url = str(update.assignment["files_url"])
        for name in sorted(files):
            final = safe_join(staging / "files", name)
            part = safe_join(staging / "parts", name)
            if final.is_file():
                try:
                    verify_file(manifest, name, final.read_bytes())
                    continue
                except BundleRejected:
                    final.unlink()
            if name in reuse and self._stage_copy(manifest, name, reuse[name], part, final):
                continue
            self._fetch(manifest, name, files_url, part, final)
        self.journal.append("downloaded", bytes_downloaded=total - saved, bytes_saved=saved)

    def _idle_holds(self, slot: str, manifest_bytes: bytes) -> bool:
        """Whether ``slot`` already holds exactly this bundle, complete and verified."""
        if not self.slots.has_bundle(slot) or self.slots.manifest_bytes(slot) != manifest_bytes:
            return False
        try:
            self.slots.verify(slot, self.public_key())
        except (BundleRejected, UpdateFailed, OSError):
            return False
        return True

    def _reuse_sources(
        self, current: Mapping[str, Any] | None, manifest: Mapping[str, Any]
    ) -> dict[str, Path]:
        """New path → a file already on the device with the same SHA-256 and size: in the
        committed slot (the delta plan), else in the other slot."""
        sources: dict[str, Path] = {}
        committed = self.journal.state().committed_slot
        if current is not None and committed is not None:
            for new, old in delta(current, manifest).reuse.items():
                sources[new] = self.slots.file_path(committed, old)
        other = other_slot(committed)
        if self.slots.has_bundle(other):
            try:
                old_manifest = verify_manifest(
                    self.slots.manifest_bytes(other),
                    (self.slots.path(other) / SIGNATURE).read_bytes(),
                    self.public_key(),
                )
            except (BundleRejected, OSError):
                return sources
            for new, old in delta(old_manifest, manifest).reuse.items():
                sources.setdefault(new, self.slots.file_path(other, old))
        return sources

    def _stage_copy(
        self, manifest: Mapping[str, Any], name: str, source: Path, part: Path, final: Path
    ) -> bool:
        try:
            data = source.read_bytes()
            verify_file(manifest, name, data)
        except (OSError, BundleRejected):
            return False  # changed or damaged since: download it instead
        part.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(part, data)
        final.parent.mkdir(parents=True, exist_ok=True)
        part.replace(final)
        return True

    def _fetch(
        self, manifest: Mapping[str, Any], name: str, files_url: str, part: Path, final: Path
    ) -> None:
        size = int(manifest["files"][name]["size"])
        url = files_url.rstrip("/") + "/" + "/".join(quote(p, safe="") for p in name.split("/"))
        for fresh in (False, True):
            resumed = part.exists() and part.stat().st_size > 0
            with _unavailable(str(manifest["release"])):
                fetch_file(
                    self.client,
                    url,
                    token=self.token(),
                    part=part,
                    size=size,
                    name=name,
                    journal=self.journal,
                )
            try:
                verify_file(manifest, name, part.read_bytes())
            except BundleRejected:
                part.unlink()
                if resumed and not fresh:  # a power cut can leave garbage in a partial file
                    continue
                raise
            final.parent.mkdir(parents=True, exist_ok=True)
            part.replace(final)
            return

    def _install(self, update: UpdateRecord, *, report: bool) -> None:
        if update.steps.count("installing") >= MAX_INSTALL_ATTEMPTS:
            raise UpdateFailed("crash", "the agent stopped while installing, three times")
        staging = self.staging(update.release)
        manifest_bytes = (staging / MANIFEST).read_bytes()
        signature = (staging / SIGNATURE).read_bytes()
        manifest = verify_manifest(manifest_bytes, signature, self.public_key())
        self.journal.append("installing", slot=update.slot)
        if report:
            self.progress(self._current(), "installing")
        sources = {name: safe_join(staging / "files", name) for name in manifest["files"]}
        self.slots.install(update.slot, manifest_bytes, signature, sources)
        self.journal.append("verifying", slot=update.slot)
        if report:
            self.progress(self._current(), "verifying")

    def _switch(self, update: UpdateRecord) -> None:
        self.slots.verify(update.slot, self.public_key())
        self.slots.set_active(update.slot)
        crash_point("switch-unjournaled")
        self.journal.append("switched", slot=update.slot, previous=update.previous)

    def _trial(self, update: UpdateRecord) -> None:
        manifest, files = self.slots.verify(update.slot, self.public_key())
        run_self_test(manifest, files)
        model = load_model(manifest, files, slot=update.slot)
        smoke_test(model, manifest)
        self.journal.append("healthy")
        self._commit(update, model)

    def _commit(self, update: UpdateRecord, model: LoadedModel | None = None) -> None:
        if model is None:
            manifest, files = self.slots.verify(update.slot, self.public_key())
            model = load_model(manifest, files, slot=update.slot)
        self.journal.append(
            "committed",
            slot=update.slot,
            release=model.release,
            model_version=model.model_version,
            bundle_digest=self.slots.digest(update.slot),
        )
        self.committed(model)
        self.clean_downloads()

    def _fail(self, update: UpdateRecord, exc: BaseException) -> None:
        reason = failure_reason(exc)
        message = exc.message if isinstance(exc, EdgeloopError) else str(exc)
        log.warning("update to %s failed (%s): %s", update.release, reason, message)
        self.journal.append("failed", reason=reason, message=message, switched=update.switched)
        if not update.switched:
            if self.slots.active() != update.previous:  # switched, but not journaled yet
                self.slots.set_active(update.previous)
            self._discard(update)

    def _switch_back(self, update: UpdateRecord) -> None:
        self.slots.set_active(update.previous)
        crash_point("rollback-unjournaled")
        self.journal.append("rolled-back", slot=update.previous, reason=update.reason)
        self._discard(update)

    def tidy(self) -> None:
        """After a crash: remove what a finished update left behind (its staging, and the
        slot of one that failed), which the crash may have kept it from removing."""
        update = self.journal.state().update
        if update is None or not update.finished:
            return
        if update.outcomes and update.outcomes[-1][0] != "healthy":
            self._discard(update)
        else:
            self.clean_downloads()

    def _discard(self, update: UpdateRecord) -> None:
        """Remove what a failed update left: its staging and a slot it wrote."""
        if "installing" in update.steps and update.slot != self.slots.active():
            self.slots.clear(update.slot)
        self.clean_downloads()

    def clean_downloads(self) -> None:
        if self.downloads.exists():
            for entry in self.downloads.iterdir():
                remove_tree(entry)


@contextlib.contextmanager
def _unavailable(release: str) -> Iterator[None]:
    """A release the server no longer serves to this device (403, 404) fails the update:
    waiting would not bring it back."""
    try:
        yield
    except (PermissionDenied, NotFound) as exc:
        raise UpdateFailed(
            "unavailable", f"the server no longer serves release {release}: {exc.message}"
        ) from exc
