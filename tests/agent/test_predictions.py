"""Prediction ids and local feedback on the agent: an id per sample from every inference
path, the predictions (never the inputs) recorded in the telemetry window up to its bound,
the same id as a collected sample's, and labels given on site (Python API and ``POST
/feedback``) sent to the server with the next window."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeloop.agent import Agent
from edgeloop.agent._samples import build_row
from tests.agent._fake_server import LABELS, N_FEATURES, FakeFleet
from tests.agent.conftest import FakeClock

HOUR = 3600.0
X = np.random.default_rng(5).normal(size=(6, N_FEATURES)).astype(np.float32)


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _sent(fleet: FakeFleet) -> list[dict[str, Any]]:
    return [body for _, body in fleet.telemetry]


def test_every_inference_path_gives_ids_and_records_outputs_only(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed(clock=clock)
    labels = agent.predict(X[:2])
    from_predict = agent.last_predictions
    agent.scores(X[2:3])
    from_scores = agent.last_predictions
    result = agent.infer(X[3:6])
    ids = from_predict + from_scores + result.ids
    assert len(from_predict) == 2 and len(from_scores) == 1 and len(result.ids) == 3
    assert len(set(ids)) == 6
    at = int(clock.now * 1000)
    assert all(re.fullmatch(rf"dev-1/{at}-\d+", i) for i in ids)
    clock.advance(HOUR)
    agent.run_once()
    window = _sent(fleet)[-1]
    recorded = window["predictions"]
    assert [p["id"] for p in recorded] == ids
    assert all(set(p) == {"id", "predicted", "confidence", "at"} for p in recorded)
    assert [p["predicted"] for p in recorded[:2]] == labels
    assert [p["predicted"] for p in recorded[3:]] == result.predictions
    assert all(p["predicted"] in LABELS and 0 < p["confidence"] <= 1 for p in recorded)
    assert window["predictions_dropped"] == 0
    clock.advance(HOUR)
    agent.run_once()
    assert "predictions" not in _sent(fleet)[-1]  # a window without inferences has none


def test_the_window_keeps_at_most_its_bound(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed(clock=clock, max_predictions=4)
    agent.predict(X[:3])
    agent.predict(X[:3])
    agent.predict(X[:1])
    clock.advance(HOUR)
    agent.run_once()
    window = _sent(fleet)[-1]
    assert len(window["predictions"]) == 4 and window["predictions_dropped"] == 3
    assert window["inference_count"] == 3


def test_a_collected_sample_and_its_prediction_share_the_id(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed("keen", clock=clock, collect_data=True, sample_buffer=16)
    ids = agent.infer(X[:3]).ids
    ring = agent.samples
    assert ring is not None
    layout = {"id_column": "sample_id", "label": "label", "inputs": {"kind": "features"}}
    layout["inputs"]["columns"] = [f"x{i}" for i in range(N_FEATURES)]  # type: ignore[index]
    rows = [build_row(layout, "keen", s) for s in reversed(ring.latest(3))]
    assert [r["sample_id"] for r in rows if r] == ids
    # feedback by prediction id labels the kept sample and goes to the server
    assert agent.feedback(ids[1], "imbalance")
    assert ring.latest(3)[1][2] == "imbalance"
    # and by the sample's number, as before
    assert agent.feedback(agent.last_samples[0], "normal")
    clock.advance(HOUR)
    agent.run_once()
    assert _sent(fleet)[-1]["labels"] == [
        {"prediction_id": ids[1], "label": "imbalance"},
        {"prediction_id": ids[0], "label": "normal"},
    ]


def test_feedback_over_http_goes_out_with_the_next_window(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed(clock=clock)
    with agent.serve(port=0) as server:
        status, body = _call(server.port, "POST", "/predict", {"inputs": X[:2].tolist()})
        assert status == 200 and len(body["ids"]) == 2
        first = body["ids"][0]
        clock.advance(HOUR)
        agent.run_once()  # the prediction goes out with this window
        assert _sent(fleet)[-1]["predictions"][0]["id"] == first

        status, answer = _call(server.port, "POST", "/feedback", {"id": first, "label": "normal"})
        assert (status, answer) == (200, {"id": first, "label": "normal", "accepted": True})
        status, error = _call(server.port, "POST", "/feedback", {"id": first, "label": ""})
        assert status == 400 and error["error"]["details"]["field"] == "label"
        status, error = _call(server.port, "POST", "/feedback", {"label": "normal"})
        assert status == 400 and error["error"]["details"]["field"] == "id"
        for other in ("dev-2/1-1", "dev-1/abc", "7"):  # not ours; malformed; no sample ring
            status, error = _call(server.port, "POST", "/feedback", {"id": other, "label": "x"})
            assert status == 404 and error["error"]["code"] == "not_found", other
    clock.advance(HOUR)
    agent.run_once()
    window = _sent(fleet)[-1]
    assert window["labels"] == [{"prediction_id": first, "label": "normal"}]
    assert "predictions" not in window
