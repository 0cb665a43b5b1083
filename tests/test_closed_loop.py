"""The closed loop end to end, a smaller version of ``edgeloop demo``'s stage 8.

A real ``edgeloop server`` (a child process) serves 30 simulated devices running the
maintenance pipeline's model; their sketches come from simulated vibration windows through
that model's own feature block and int8 network. Two sites drift; the test checks every hop:
drift detected on those sites only (from sketches), alerts recorded with their evidence, data
collected from opted-in devices and closed into a new dataset version, a pipeline run
triggered by the alerts, the retrained model's release rolled out to completion, and better
accuracy on the drifted sites (scored here, independently of the demo's own figures).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgeloop import datasets, monitors, pipelines, registry
from edgeloop.client import LocalBackend, set_backend
from edgeloop.config import Settings
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.fleet import create_enrollment_token, create_group, list_collections
from edgeloop.sim import Drift, FieldData
from edgeloop.train import FeaturePipeline
from edgeloop.workspace import Workspace

pytestmark = pytest.mark.slow

DRIFTS = {
    "plant-2": Drift(gain=0.6, temperature_shift_c=12.0),
    "plant-3": Drift(new_machine_type="compressor-c"),
}


def _predictor(ws: Workspace, version: int) -> Callable[[np.ndarray], np.ndarray]:
    """Windows → predicted labels with the version's edge export (feature block + int8)."""
    files = {
        f.path: ws.artifacts.get_bytes(f.digest)
        for f in registry.model_version_files(ws, "machine-condition", version)
    }
    features = FeaturePipeline.from_dict(json.loads(files["edge/manifest.json"])["preprocessing"])
    network = QuantizedModel.from_bytes(files["edge/int8/model.npz"])

    def predict(windows: np.ndarray) -> np.ndarray:
        return np.asarray(network.predict(features.transform(windows).astype(np.float32)))

    return predict


def _accuracy(field: FieldData, site: str, predict: Callable[[np.ndarray], np.ndarray]) -> float:
    windows, labels, _ = field.pool(site, held_out=True)
    return float(np.mean(predict(windows) == labels))


def test_drift_is_detected_collected_retrained_and_rolled_out(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from edgeloop.cli._demo import _run_maintenance
    from edgeloop.cli._demo_field import DeployedModels, field_data, fleet_sources
    from edgeloop.cli._demo_fleet import (
        GROUP,
        GROUP_QUERY,
        INSTALL_POLICY,
        FleetStage,
        ensure_release,
        local_server,
        make_fleet,
    )
    from edgeloop.cli._demo_loop import run_closed_loop

    ws = Workspace.open(make_settings())
    set_backend(LocalBackend(workspace=ws))
    try:
        _, production, _, windows = _run_maintenance(tmp_path, machines=6)
        version = int(production.rsplit("/", 1)[1])
        models = DeployedModels(ws)
        field = field_data(ws, windows, recordings=8)
        sources = fleet_sources(field, models, window_s=5)
        with local_server(ws) as url:
            fleet = make_fleet(url, devices=30, faulty=0.0, seed=3, **sources.options)
            stage = FleetStage(ws=ws, url=url, fleet=fleet)
            sources.bind(stage)
            _, token = create_enrollment_token(ws, "test")
            assert asyncio.run(fleet.enroll_all(token)) == {"accepted": 30}
            create_group(ws, GROUP, query=GROUP_QUERY)
            release = ensure_release(ws, version)
            stage.releases["good"] = release
            installed = stage.rollout("install", release, {**INSTALL_POLICY, "waves": "100"})
            assert installed.state == "completed"
            loop = run_closed_loop(stage, field, models, sources, drifts=DRIFTS, window_s=5)
    finally:
        set_backend(None)

    # drift detected from sketches on the drifted sites only, before and after
    names = loop.monitors
    assert all(share is not None and share < 0.5 for share in loop.before.values())
    assert loop.after["plant-1"] is not None and loop.after["plant-1"] < 0.5
    assert all((loop.after[site] or 0) >= 0.5 for site in DRIFTS)
    alerted = {a.evidence["monitor"] for a in loop.alerts}
    assert alerted == {names[site] for site in DRIFTS}
    rules = {r.id for r in monitors.list_rules(ws) if r.monitor == names["plant-1"]}
    assert not [a for a in monitors.list_alerts(ws).items if a.rule in rules]

    # each alert carries its evidence: the reports that fired it, with their figures
    for alert in loop.alerts:
        reports = {r.id for r in monitors.list_reports(ws, alert.evidence["monitor"])}
        assert alert.evidence["reports"] and set(alert.evidence["reports"]) <= reports
        assert all(f["drift_share"] >= 0.5 for f in alert.evidence["figures"])
        assert {a.kind: a.status for a in alert.actions} == {
            "notify": "succeeded",
            "collect": "succeeded",
            "retrain": "succeeded",
        }

    # the collections closed into new versions of the windows dataset
    closed = [c for c in list_collections(ws).items if c.state == "closed"]
    assert len(closed) == len(DRIFTS) and all(c.version and c.rows > 0 for c in closed)
    latest = datasets.get_version(ws, "datasets:/vibration-windows@latest")
    assert latest.version == max(c.version or 0 for c in closed) and latest.version > 1

    # a run of the pipeline, triggered by the alerts, trained on it and registered a model
    run = loop.pipeline_run
    assert run is not None and run.status == "succeeded" and "alert" in run.reasons
    assert pipelines.get_pipeline_run(ws, run.id).status == "succeeded"
    assert loop.version is not None and loop.version > version
    assert registry.resolve_model_uri(ws, "models:/machine-condition@production").version == (
        loop.version
    )

    # its release went out to every device
    assert loop.rollout is not None and loop.rollout.state == "completed"
    assert {d.release for d in stage.fleet.devices} == {loop.release.id}

    # better on the drifted sites (scored here on held-out windows), as good elsewhere
    before, after = _predictor(ws, version), _predictor(ws, loop.version)
    for site in DRIFTS:
        assert _accuracy(field, site, after) > _accuracy(field, site, before) + 0.05, site
    assert _accuracy(field, "plant-1", after) >= 0.95
    ws.close()
