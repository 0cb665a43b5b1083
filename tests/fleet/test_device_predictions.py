"""Predictions and on-site labels in device telemetry: recorded for source ``device:<id>``
with the release's model version and the device's tags, in the telemetry's transaction,
once; malformed records are refused naming the field and nothing is written; a device
labels only its own predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from edgeloop import governance
from edgeloop.agent import Agent as DeviceAgent
from edgeloop.errors import ValidationFailed
from edgeloop.fleet import _devices, _releases, _telemetry
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.server import create_app
from edgeloop.store import DeviceTelemetry, Prediction, PredictionStore
from edgeloop.workspace import Workspace
from tests._asgi import asgi_client
from tests.fleet._fleet import T0, FakeDevice, enrolled, register_version
from tests.fleet.test_device_api import API, _transport


def _setup(ws: Workspace) -> tuple[FakeDevice, str]:
    dev = enrolled(ws, FakeDevice("pump-7", tags={"line": "b"}))
    version = register_version(ws)
    release = _releases.create_release(ws, "pump", version, "rpi4")
    return dev, release.id


def _report(release: str | None, start: int = T0, **extra: Any) -> TelemetryReport:
    body: dict[str, Any] = {
        "window_start": start,
        "window_end": start + 3_600_000,
        "release": release,
        "model_version": 1,
        "inference_count": 3,
        **extra,
    }
    return TelemetryReport.model_validate(body)


def _pred(i: int, label: str = "normal", at: int = T0 + 1) -> dict[str, Any]:
    return {"id": f"pump-7/{at}-{i}", "predicted": label, "confidence": 0.75, "at": at}


def _counts(ws: Workspace) -> tuple[int, int]:
    with ws.db.read() as s:
        telemetry = s.scalar(select(func.count()).select_from(DeviceTelemetry)) or 0
        predictions = s.scalar(select(func.count()).select_from(Prediction)) or 0
    return int(telemetry), int(predictions)


def test_predictions_and_labels_arrive_with_the_telemetry(workspace: Workspace) -> None:
    dev, release = _setup(workspace)
    first = _report(release, predictions=[_pred(1), _pred(2, "imbalance")], predictions_dropped=4)
    assert _telemetry.record_telemetry(workspace, dev.id, first, now=T0 + 10)
    with workspace.db.read() as s:
        rows = PredictionStore(s).existing([f"pump-7/{T0 + 1}-1", f"pump-7/{T0 + 1}-2"])
        row = rows[f"pump-7/{T0 + 1}-2"]
        assert (row.model, row.model_version, row.source) == ("pump", 1, "device:pump-7")
        assert (row.predicted, row.confidence, row.at, row.label) == (
            "imbalance",
            0.75,
            T0 + 1,
            None,
        )
        assert row.tags["site"] == "plant-3" and row.tags["target"] == "rpi4"
        assert row.tags["tags.line"] == "b"
    health = _devices.get_device(workspace, dev.id).health
    assert health["predictions"] == {"dropped": 4, "stored": 2, "duplicates": 0, "clashes": 0}
    # a resent window records nothing twice
    assert not _telemetry.record_telemetry(workspace, dev.id, first, now=T0 + 20)
    assert _counts(workspace) == (1, 2)

    labels = [
        {"prediction_id": f"pump-7/{T0 + 1}-2", "label": "normal"},
        {"prediction_id": f"pump-7/{T0 + 1}-9", "label": "normal"},  # never recorded
    ]
    second = _report(release, start=T0 + 3_600_000, predictions=[_pred(3)], labels=labels)
    assert _telemetry.record_telemetry(workspace, dev.id, second, now=T0 + 30)
    with workspace.db.read() as s:
        row = PredictionStore(s).get(f"pump-7/{T0 + 1}-2")
        assert (row.label, row.label_source, row.labeled_at) == ("normal", "label", T0 + 30)
    outcome = _devices.get_device(workspace, dev.id).health["predictions"]
    assert outcome["labels"] == {"updated": 1, "unchanged": 0, "unknown": 1, "dropped": 0}
    # labels alone, for a prediction of this window's own batch, work too
    third = _report(
        release,
        start=T0 + 7_200_000,
        predictions=[_pred(4, at=T0 + 7_200_001)],
        labels=[{"prediction_id": f"pump-7/{T0 + 7_200_001}-4", "label": "imbalance"}],
    )
    assert _telemetry.record_telemetry(workspace, dev.id, third, now=T0 + 40)
    with workspace.db.read() as s:
        assert PredictionStore(s).get(f"pump-7/{T0 + 7_200_001}-4").label == "imbalance"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"predictions": [{**_pred(1), "confidence": 1.5}]}, "predictions[0].confidence"),
        ({"predictions": [_pred(1), {"id": "pump-7/1-2", "at": 1}]}, "predictions[1].predicted"),
        ({"predictions": [{**_pred(1), "input": [1.0]}]}, "predictions[0].input"),
        ({"predictions": [{**_pred(1), "id": "pump-8/1-1"}]}, "predictions[0].id"),
        ({"predictions": [_pred(1), _pred(1)]}, "predictions"),
        ({"labels": [{"prediction_id": "pump-8/1-1", "label": "x"}]}, "labels[0].prediction_id"),
        ({"labels": [{"prediction_id": "pump-7/1-1", "label": " "}]}, "labels[0].label"),
    ],
)
def test_malformed_records_are_refused_and_nothing_is_written(
    workspace: Workspace, extra: dict[str, Any], field: str
) -> None:
    dev, release = _setup(workspace)
    with pytest.raises(ValidationFailed) as caught:
        _telemetry.record_telemetry(workspace, dev.id, _report(release, **extra), now=T0)
    assert caught.value.http_status == 400
    assert caught.value.details["field"] == field
    assert _counts(workspace) == (0, 0)


def test_predictions_need_the_release_that_made_them(workspace: Workspace) -> None:
    dev, _ = _setup(workspace)
    with pytest.raises(ValidationFailed, match="release") as caught:
        _telemetry.record_telemetry(workspace, dev.id, _report(None, predictions=[_pred(1)]))
    assert caught.value.details["field"] == "release"
    assert _counts(workspace) == (0, 0)


def test_a_reused_id_is_skipped_and_the_window_still_counts(workspace: Workspace) -> None:
    dev, release = _setup(workspace)
    assert _telemetry.record_telemetry(workspace, dev.id, _report(release, predictions=[_pred(1)]))
    again = _report(release, start=T0 + 3_600_000, predictions=[_pred(1, "imbalance"), _pred(2)])
    assert _telemetry.record_telemetry(workspace, dev.id, again)
    assert _counts(workspace) == (2, 2)
    outcome = _devices.get_device(workspace, dev.id).health["predictions"]
    assert (outcome["stored"], outcome["clashes"]) == (1, 1)
    with workspace.db.read() as s:
        assert PredictionStore(s).get(f"pump-7/{T0 + 1}-1").predicted == "normal"


def test_an_agent_sends_its_predictions_and_site_labels_over_rest(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    _, admin = governance.create_token(ws, "admin", "admin")
    version = register_version(ws)
    release = _releases.create_release(ws, "pump", version, "rpi4")
    with asgi_client(create_app(workspace=ws, auth=True)) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        token = client.post(f"{API}/fleet/enrollment-tokens", json={}, headers=headers)
        clock = [T0 / 1000]
        agent = DeviceAgent(
            tmp_path / "pump-1",
            "http://testserver",
            target="rpi4",
            device_id="pump-1",
            attributes={"site": "plant-3"},
            enrollment_token=token.json()["token"],
            http=_transport(client),
            clock=lambda: clock[0],
        )
        agent.run_once()
        group = {"name": "all", "query": "site=plant-3"}
        assert client.post(f"{API}/device-groups", json=group, headers=headers).is_success
        body = {"release": release.id, "group": "all", "waves": "100", "bake": "0s"}
        assert client.post(f"{API}/rollouts", json=body, headers=headers).is_success
        agent.run_once()
        assert agent.model is not None and agent.model.release == release.id
        x = np.random.default_rng(1).normal(size=(3, agent.model.scorer.input_shape[-1]))
        result = agent.infer(x.astype(np.float32))
        assert agent.feedback(result.ids[0], "imbalance")
        clock[0] += 3600
        agent.run_once()
    with ws.db.read() as s:
        rows = PredictionStore(s).existing(result.ids)
        assert sorted(rows) == sorted(result.ids)
        first = rows[result.ids[0]]
        assert (first.source, first.model, first.model_version) == ("device:pump-1", "pump", 1)
        assert first.predicted == result.predictions[0] and first.tags["site"] == "plant-3"
        assert (first.label, first.label_source) == ("imbalance", "label")
        assert first.tags["group.all"] == "1"
