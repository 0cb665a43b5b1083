"""Bundles of every runtime the agent serves: int8 (elsewhere), trees and ONNX."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from edgeloop.agent import Agent
from edgeloop.edge._onnx import export_onnx_int8
from edgeloop.edge.trees import quantize_trees
from tests.agent._fake_server import LABELS, N_FEATURES, FakeFleet, tiny_model

X = np.random.default_rng(5).normal(size=(40, N_FEATURES)).astype(np.float32)


def test_a_trees_bundle_is_installed_and_served(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    y = np.where(X[:, 0] + X[:, 1] > 0, "high", "low")
    trees = quantize_trees(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), X)
    cases = [
        {"input": row.tolist(), "expected": scores.tolist(), "class": label}
        for row, scores, label in zip(
            X[:3], trees.int_scores(X[:3]), trees.predict(X[:3]), strict=True
        )
    ]
    fleet.add_bundle(
        "rel_t",
        1,
        runtime="trees",
        files={"model.trees.npz": trees.to_bytes()},
        labels=list(trees.labels),
        self_test=cases,
        model=trees,
    )
    agent = make_agent()
    agent.run_once()
    fleet.assign(agent.device_id, "rel_t")
    agent.run_once()
    assert fleet.states(agent.device_id)[-1] == "healthy"
    assert agent.model is not None and agent.model.runtime == "trees"
    assert agent.predict(X) == trees.predict(X)


def test_an_onnx_bundle_is_installed_and_served(
    fleet: FakeFleet, make_agent: Callable[..., Agent]
) -> None:
    qmodel = tiny_model(9)
    data = export_onnx_int8(qmodel)
    ort: Any = importlib.import_module("onnxruntime")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    scores = session.run(None, {"input": X})[0]
    labels = [LABELS[int(i)] for i in np.argmax(scores, axis=1)]
    cases = [
        {"input": X[i].tolist(), "expected": scores[i].tolist(), "class": labels[i]}
        for i in range(3)
    ]
    fleet.add_bundle(
        "rel_o",
        1,
        runtime="onnx",
        files={"model.onnx": data},
        labels=list(LABELS),
        self_test=cases,
        model=qmodel,
    )
    agent = make_agent()
    agent.run_once()
    fleet.assign(agent.device_id, "rel_o")
    agent.run_once()
    assert fleet.states(agent.device_id)[-1] == "healthy"
    assert agent.model is not None and agent.model.runtime == "onnx"
    assert agent.predict(X) == labels
    np.testing.assert_allclose(agent.scores(X), scores, atol=1e-6)
