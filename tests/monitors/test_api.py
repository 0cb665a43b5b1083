"""The monitor routes and the prediction, label and review intake over REST; bad input gets
a 4xx with a message that names the problem."""

from __future__ import annotations

import numpy as np

from edgeloop.monitoring.reference import Reference
from edgeloop.server import create_app
from edgeloop.workspace import Workspace
from tests._asgi import asgi_client
from tests.monitors._monitors import HOUR, T0, ingest, window_data


def test_monitors_over_rest(ws: Workspace, reference: Reference) -> None:
    client = asgi_client(create_app(workspace=ws, auth=False))
    api = "http://testserver/api/v1"
    body = {"name": "m", "model": "pump", "window": "1h", "tests": {"f1": "ks:0.01"}, "start": T0}
    created = client.post(f"{api}/monitors", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["tests"] == {"f1": {"test": "ks", "threshold": 0.01}}
    assert client.post(f"{api}/monitors", json=body).status_code == 409
    rng = np.random.default_rng(0)
    ingest(ws, window_data(reference, rng, 1500, shift=("f2",)))
    ran = client.post(f"{api}/monitors/m/run", json={"now": T0 + HOUR})
    assert ran.status_code == 200, ran.text
    (report,) = ran.json()
    assert report["status"] == "ok" and report["metrics"]["drift_share"] == 1 / 8
    assert report["features"]["f2"]["drifted"] is True
    listed = client.get(f"{api}/monitors/m/reports").json()
    assert [r["id"] for r in listed] == [report["id"]]
    assert client.get(f"{api}/monitors").json()[0]["reports"] == 1
    summary = client.get(f"{api}/monitors/m/summary?windows=5").json()
    assert summary["monitor"]["name"] == "m" and len(summary["reports"]) == 1
    assert client.delete(f"{api}/monitors/m").status_code == 200
    missing = client.get(f"{api}/monitors/m")
    assert missing.status_code == 404 and "monitor 'm' does not exist" in missing.text


def test_bad_monitor_input_is_a_4xx_with_a_clear_message(ws: Workspace) -> None:
    client = asgi_client(create_app(workspace=ws, auth=False))
    api = "http://testserver/api/v1"
    cases = [
        ({"name": "m", "model": "pump", "window": "forever"}, 400, "is not a duration"),
        ({"name": "m", "model": "pump", "tests": ["f1=zz"]}, 400, "unknown drift test 'zz'"),
        ({"name": "m", "model": "pump", "drift_share": 2}, 400, "drift_share must be in"),
        ({"name": "m", "model": "ghost"}, 404, "model 'ghost' does not exist"),
        ({"name": "m"}, 400, "model: Field required"),
        ({"name": "m", "model": "pump", "colour": "red"}, 400, "colour"),
    ]
    for body, status, message in cases:
        response = client.post(f"{api}/monitors", json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"]


def test_predictions_labels_and_reviews_over_rest(ws: Workspace) -> None:
    client = asgi_client(create_app(workspace=ws, auth=False))
    api = "http://testserver/api/v1/monitoring"
    body = {
        "model": "pump",
        "version": 1,
        "source": "device:d1",
        "tags": {"site": "north"},
        "predictions": [
            {"id": "p1", "predicted": "ok", "confidence": 0.9, "at": T0},
            {"id": "p2", "predicted": "worn", "confidence": 0.6, "at": T0 + 5},
        ],
    }
    stored = client.post(f"{api}/predictions", json=body)
    assert stored.status_code == 201 and stored.json() == {"stored": 2, "duplicates": 0}
    labels = client.post(
        f"{api}/labels",
        json={
            "labels": [
                {"prediction_id": "p1", "label": "ok"},
                {"prediction_id": "x9", "label": "ok"},
            ]
        },
    )
    assert labels.status_code == 200
    assert labels.json() == {"updated": 1, "unchanged": 0, "unknown": ["x9"]}
    review = client.post(
        f"{api}/reviews", json={"prediction_id": "p2", "decision": "correct", "label": "broken"}
    )
    assert review.status_code == 201 and review.json()["label"] == "broken"
    bad = [
        ("predictions", {**body, "source": "nowhere"}, 400, "source 'nowhere' is not allowed"),
        ("predictions", {**body, "version": 9}, 404, "has no version 9"),
        (
            "predictions",
            {**body, "predictions": [{"id": "p3", "predicted": "ok", "at": T0, "confidence": 3}]},
            400,
            "confidence must be in [0, 1]",
        ),
        ("labels", {"labels": [{"prediction_id": "p1"}]}, 400, "label: Field required"),
        ("reviews", {"prediction_id": "nope", "decision": "confirm"}, 404, "does not exist"),
        ("reviews", {"prediction_id": "p1", "decision": "shrug"}, 400, "is not one of"),
    ]
    for path, payload, status, message in bad:
        response = client.post(f"{api}/{path}", json=payload)
        assert response.status_code == status, (path, response.text)
        assert message in response.json()["error"]["message"]
