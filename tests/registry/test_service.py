"""Registry service on SQLite and PostgreSQL (the store suite)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from edgeloop import registry, tracking
from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.registry import MODEL_META, load_predictor, save_sklearn
from edgeloop.tracking import MetricPoint
from edgeloop.workspace import Principal, Workspace


def _logged_model(ws: Workspace, accuracy: float = 0.9) -> str:
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    run = tracking.create_run(ws, "exp")
    tracking.log_metrics(
        ws, run.id, [MetricPoint(key="accuracy", value=accuracy, step=0, timestamp=1)]
    )
    for rel, data in save_sklearn(model, x[:5]).items():
        tracking.put_artifact(ws, run.id, f"model/{rel}", io.BytesIO(data))
    return run.id


def test_versions_are_numbered_per_model_and_point_at_run_files(workspace: Workspace) -> None:
    first = registry.create_model_version(workspace, "digits", run_id=_logged_model(workspace))
    second = registry.create_model_version(workspace, "digits", run_id=_logged_model(workspace))
    other = registry.create_model_version(workspace, "other", run_id=_logged_model(workspace))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.status == "ready"
    assert first.flavor == "sklearn"
    assert first.metrics == {"accuracy": 0.9}
    assert first.signature["inputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1, 3]}
    assert first.lineage["run_id"] == first.source_run_id
    files = registry.model_version_files(workspace, "digits", 1)
    assert sorted(f.path for f in files) == [MODEL_META, "model.joblib"]
    model = registry.get_model(workspace, "digits")
    assert model.latest_version == 2


def test_registering_nothing_is_a_clear_error(workspace: Workspace) -> None:
    run = tracking.create_run(workspace, "exp")
    with pytest.raises(ValidationFailed, match=r"no artifacts under .model."):
        registry.create_model_version(workspace, "m", run_id=run.id)
    with pytest.raises(NotFound):
        registry.create_model_version(workspace, "m", run_id="0" * 32)
    with pytest.raises(NotFound):
        registry.get_model(workspace, "m")  # nothing half-created


def test_duplicate_model_names_conflict(workspace: Workspace) -> None:
    registry.create_model(workspace, "m")
    with pytest.raises(Conflict):
        registry.create_model(workspace, "m")


def test_aliases_move_and_keep_history(workspace: Workspace) -> None:
    for _ in range(3):
        registry.create_model_version(workspace, "m", run_id=_logged_model(workspace))
    alice = workspace.acting_as(Principal("alice", "editor"))
    bob = workspace.acting_as(Principal("bob", "editor"))
    registry.set_alias(alice, "m", "production", 1, reason="first")
    registry.set_alias(bob, "m", "production", 3, reason="better f1")
    registry.set_alias(bob, "m", "canary", 2)
    registry.delete_alias(alice, "m", "canary", reason="canary done")
    assert registry.resolve_model_uri(workspace, "models:/m@production").version == 3
    assert registry.resolve_model_uri(workspace, "models:/m/2").version == 2
    assert registry.resolve_model_uri(workspace, "models:/m/latest").version == 3
    assert registry.get_model(workspace, "m").aliases == {"production": 3}
    assert registry.get_model_version(workspace, "m", 3).aliases == ["production"]
    history = registry.alias_history(workspace, "m")
    assert [(c.alias, c.from_version, c.to_version, c.actor, c.reason) for c in history] == [
        ("production", None, 1, "alice", "first"),
        ("production", 1, 3, "bob", "better f1"),
        ("canary", None, 2, "bob", ""),
        ("canary", 2, None, "alice", "canary done"),
    ]
    assert len(registry.alias_history(workspace, "m", "production")) == 2


def test_alias_and_uri_errors(workspace: Workspace) -> None:
    registry.create_model_version(workspace, "m", run_id=_logged_model(workspace))
    with pytest.raises(NotFound, match="no version 9"):
        registry.set_alias(workspace, "m", "production", 9)
    with pytest.raises(ValidationFailed, match="reserved"):
        registry.set_alias(workspace, "m", "latest", 1)
    with pytest.raises(ValidationFailed, match="alias"):
        registry.set_alias(workspace, "m", "has space", 1)
    with pytest.raises(NotFound, match="no alias 'staging'"):
        registry.resolve_model_uri(workspace, "models:/m@staging")
    with pytest.raises(NotFound):
        registry.delete_alias(workspace, "m", "staging")
    for bad in ("m@production", "models:/", "models:/m/x", "models:/m/0", "runs:/abc"):
        with pytest.raises(ValidationFailed):
            registry.resolve_model_uri(workspace, bad)
    assert registry.alias_history(workspace, "m") == []


def test_predictor_round_trip_checks_its_input(workspace: Workspace) -> None:
    registry.create_model_version(workspace, "m", run_id=_logged_model(workspace))
    files = {
        f.path: workspace.artifacts.get_bytes(f.digest)
        for f in registry.model_version_files(workspace, "m", 1)
    }
    predictor = load_predictor(files, uri="models:/m/1")
    x = np.random.default_rng(1).normal(size=(10, 3))
    assert predictor.predict(x).shape == (10,)
    assert predictor.predict_proba(x).shape == (10, 2)
    with pytest.raises(ValidationFailed, match="expects Nx3"):
        predictor.predict(np.zeros((2, 4)))
    with pytest.raises(ValidationFailed, match=r"edgeloop-model\.json"):
        load_predictor({"model.joblib": files["model.joblib"]})


def test_list_models_paginates(workspace: Workspace) -> None:
    for name in ("c", "a", "b"):
        registry.create_model(workspace, name)
    page = registry.list_models(workspace, limit=2)
    assert [m.name for m in page.items] == ["a", "b"]
    assert [m.name for m in registry.list_models(workspace, page.next_cursor).items] == ["c"]


def test_derived_files_attach_to_a_version_and_never_change(workspace: Workspace) -> None:
    registry.create_model_version(workspace, "digits", run_id=_logged_model(workspace))
    added = registry.attach_files(
        workspace, "digits", 1, {"edge/c/model.c": b"int x;", "edge/manifest.json": b"{}"}
    )
    assert [a.path for a in added] == ["edge/c/model.c", "edge/manifest.json"]
    paths = [f.path for f in registry.model_version_files(workspace, "digits", 1)]
    assert paths == ["edge/c/model.c", "edge/manifest.json", MODEL_META, "model.joblib"]
    entry = registry.model_version_file(workspace, "digits", 1, "edge/c/model.c")
    assert workspace.artifacts.get_bytes(entry.digest) == b"int x;"
    # The same bytes again are accepted; different bytes for a path it has are refused.
    registry.attach_files(workspace, "digits", 1, {"edge/c/model.c": b"int x;"})
    with pytest.raises(Conflict, match="never change"):
        registry.attach_files(
            workspace, "digits", 1, {"edge/c/model.c": b"int y;", "edge/new.txt": b"n"}
        )
    paths_after = [f.path for f in registry.model_version_files(workspace, "digits", 1)]
    assert paths_after == paths  # all or nothing: edge/new.txt was not added
    with pytest.raises(ValidationFailed):
        registry.attach_files(workspace, "digits", 1, {"../escape": b"x"})
    with pytest.raises(NotFound):
        registry.attach_files(workspace, "digits", 9, {"edge/x": b"x"})
