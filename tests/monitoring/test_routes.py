"""Monitoring windows over REST (``POST``/``GET /api/v1/monitoring/windows``) and through the
device telemetry path (a device's ``sketches``; malformed ones are refused, nothing written)."""

from __future__ import annotations

import numpy as np
import pytest
from tests._asgi import asgi_client
from tests.agent._fake_server import LABELS, N_FEATURES
from tests.fleet._fleet import T0, FakeDevice, enrolled, register_version

from edgeloop import registry
from edgeloop.errors import ValidationFailed
from edgeloop.fleet import _groups, _releases
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.fleet._telemetry import record_telemetry
from edgeloop.monitoring import WindowSketch, build_reference, merged_windows
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.server import create_app
from edgeloop.store import DeviceTelemetry
from edgeloop.workspace import Workspace

H = 3_600_000
RNG = np.random.default_rng(5)
REFERENCE = build_reference(
    RNG.normal(size=(200, N_FEATURES)),
    None,
    labels=list(LABELS),
    proba=RNG.dirichlet([1, 1, 1], 200),
)


def _version(ws: Workspace) -> int:
    version = register_version(ws, "pump", seed=1)
    registry.attach_files(ws, "pump", version, {REFERENCE_PATH: REFERENCE.to_json()})
    return version


def _sketch(n: int = 20) -> dict:
    return REFERENCE.window(RNG.normal(size=(n, N_FEATURES)), RNG.dirichlet([1, 1, 1], n)).to_dict()


def test_rest_post_and_merged_get(make_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    version = _version(ws)
    client = asgi_client(create_app(workspace=ws, auth=False))
    body = {
        "model": "pump",
        "model_version": version,
        "source": "endpoint:api",
        "window_start": T0,
        "window_end": T0 + H,
        "sketch": _sketch(),
        "tags": {"site": "cloud"},
    }
    assert client.post("/api/v1/monitoring/windows", json=body).json() == {"stored": True}
    assert client.post("/api/v1/monitoring/windows", json=body).json() == {"stored": False}
    second = {**body, "source": "batch:nightly", "sketch": _sketch(30), "tags": {}}
    assert client.post("/api/v1/monitoring/windows", json=second).status_code == 202

    got = client.get(
        "/api/v1/monitoring/windows",
        params={"model": "pump", "version": version, "start": T0, "end": T0 + H, "window": "1h"},
    ).json()
    assert [(w["count"], w["sources"]) for w in got["windows"]] == [(50, 2)]
    assert WindowSketch.from_dict(got["windows"][0]["sketch"]).count == 50
    only = client.get(
        "/api/v1/monitoring/windows",
        params={
            "model": "pump",
            "version": version,
            "start": T0,
            "end": T0 + H,
            "tag": "site=cloud",
            "source": "endpoint:*",
        },
    ).json()
    assert [w["count"] for w in only["windows"]] == [20]

    bad = client.post("/api/v1/monitoring/windows", json={**body, "sketch": {"type": "nope"}})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["field"] == "sketch"
    wrong_tag = client.get(
        "/api/v1/monitoring/windows",
        params={"model": "pump", "version": version, "tag": "site"},
    )
    assert wrong_tag.status_code == 400 and "key=value" in wrong_tag.json()["error"]["message"]
    client.close()


def test_device_sketches_become_tagged_windows(make_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    version = _version(ws)
    release = _releases.create_release(ws, "pump", version, "rpi4")
    device = enrolled(ws, FakeDevice("dev-1", site="plant-3", tags={"line": "a"}))
    _groups.create_group(ws, "east", query="site=plant-3")

    def report(sketches: object, start: int) -> TelemetryReport:
        return TelemetryReport.model_validate(
            {
                "window_start": start,
                "window_end": start + H,
                "release": release.id,
                "model_version": version,
                "inference_count": 20,
                "sketches": sketches,
            }
        )

    assert record_telemetry(ws, device.id, report(_sketch(), T0), now=T0 + H)
    merged = merged_windows(ws, "pump", version, start_ms=T0, end_ms=T0 + H, window_ms=H)
    assert merged[0].sketch.count == 20 and merged[0].sources == 1
    for tags in ({"site": "plant-3"}, {"group": "east"}, {"tags.line": "a"}, {"target": "rpi4"}):
        found = merged_windows(
            ws, "pump", version, start_ms=T0, end_ms=T0 + H, window_ms=H, tags=tags
        )
        assert len(found) == 1, tags

    broken = _sketch()
    broken["features"]["f0"]["histogram"]["counts"] = [1, 2]
    with pytest.raises(ValidationFailed, match="sketches") as caught:
        record_telemetry(ws, device.id, report(broken, T0 + H), now=T0 + 2 * H)
    assert caught.value.details["field"].startswith("sketches")
    with ws.db.read() as s:  # nothing of the refused window was written
        assert s.query(DeviceTelemetry).filter(DeviceTelemetry.window_start == T0 + H).count() == 0
    assert (
        merged_windows(ws, "pump", version, start_ms=T0 + H, end_ms=T0 + 2 * H, window_ms=H) == []
    )
