"""The Python API contract, on LocalBackend and on HttpBackend (the same tests, both ways)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import edgeloop as el
from edgeloop.client import Backend
from edgeloop.errors import (
    Conflict,
    FilterSyntaxError,
    NotFound,
    ValidationFailed,
)
from edgeloop.tracking import MetricPoint, RunInput


def test_start_run_context_manager_finishes_the_run(backend: Backend) -> None:
    with el.start_run(experiment="contract", name="ok") as run:
        assert el.active_run() is run
        el.log_params({"lr": 0.1, "layers": 2})
        el.set_tag("team", "edge")
        for step in range(50):
            el.log_metrics({"loss": 1 / (step + 1), "acc": step / 50}, step=step)
    assert el.active_run() is None
    got = backend.get_run(run.id)
    assert got.status == "finished"
    assert got.params == {"lr": "0.1", "layers": "2"}
    assert got.tags == {"team": "edge"}
    assert got.metrics["loss"] == pytest.approx(1 / 50)
    assert len(backend.metric_history(run.id, "loss")) == 50
    assert "environment_digest" in got.lineage


def test_an_exception_marks_the_run_failed(backend: Backend) -> None:
    def failing() -> str:
        with el.start_run(experiment="contract") as run:
            el.log_metric("x", 1.0)
            raise RuntimeError(run.id)

    with pytest.raises(RuntimeError) as info:
        failing()
    run_id = str(info.value)
    got = backend.get_run(run_id)
    assert got.status == "failed"
    assert got.metrics == {"x": 1.0}  # buffered points are flushed even on failure


def test_nested_runs_and_single_active_run(backend: Backend) -> None:
    with el.start_run(experiment="contract") as parent:
        with pytest.raises(ValidationFailed, match="already active"):
            el.start_run(experiment="contract")
        with el.start_run(experiment="contract", nested=True) as child:
            assert el.active_run() is child
        assert el.active_run() is parent
    assert backend.get_run(child.id).parent_run_id == parent.id


def test_logging_without_a_run_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(ValidationFailed, match="no active run"):
        el.log_metric("x", 1.0)


def test_params_rewritten_with_another_value_conflict(backend: Backend) -> None:
    with el.start_run(experiment="contract"):
        el.log_param("lr", 0.1)
        el.log_param("lr", 0.1)
        with pytest.raises(Conflict, match="write-once"):
            el.log_param("lr", 0.2)


def test_artifacts_files_and_directories(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.svg").write_text("<svg/>")
    (folder / "sub" / "b.svg").write_text("<svg></svg>")
    with el.start_run(experiment="contract") as run:
        el.log_artifact(tmp_path / "report.txt")
        entries = el.log_artifact(folder, name="figures")
        with pytest.raises(ValidationFailed, match="artifact path"):
            el.log_artifact(tmp_path / "report.txt", name="../escape")
        with pytest.raises(ValidationFailed, match="does not exist"):
            el.log_artifact(tmp_path / "missing")
    assert [e.path for e in entries] == ["figures/a.svg", "figures/sub/b.svg"]
    listed = [e.path for e in backend.list_artifacts(run.id)]
    assert listed == ["figures/a.svg", "figures/sub/b.svg", "report.txt"]
    assert backend.download_artifact(run.id, "figures/sub/b.svg") == b"<svg></svg>"
    with pytest.raises(NotFound):
        backend.download_artifact(run.id, "nope.txt")


def test_search_runs_through_the_api(backend: Backend) -> None:
    for model, f1 in (("mlp", 0.95), ("mlp", 0.80), ("svm", 0.92)):
        with el.start_run(experiment="search", params={"model": model}, tags={"team": "x"}):
            el.log_metric("f1", f1)
    page = el.search_runs(
        "search",
        "metrics.f1 > 0.9 and params.model = 'mlp' and tags.team = 'x'",
        order_by=["metrics.f1 desc"],
    )
    assert [r.metrics["f1"] for r in page.items] == [0.95]
    everything = el.search_runs("search", order_by=["metrics.f1 asc"], max_results=2)
    assert [r.metrics["f1"] for r in everything.items] == [0.80, 0.92]
    assert everything.next_cursor is not None
    with pytest.raises(FilterSyntaxError) as info:
        el.search_runs("search", "metrics.f1 > 0.9 and")
    assert info.value.position == len("metrics.f1 > 0.9 and")


def test_log_model_register_alias_and_load(backend: Backend) -> None:
    x = np.random.default_rng(0).normal(size=(60, 4))
    y = (x[:, 1] > 0).astype(int)
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    with el.start_run(experiment="contract") as run:
        el.log_metric("accuracy", 1.0)
        version = el.log_model(model, "model", input_example=x[:3], registered_model_name="tree")
    assert version is not None
    assert version.version == 1
    again = el.register_model("tree", run.id)
    assert again.version == 2
    backend.set_alias("tree", "production", 1, reason="first good one")
    backend.set_alias("tree", "production", 2)
    predictor = el.load_model("models:/tree@production")
    np.testing.assert_array_equal(predictor.predict(x), model.predict(x))
    history = backend.alias_history("tree", "production")
    assert [(h.from_version, h.to_version) for h in history] == [(None, 1), (1, 2)]
    assert backend.resolve_model_uri("models:/tree/latest").version == 2
    assert [v.version for v in backend.list_model_versions("tree")] == [1, 2]
    assert backend.get_model("tree").aliases == {"production": 2}
    with pytest.raises(NotFound):
        el.load_model("models:/tree@staging")


def test_experiments_and_models_listing(backend: Backend) -> None:
    backend.create_experiment("one", "first")
    with pytest.raises(Conflict):
        backend.create_experiment("one")
    assert backend.get_experiment("one").description == "first"
    names = [e.name for e in backend.list_experiments().items]
    assert "one" in names
    backend.create_model("empty", "no versions yet")
    assert [m.name for m in backend.list_models().items] == ["empty"]
    with pytest.raises(NotFound, match="no versions"):
        backend.resolve_model_uri("models:/empty/latest")


def test_tokens_are_created_listed_and_revoked(backend: Backend) -> None:
    info, token = backend.create_token("ci", "editor")
    assert token.startswith(f"el_{info.id}_")
    assert [t.id for t in backend.list_tokens()] == [info.id]
    assert backend.revoke_token(info.id).revoked_at is not None
    with pytest.raises(ValidationFailed, match="role"):
        backend.create_token("x", "superuser")


def test_metric_batches_and_inputs(backend: Backend) -> None:
    run = backend.create_run("contract", "batch")
    points = [MetricPoint(key="m", value=float(i), step=i, timestamp=i) for i in range(25_000)]
    assert backend.log_metrics(run.id, points) == 25_000
    assert len(backend.metric_history(run.id, "m")) == 25_000
    backend.log_inputs(run.id, [RunInput(ref="datasets:/vib@1", digest="d")])
    assert backend.get_run(run.id).inputs[0].ref == "datasets:/vib@1"
    backend.upload_artifact(run.id, "blob.bin", io.BytesIO(b"\x00" * 10))
    assert backend.list_artifacts(run.id)[0].size == 10
