"""run_monitor on sketches: exactly the drifted features, dataset and prediction drift,
skipped windows with their reasons, each window evaluated once."""

from __future__ import annotations

import numpy as np
import pytest

from edgeloop import monitors
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.monitoring.reference import Reference
from edgeloop.workspace import Workspace
from tests.monitors._monitors import FEATURES, HOUR, T0, ingest, register_version, window_data


def _fill(
    ws: Workspace,
    reference: Reference,
    windows: int,
    *,
    shift: tuple[str, ...] = (),
    devices: int = 3,
    n: int = 400,
    seed: int = 1,
    start: int = T0,
    **kwargs: object,
) -> None:
    rng = np.random.default_rng(seed)
    for w in range(windows):
        for d in range(devices):
            data = window_data(reference, rng, n, shift=shift, **kwargs)  # type: ignore[arg-type]
            ingest(
                ws,
                data,
                source=f"device:d{d}",
                start=start + w * HOUR,
                tags={"site": f"s{d % 2}"},
            )


def test_reports_flag_exactly_the_drifted_features(ws: Workspace, reference: Reference) -> None:
    monitors.create_monitor(ws, "m", model="pump", window="1h", start=T0, now=T0)
    _fill(ws, reference, 2)
    _fill(ws, reference, 2, shift=("f1", "f5"), start=T0 + 2 * HOUR, seed=2)
    reports = monitors.run_monitor(ws, "m", now=T0 + 4 * HOUR)
    assert [r.window_start for r in reports] == [T0 + i * HOUR for i in range(4)]
    assert all(r.status == "ok" and r.model_version == 1 for r in reports)
    assert [r.drifted_features() for r in reports] == [[], [], ["f1", "f5"], ["f1", "f5"]]
    drifted = reports[2]
    assert drifted.metrics["drift_share"] == pytest.approx(2 / len(FEATURES))
    assert drifted.metrics["dataset_drift"] == 0.0
    assert drifted.samples == 1200 and drifted.sources == 3
    f1 = drifted.features["f1"]
    assert f1["test"] == "wasserstein" and f1["threshold"] == 0.1  # 2,000 reference rows
    assert f1["statistic"] > 0.5 and f1["error_bound"] is not None
    assert sum(f1["counts"]) == 1200
    assert reports[0].metrics["mean_confidence"] == pytest.approx(0.8, abs=0.01)
    assert reports[0].metrics["prediction_drift"] == 0.0


def test_dataset_drift_at_the_drift_share(ws: Workspace, reference: Reference) -> None:
    monitors.create_monitor(ws, "half", model="pump", drift_share=0.25, start=T0, now=T0)
    _fill(ws, reference, 1, shift=("f0", "f2"))
    (report,) = monitors.run_monitor(ws, "half", now=T0 + HOUR)
    assert report.metrics["drift_share"] == 0.25 and report.metrics["dataset_drift"] == 1.0


def test_prediction_drift_and_confidence_shift(ws: Workspace, reference: Reference) -> None:
    monitors.create_monitor(ws, "p", model="pump", start=T0, now=T0)
    _fill(ws, reference, 1, shares=(0.2, 0.3, 0.5))
    (report,) = monitors.run_monitor(ws, "p", now=T0 + HOUR)
    assert report.drifted_features() == []
    assert report.metrics["prediction_drift"] == 1.0
    assert report.metrics["class_balance_shift"] == pytest.approx(0.4, abs=0.05)
    assert report.metrics["confidence_shift"] == pytest.approx(0.0, abs=0.02)
    shares = report.details["prediction"]
    assert shares["labels"] == ["ok", "worn", "broken"] and len(shares["reference"]) == 3


def test_small_windows_and_empty_windows_are_skipped_with_a_reason(
    ws: Workspace, reference: Reference
) -> None:
    monitors.create_monitor(ws, "m", model="pump", min_samples=500, start=T0, now=T0)
    _fill(ws, reference, 1, devices=1, n=200)  # 200 < 500
    _fill(ws, reference, 1, devices=2, n=600, start=T0 + 2 * HOUR)  # 1,200 >= 500
    small, empty, enough = monitors.run_monitor(ws, "m", now=T0 + 3 * HOUR)
    assert small.status == "skipped" and small.samples == 200
    assert "200 samples, fewer than min_samples 500" in small.reason
    assert small.metrics["drift_share"] is None and small.features == {}
    assert empty.status == "skipped" and empty.model_version is None
    assert "no data in the window" in empty.reason
    assert enough.status == "ok" and enough.metrics["drift_share"] == 0.0


def test_each_window_is_evaluated_once_and_only_when_closed(
    ws: Workspace, reference: Reference
) -> None:
    monitors.create_monitor(ws, "m", model="pump", delay="10m", start=T0, now=T0)
    _fill(ws, reference, 2)
    assert monitors.run_monitor(ws, "m", now=T0 + HOUR) == []  # closes at 1h + 10m
    first = monitors.run_monitor(ws, "m", now=T0 + 2 * HOUR)
    assert [r.window_start for r in first] == [T0]
    assert monitors.run_monitor(ws, "m", now=T0 + 2 * HOUR) == []
    second = monitors.run_monitor(ws, "m", now=T0 + 3 * HOUR)
    assert [r.window_start for r in second] == [T0 + HOUR]
    assert [r.id for r in monitors.list_reports(ws, "m")] == [first[0].id, second[0].id]
    assert monitors.get_monitor(ws, "m").evaluated_until == T0 + 2 * HOUR
    assert [r.id for r in monitors.list_reports(ws, "m", since=T0 + HOUR)] == [second[0].id]
    assert [r.id for r in monitors.list_reports(ws, "m", limit=1)] == [second[0].id]


def test_test_overrides_per_feature_and_for_all(ws: Workspace, reference: Reference) -> None:
    monitors.create_monitor(
        ws,
        "o",
        model="pump",
        tests=["*=ks:0.01", "f3=psi:0.0001", "f4=wasserstein:5", "f6=:0.001"],
        start=T0,
        now=T0,
    )
    _fill(ws, reference, 1, shift=("f4",))
    (report,) = monitors.run_monitor(ws, "o", now=T0 + HOUR)
    f = report.features
    assert (f["f0"]["test"], f["f0"]["threshold"]) == ("ks", 0.01)
    assert f["f0"]["p_value"] is not None
    assert f["f3"]["test"] == "psi" and f["f3"]["drifted"]
    assert (f["f4"]["test"], f["f4"]["threshold"]) == ("wasserstein", 5.0)
    assert not f["f4"]["drifted"] and f["f4"]["statistic"] > 0.5  # shifted, below 5
    assert (f["f6"]["test"], f["f6"]["threshold"]) == ("ks", 0.001)  # '*' gives the test
    assert report.drifted_features() == ["f3"]


def test_each_version_against_its_own_reference(ws: Workspace, reference: Reference) -> None:
    shifted = Reference.from_dict(reference.to_dict())
    version = register_version(ws, reference=None)
    monitors.create_monitor(ws, "v", model="pump", start=T0, now=T0)
    rng = np.random.default_rng(5)
    ingest(ws, window_data(reference, rng, 1500), version=1)
    ingest(ws, window_data(shifted, rng, 1500), version=version, source="device:d9")
    v1, v2 = monitors.run_monitor(ws, "v", now=T0 + HOUR)
    assert (v1.model_version, v1.status) == (1, "ok")
    assert (v2.model_version, v2.status) == (2, "skipped")
    assert "no reference" in v2.reason


def test_scope_by_tags_and_sources(ws: Workspace, reference: Reference) -> None:
    rng = np.random.default_rng(3)
    ingest(ws, window_data(reference, rng, 1500), source="device:a", tags={"site": "north"})
    ingest(
        ws,
        window_data(reference, rng, 1500, shift=("f2",)),
        source="device:b",
        tags={"site": "south"},
    )
    monitors.create_monitor(ws, "north", model="pump", tags={"site": "north"}, start=T0, now=T0)
    monitors.create_monitor(ws, "b", model="pump", sources=["device:b"], start=T0, now=T0)
    (north,) = monitors.run_monitor(ws, "north", now=T0 + HOUR)
    (b,) = monitors.run_monitor(ws, "b", now=T0 + HOUR)
    assert (north.samples, north.drifted_features()) == (1500, [])
    assert (b.samples, b.drifted_features()) == (1500, ["f2"])


def test_monitor_crud_and_bad_input(ws: Workspace) -> None:
    info = monitors.create_monitor(ws, "m", model="pump", window="15m", now=T0 + 1234)
    assert info.window_ms == 900_000 and info.start_at == T0 and info.scope.kind == "all"
    assert [m.name for m in monitors.list_monitors(ws)] == ["m"]
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        monitors.create_monitor(ws, "x", model="nope")
    with pytest.raises(NotFound, match="device group 'g'"):
        monitors.create_monitor(ws, "x", model="pump", group="g")
    bad = [
        ({"window": "soon"}, "window 'soon' is not a duration"),
        ({"window": "100ms"}, "window must be between 1s and 31d"),
        ({"tests": ["f0=magic"]}, "unknown drift test 'magic'"),
        ({"tests": ["f0=ks:1.5"]}, "must be in \\(0, 1\\)"),
        ({"tests": ["f0"]}, "is not feature=test"),
        ({"tests": ["nope=ks"]}, "tests name features that version 1 of 'pump' does not have"),
        ({"drift_share": 0}, "drift_share must be in \\(0, 1\\]"),
        ({"min_samples": 0}, "min_samples must be an integer >= 1"),
        ({"tags": {"site": "a"}, "sources": ["device:a"]}, "at most one scope"),
        ({"sources": ["phone"]}, "source 'phone' is not allowed"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValidationFailed, match=message):
            monitors.create_monitor(ws, "x", model="pump", **kwargs)  # type: ignore[arg-type]
    deleted = monitors.delete_monitor(ws, "m")
    assert deleted.name == "m" and monitors.list_monitors(ws) == []
    with pytest.raises(NotFound, match="monitor 'm' does not exist"):
        monitors.run_monitor(ws, "m")
