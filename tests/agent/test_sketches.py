"""The agent's monitoring window: built from the active bundle's reference, updated on every
inference (inputs and class probabilities), closed and sent with each telemetry window,
buffered on disk while offline, and absent without a reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeloop.agent import Agent
from edgeloop.monitoring import WindowSketch, build_reference
from edgeloop.monitoring.reference import REFERENCE_PATH
from tests.agent._fake_server import LABELS, N_FEATURES, FakeFleet
from tests.agent.conftest import FakeClock

HOUR = 3600.0
RNG = np.random.default_rng(3)
REFERENCE = build_reference(
    RNG.normal(size=(300, N_FEATURES)),
    [f"x{i}" for i in range(N_FEATURES)],
    labels=list(LABELS),
    proba=RNG.dirichlet([1, 1, 1], 300),
    scores="logits",
)


def _with_reference(fleet: FakeFleet, release: str = "rel_1", version: int = 1) -> None:
    fleet.add_release(release, version, extra={REFERENCE_PATH: REFERENCE.to_json()})


def _sketches(fleet: FakeFleet) -> list[dict | None]:
    return [body.get("sketches") for _, body in fleet.telemetry]


def test_every_inference_is_sketched_and_sent_with_the_window(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    _with_reference(fleet)
    clock = FakeClock()
    agent = installed(clock=clock)
    assert agent.model is not None and agent.model.reference == REFERENCE
    x = RNG.normal(size=(30, N_FEATURES)).astype(np.float32)
    labels = []
    for i in range(0, 30, 3):  # small batches, as a device serves them
        labels += agent.predict(x[i : i + 3])
    agent.scores(x[:5])
    agent.infer(x[:1])
    clock.advance(HOUR)
    agent.run_once()

    sent = [s for s in _sketches(fleet) if s is not None]
    assert len(sent) == 1
    assert set(sent[0]) == {"packed"}  # the compact wire form
    window = WindowSketch.from_wire(sent[0])
    assert window.count == 36
    assert window.features["x0"].count == 36
    expected = REFERENCE.window(np.vstack([x, x[:5], x[:1]]))
    for name in REFERENCE.feature_names:
        assert window.features[name].histogram == expected.features[name].histogram
    assert window.prediction is not None
    by_label = [labels.count(label) for label in LABELS]
    assert window.prediction.counts[: len(LABELS)].sum() == 36
    assert all(window.prediction.counts[i] >= by_label[i] for i in range(len(LABELS)))
    # the next window starts empty
    clock.advance(HOUR)
    agent.run_once()
    assert _sketches(fleet)[-1] is None  # no inferences: nothing to sketch


def test_sketches_wait_in_the_buffer_while_offline(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    _with_reference(fleet)
    clock = FakeClock()
    agent = installed(clock=clock)
    fleet.offline = "503"
    agent.predict(RNG.normal(size=(4, N_FEATURES)))
    clock.advance(HOUR)
    assert agent.tick_telemetry()
    pending = agent.buffer.pending()
    assert WindowSketch.from_wire(pending[-1]["sketches"]).count == 4
    reopened = Agent(agent.state_dir, fleet.url, target="rpi4", clock=clock)
    assert reopened.buffer.pending()[-1]["sketches"] == pending[-1]["sketches"]
    fleet.offline = None
    agent.run_once()
    assert WindowSketch.from_wire(_sketches(fleet)[-1] or {}).count == 4


def test_no_reference_no_sketches(fleet: FakeFleet, installed: Callable[..., Agent]) -> None:
    clock = FakeClock()
    agent = installed(clock=clock)  # rel_1 without monitoring/reference.json
    assert agent.model is not None and agent.model.reference is None
    agent.predict(RNG.normal(size=(2, N_FEATURES)))
    clock.advance(HOUR)
    agent.run_once()
    assert _sketches(fleet) and all(s is None for s in _sketches(fleet))


def test_a_new_release_closes_the_window_and_sketches_on_its_reference(
    fleet: FakeFleet, installed: Callable[..., Agent]
) -> None:
    clock = FakeClock()
    agent = installed(clock=clock)
    agent.predict(RNG.normal(size=(2, N_FEATURES)))
    _with_reference(fleet, "rel_2", 2)
    fleet.assign(agent.device_id, "rel_2", rollout="ro_2")
    agent.run_once()
    assert agent.model is not None and agent.model.release == "rel_2"
    agent.predict(RNG.normal(size=(5, N_FEATURES)))
    clock.advance(HOUR)
    agent.run_once()
    windows = [body for _, body in fleet.telemetry]
    assert windows[0]["release"] == "rel_1" and windows[0]["sketches"] is None
    assert windows[-1]["release"] == "rel_2"
    assert WindowSketch.from_wire(windows[-1]["sketches"]).count == 5


def test_predict_scores_gives_the_labels_predict_gives() -> None:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    from edgeloop.agent._model import LoadedModel
    from edgeloop.edge.trees import quantize_trees
    from tests.agent._fake_server import tiny_model

    x = RNG.normal(size=(200, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    scorers = [
        tiny_model(4),
        quantize_trees(RandomForestClassifier(5, max_depth=3, random_state=0).fit(x, y), x),
        quantize_trees(GradientBoostingClassifier(n_estimators=5).fit(x, y > 0), x),
    ]
    for scorer in scorers:
        model = LoadedModel("a", "rel", 1, "int8", tuple(LABELS), scorer)
        labels, scores = model.predict_scores(x)
        assert labels == model.predict(x)
        assert np.array_equal(scores, model.scores(x))
