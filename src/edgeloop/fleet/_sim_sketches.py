"""Monitoring sketches of simulated devices: each device keeps a window binned on its
release's reference (``monitoring/reference.json`` in the bundle) and fed by a data source,
and sends it with its telemetry in the compact wire form, as the agent does.

``data_source(device_id, tags, n, now_ms)`` gives the ``n`` inferences of one window: the
feature vectors ``(n, features)`` and the class probabilities ``(n, classes)``, or None for a
window without data. ``tags`` are the device's ``target``, ``site`` and ``tags.<name>``, so a
source can shift the data of some sites (drift) and not others.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._window_batch import BatchPacker
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference
from edgeloop.monitoring.window import PACKED_KEY

__all__ = ["DataSource", "SimSketches", "device_tags"]

DataSource = Callable[[str, dict[str, str], int, int], tuple[np.ndarray, np.ndarray] | None]


def device_tags(target: str, attributes: Mapping[str, Any]) -> dict[str, str]:
    """The tags a data source sees (the server tags the device's windows the same way)."""
    tags = {"target": target}
    if attributes.get("site"):
        tags["site"] = str(attributes["site"])
    for key, value in (attributes.get("tags") or {}).items():
        tags[f"tags.{key}"] = str(value)
    return tags


class SimSketches:
    """The reference each simulated device runs on, and its windows' sketches."""

    def __init__(self, source: DataSource | None) -> None:
        self.source = source
        self._by_digest: dict[str, Reference | None] = {}
        self._running: dict[str, Reference | None] = {}
        self._packers: dict[int, BatchPacker] = {}  # by id() of a reference held above

    def commit(
        self, device_id: str, manifest: Mapping[str, Any], files: Mapping[str, bytes]
    ) -> None:
        """The device now runs ``manifest``'s release; ``files`` maps SHA-256 to bytes."""
        if self.source is None:
            return
        entry = (manifest.get("files") or {}).get(REFERENCE_PATH)
        reference = None
        if isinstance(entry, Mapping):
            digest = str(entry.get("sha256", ""))
            if digest not in self._by_digest and digest in files:
                try:
                    self._by_digest[digest] = Reference.from_json(files[digest])
                except ValidationFailed:
                    self._by_digest[digest] = None
            reference = self._by_digest.get(digest)
        self._running[device_id] = reference
        if reference is not None and id(reference) not in self._packers:
            self._packers[id(reference)] = BatchPacker(reference.new_window())

    def window(
        self, device_id: str, tags: dict[str, str], n: int, now_ms: int
    ) -> dict[str, str] | None:
        """The sketch of the device's next ``n`` inferences in the compact wire form
        (``WindowSketch.to_packed()``, made in one vectorised pass by
        :class:`~edgeloop.monitoring._window_batch.BatchPacker`), or None without a data
        source, a reference or data."""
        reference = self._running.get(device_id)
        if self.source is None or reference is None or n <= 0:
            return None
        data = self.source(device_id, tags, n, now_ms)
        if data is None:
            return None
        x, proba = data
        packed = self._packers[id(reference)].pack(np.asarray(x), np.asarray(proba))
        return {PACKED_KEY: base64.b64encode(packed).decode("ascii")}
