"""Data collection in the simulated fleet: an opted-in simulated device answers the
collection request of its check-in with rows from the fleet's ``sample_source``, uploaded
like the agent does (``POST /device/samples`` in chunks, the last one ``done``), with
upload ids that are the same on a retry, so a retried upload never adds rows twice."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from edgeloop.fleet._sim_device import API_PREFIX, SimulatedDevice, _Transient
from edgeloop.fleet._sim_http import SimResponse

__all__ = ["SampleSource", "answer_collection", "sample_tags"]

SampleSource = Callable[[str, dict[str, str], int, int], list[dict[str, Any]]]
"""``sample_source(device_id, tags, n, now_ms) -> rows`` (the dataset's row layout)."""


class _Fleet(Protocol):
    sample_source: SampleSource | None
    samples_uploaded: int
    errors: Any

    def _device_call(
        self, dev: SimulatedDevice, kind: str, method: str, path: str, body: Any = None
    ) -> Awaitable[SimResponse]: ...


def sample_tags(dev: SimulatedDevice) -> dict[str, str]:
    """What the sample source learns of a device: its tags, site and target."""
    attributes = dev.attributes
    tags = {str(k): str(v) for k, v in (attributes.get("tags") or {}).items()}
    if attributes.get("site") is not None:
        tags["site"] = str(attributes["site"])
    tags["target"] = dev.target
    return tags


async def answer_collection(fleet: _Fleet, dev: SimulatedDevice, answer: Mapping[str, Any]) -> int:
    """Upload the rows the check-in answer's collection request asks of ``dev``; the rows
    the server accepted. A 5xx leaves the request to the next check-in (same upload ids)."""
    request = answer.get("collection")
    if not dev.collect or not isinstance(request, dict) or not isinstance(request.get("id"), str):
        return 0
    collection = request["id"]
    if collection in dev.collected:
        return 0
    wanted = max(0, int(request.get("samples") or 0))
    chunk = max(1, int(request.get("max_rows_per_upload") or 500))
    rows: list[dict[str, Any]] = []
    if fleet.sample_source is not None and wanted:
        made = fleet.sample_source(dev.id, sample_tags(dev), wanted, int(time.time() * 1000))
        rows = list(made or [])[:wanted]
    accepted = 0
    for index, start in enumerate(range(0, max(1, len(rows)), chunk)):
        body = {
            "collection": collection,
            "upload_id": f"{collection}-{dev.id}-{index}",
            "rows": rows[start : start + chunk],
            "done": start + chunk >= len(rows),
        }
        response = await fleet._device_call(
            dev, "samples", "POST", f"{API_PREFIX}/device/samples", body
        )
        if response.status_code >= 400:
            fleet.errors[f"samples:{response.status_code}"] += 1
            if response.status_code in (401, 429):
                raise _Transient(f"samples answered {response.status_code}")
            break
        accepted += int(response.json().get("accepted", 0))
    dev.collected.add(collection)
    fleet.samples_uploaded += accepted
    return accepted
