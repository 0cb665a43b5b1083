"""The A/B slots: ``slots/a/`` and ``slots/b/``, each a complete bundle (``manifest.json``,
``manifest.sig`` and the files the manifest lists), and ``active``, a small file naming the
slot in use, replaced atomically (write a temporary file, fsync, ``os.replace``, fsync the
directory). An update only ever writes the idle slot."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeloop.agent._crash import crash_point
from edgeloop.agent._errors import UpdateFailed, safe_join
from edgeloop.agent._fs import atomic_write, fsync_dir, remove_tree
from edgeloop.fleet.bundle import MANIFEST, SIGNATURE, verify_file, verify_manifest

__all__ = ["SLOTS", "SlotStore", "other_slot"]

SLOTS = ("a", "b")


def other_slot(slot: str | None) -> str:
    return "b" if slot == "a" else "a"


class SlotStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "slots"
        self.active_file = state_dir / "active"

    def path(self, slot: str) -> Path:
        if slot not in SLOTS:
            raise ValueError(f"no slot {slot!r}")
        return self.root / slot

    # the active pointer -------------------------------------------------------------

    def active(self) -> str | None:
        try:
            name = self.active_file.read_text().strip()
        except FileNotFoundError:
            return None
        return name if name in SLOTS else None

    def set_active(self, slot: str | None) -> None:
        """Point ``active`` at ``slot`` (or at nothing) in one atomic step."""
        if slot is None:
            remove_tree(self.active_file)
        else:
            self.path(slot)  # validates the name
            atomic_write(self.active_file, f"{slot}\n".encode())

    # reading ------------------------------------------------------------------------

    def has_bundle(self, slot: str) -> bool:
        base = self.path(slot)
        return (base / MANIFEST).is_file() and (base / SIGNATURE).is_file()

    def manifest_bytes(self, slot: str) -> bytes:
        return (self.path(slot) / MANIFEST).read_bytes()

    def digest(self, slot: str) -> str:
        """SHA-256 of the slot's ``manifest.json`` (the check-in's ``bundle_digest``)."""
        return hashlib.sha256(self.manifest_bytes(slot)).hexdigest()

    def file_path(self, slot: str, name: str) -> Path:
        return safe_join(self.path(slot), name)

    def read_files(self, slot: str, manifest: Mapping[str, Any]) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for name in manifest.get("files", {}):
            try:
                files[name] = self.file_path(slot, name).read_bytes()
            except FileNotFoundError as exc:
                raise UpdateFailed("hash", f"slot {slot} lacks {name}") from exc
        return files

    def verify(
        self, slot: str, public_key: Ed25519PublicKey
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The slot's manifest and files once its signature and every hash verify; raises
        :class:`~edgeloop.fleet.bundle.BundleRejected` or :class:`UpdateFailed`."""
        base = self.path(slot)
        try:
            manifest_bytes = (base / MANIFEST).read_bytes()
            signature = (base / SIGNATURE).read_bytes()
        except FileNotFoundError as exc:
            raise UpdateFailed("format", f"slot {slot} holds no complete bundle") from exc
        manifest = verify_manifest(manifest_bytes, signature, public_key)
        files = self.read_files(slot, manifest)
        for name, data in files.items():
            verify_file(manifest, name, data)
        return manifest, files

    # writing ------------------------------------------------------------------------

    def clear(self, slot: str) -> None:
        remove_tree(self.path(slot))

    def install(
        self,
        slot: str,
        manifest_bytes: bytes,
        signature: bytes,
        sources: Mapping[str, Path],
    ) -> None:
        """Clear ``slot`` and write the bundle into it, every file fsynced; the manifest and
        its signature go last, so a slot without them is known to be incomplete."""
        base = self.path(slot)
        self.clear(slot)
        if not self.root.exists():
            self.root.mkdir(parents=True)
            fsync_dir(self.root.parent)
        base.mkdir()
        dirs = {base}
        for i, (name, source) in enumerate(sorted(sources.items())):
            target = self.file_path(slot, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            dirs.add(target.parent)
            with source.open("rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            if i == 0:
                crash_point("install-partial")
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)
        atomic_write(base / SIGNATURE, signature)
        atomic_write(base / MANIFEST, manifest_bytes)
        fsync_dir(self.root)
