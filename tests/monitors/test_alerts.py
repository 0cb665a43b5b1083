"""Alert rules over sequences of reports: ``for N windows``, de-duplication, auto-resolve,
cool-down, acknowledge and resolve by hand, per model version, feature figures, fleet
health over a scope, and rules refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from edgeloop import monitors
from edgeloop.errors import Conflict, FilterSyntaxError, NotFound, ValidationFailed
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.fleet._telemetry import record_telemetry
from edgeloop.monitoring.reference import Reference
from edgeloop.workspace import Workspace
from tests.fleet._fleet import FakeDevice, enrolled
from tests.fleet.test_rollouts import make_fleet
from tests.monitors._alerting import add_report, at
from tests.monitors._monitors import HOUR, T0, ingest, window_data

MIN = 60_000


@pytest.fixture
def monitor(ws: Workspace) -> str:
    monitors.create_monitor(ws, "vib", model="pump", window="1h", start=T0, now=T0)
    return "vib"


def _statuses(ws: Workspace) -> list[tuple[str, int]]:
    return [(a.status, a.occurrences) for a in reversed(monitors.list_alerts(ws).items)]


def test_for_n_windows_fires_only_when_the_last_n_breach(ws: Workspace, monitor: str) -> None:
    rule = monitors.create_rule(ws, "drift_share >= 0.5 for 2 windows", monitor=monitor)
    sequence = [0.6, 0.2, 0.7, 0.8]
    opened = []
    for window, share in enumerate(sequence):
        add_report(ws, monitor, window, drift_share=share)
        opened.append(monitors.evaluate_rules(ws, now=at(window)).opened)
    assert [len(o) for o in opened] == [0, 0, 0, 1]
    alert = monitors.get_alert(ws, opened[3][0])
    assert (alert.rule, alert.subject, alert.status) == (rule.id, "monitor:vib/v1", "open")
    assert alert.value == 0.8
    assert alert.evidence["when"] == "drift_share >= 0.5 for 2 windows"
    assert len(alert.evidence["reports"]) == 2
    assert [f["drift_share"] for f in alert.evidence["figures"]] == [0.7, 0.8]


def test_repeated_breaches_update_one_alert_until_it_clears(ws: Workspace, monitor: str) -> None:
    monitors.create_rule(ws, "accuracy < 0.85", monitor=monitor, cooldown="0s")
    for window, accuracy in enumerate([0.8, 0.7, 0.75]):
        add_report(ws, monitor, window, accuracy=accuracy)
        monitors.evaluate_rules(ws, now=at(window))
        monitors.evaluate_rules(ws, now=at(window, 5))  # nothing new: no change
    assert _statuses(ws) == [("open", 3)]
    first = monitors.list_alerts(ws).items[0]
    assert first.evidence["figures"][0]["accuracy"] == 0.8  # what fired it stays
    assert first.latest["figures"][0]["accuracy"] == 0.75
    add_report(ws, monitor, 3, accuracy=0.9)
    report = monitors.evaluate_rules(ws, now=at(3))
    assert report.resolved == [first.id]
    resolved = monitors.get_alert(ws, first.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "auto")
    assert "no longer < 0.85" in resolved.resolve_reason
    add_report(ws, monitor, 4, accuracy=0.6)
    monitors.evaluate_rules(ws, now=at(4))
    assert _statuses(ws) == [("resolved", 3), ("open", 1)]


def test_no_new_alert_within_the_cooldown_after_one_resolved(ws: Workspace, monitor: str) -> None:
    rule = monitors.create_rule(ws, "drift_share >= 0.5", monitor=monitor, cooldown="3h")
    figures = [0.9, 0.1, 0.9, 0.9, 0.9, 0.9]  # breach, clear (resolved at window 1), ...
    reports = []
    for window, share in enumerate(figures):
        add_report(ws, monitor, window, drift_share=share)
        reports.append(monitors.evaluate_rules(ws, now=at(window)))
    # resolved at window 1's end + 1 min: 3 h later (window 4) a breach opens a new alert
    assert [len(r.opened) for r in reports] == [1, 0, 0, 0, 1, 0]
    assert [r.suppressed for r in reports] == [[], [], [rule.id], [rule.id], [], []]
    assert _statuses(ws) == [("resolved", 1), ("open", 2)]


def test_ack_keeps_it_open_and_resolve_by_hand_starts_the_cooldown(
    ws: Workspace, monitor: str
) -> None:
    monitors.create_rule(ws, "drift_share >= 0.5", monitor=monitor, cooldown="2h")
    add_report(ws, monitor, 0, drift_share=0.9)
    (alert_id,) = monitors.evaluate_rules(ws, now=at(0)).opened
    acked = monitors.ack_alert(ws, alert_id, now=at(0, 2))
    assert (acked.status, acked.acked_at) == ("acknowledged", at(0, 2))
    assert monitors.ack_alert(ws, alert_id).acked_at == at(0, 2)  # idempotent
    add_report(ws, monitor, 1, drift_share=0.8)
    assert monitors.evaluate_rules(ws, now=at(1)).updated == [alert_id]
    done = monitors.resolve_alert(ws, alert_id, "recalibrated the sensors", now=at(1, 2))
    assert (done.status, done.resolve_reason) == ("resolved", "recalibrated the sensors")
    with pytest.raises(Conflict):
        monitors.resolve_alert(ws, alert_id)
    with pytest.raises(Conflict):
        monitors.ack_alert(ws, alert_id)
    assert monitors.evaluate_rules(ws, now=at(1, 5)).opened == []  # the same data again
    add_report(ws, monitor, 2, drift_share=0.8)
    assert monitors.evaluate_rules(ws, now=at(2)).suppressed != []  # within 2 h
    add_report(ws, monitor, 3, drift_share=0.8)
    assert len(monitors.evaluate_rules(ws, now=at(3, 3)).opened) == 1
    assert [a.status for a in monitors.list_alerts(ws, status="active").items] == ["open"]


def test_each_model_version_is_its_own_subject(ws: Workspace, monitor: str) -> None:
    monitors.create_rule(ws, "accuracy < 0.85", monitor=monitor)
    add_report(ws, monitor, 0, version=1, accuracy=0.7)
    add_report(ws, monitor, 0, version=2, accuracy=0.95)
    add_report(ws, monitor, 1, version=None, status="skipped")
    report = monitors.evaluate_rules(ws, now=at(1))
    assert [monitors.get_alert(ws, a).subject for a in report.opened] == ["monitor:vib/v1"]


def test_skipped_windows_and_missing_figures_change_nothing(ws: Workspace, monitor: str) -> None:
    monitors.create_rule(ws, "accuracy < 0.85 for 2 windows", monitor=monitor)
    add_report(ws, monitor, 0, accuracy=0.5)
    add_report(ws, monitor, 1, accuracy=None)  # no labels in that window
    assert monitors.evaluate_rules(ws, now=at(1)).opened == []
    add_report(ws, monitor, 2, accuracy=0.5)
    add_report(ws, monitor, 3, status="skipped")
    assert monitors.evaluate_rules(ws, now=at(3)).opened == []  # 0.5 after None: not 2 yet
    add_report(ws, monitor, 4, accuracy=0.5)
    assert len(monitors.evaluate_rules(ws, now=at(4)).opened) == 1


def test_a_rule_on_one_feature(ws: Workspace, monitor: str) -> None:
    monitors.create_rule(ws, "features.f3.drifted == 1", monitor=monitor)
    add_report(ws, monitor, 0, features={"f3": {"drifted": False, "statistic": 0.01}})
    assert monitors.evaluate_rules(ws, now=at(0)).opened == []
    add_report(ws, monitor, 1, features={"f3": {"drifted": True, "statistic": 0.4}})
    (alert_id,) = monitors.evaluate_rules(ws, now=at(1)).opened
    assert monitors.get_alert(ws, alert_id).value == 1.0


def test_drift_in_device_sketches_opens_an_alert_through_tick(
    ws: Workspace, monitor: str, reference: Reference
) -> None:
    rule = monitors.create_rule(ws, "drift_share >= 0.5 for 2 windows", monitor=monitor)
    rng = np.random.default_rng(3)
    drifted = ["f0", "f1", "f2", "f3", "f4"]
    for hour in range(3):
        for device in ("d1", "d2"):
            data = window_data(reference, rng, 400, shift=drifted if hour else (), by=1.5)
            ingest(ws, data, source=f"device:{device}", start=T0 + hour * HOUR)
    first = monitors.tick(ws, now=T0 + 2 * HOUR + MIN)
    assert first.reports == {"vib": 2} and first.evaluation.opened == []
    second = monitors.tick(ws, now=T0 + 3 * HOUR + MIN)
    assert second.reports == {"vib": 1}
    (alert_id,) = second.evaluation.opened
    alert = monitors.get_alert(ws, alert_id)
    assert alert.rule == rule.id and alert.value is not None and alert.value >= 0.5
    assert set(drifted) <= set(alert.evidence["drifted_features"])
    again = monitors.tick(ws, now=T0 + 3 * HOUR + 2 * MIN)
    assert again.reports == {"vib": 0} and again.evaluation.opened == []


# ---- fleet health ------------------------------------------------------------------------------


def _telemetry(ws: Workspace, device: str, release: str, end: int, errors: int) -> None:
    report = TelemetryReport.model_validate(
        {
            "window_start": end - 10 * MIN,
            "window_end": end,
            "release": release,
            "model_version": 1,
            "inference_count": 100,
            "error_count": errors,
            "latency_ms": {"edges": [10, 20, 40, 80], "counts": [50, 40, 8, 2, 0]},
        }
    )
    record_telemetry(ws, device, report, now=end)


def test_fleet_health_over_a_models_devices_and_a_group(workspace: Workspace) -> None:
    fleet = make_fleet(workspace, n=4)
    base = T0 // HOUR * HOUR + 10 * HOUR
    by_model = monitors.create_rule(
        workspace, "error_rate > 0.02 for 2 windows", model="pump", window="1h"
    )
    by_group = monitors.create_rule(
        workspace, "latency_p95_ms > 30", group="plant", window="1h", cooldown="0s"
    )
    other = enrolled(workspace, FakeDevice("elsewhere", site="plant-9"))
    for hour, errors in enumerate([5, 1, 5, 5]):
        end = base + hour * HOUR + 30 * MIN
        for device in fleet.devices[:2]:
            _telemetry(workspace, device.id, fleet.old.id, end, errors)
        _telemetry(workspace, other.id, "rel_unknown", end, 0)
    opened = [
        monitors.evaluate_rules(workspace, now=base + (h + 1) * HOUR + MIN).opened for h in range(4)
    ]
    by_rule = {monitors.get_alert(workspace, a).rule: a for o in opened for a in o}
    assert set(by_rule) == {by_model.id, by_group.id}
    model_alert = monitors.get_alert(workspace, by_rule[by_model.id])
    assert model_alert.subject == "model:pump"
    assert model_alert.opened_at == base + 4 * HOUR + MIN  # windows 3 and 4 both at 5 %
    windows = model_alert.evidence["windows"]
    assert [(w["error_rate"], w["devices"]) for w in windows] == [(0.05, 2), (0.05, 2)]
    group_alert = monitors.get_alert(workspace, by_rule[by_group.id])
    assert group_alert.subject == "group:plant" and group_alert.value is not None


def test_a_scope_without_telemetry_is_not_judged(workspace: Workspace) -> None:
    make_fleet(workspace, n=2)
    monitors.create_rule(workspace, "error_rate > 0.02", model="pump")
    report = monitors.evaluate_rules(workspace, now=T0 + 5 * HOUR)
    assert (report.rules, report.opened, report.errors) == (1, [], {})


# ---- rules refused -----------------------------------------------------------------------------


def test_rules_are_checked_against_their_scope(ws: Workspace, monitor: str) -> None:
    with pytest.raises(ValidationFailed, match="name the monitor"):
        monitors.create_rule(ws, "drift_share >= 0.5")
    with pytest.raises(ValidationFailed, match="fleet health"):
        monitors.create_rule(ws, "error_rate > 0.02", monitor=monitor)
    with pytest.raises(ValidationFailed, match="name the model"):
        monitors.create_rule(ws, "error_rate > 0.02")
    with pytest.raises(ValidationFailed, match="takes its model and scope from the monitor"):
        monitors.create_rule(ws, "accuracy < 0.8", monitor=monitor, model="pump")
    with pytest.raises(NotFound, match="monitor 'nope'"):
        monitors.create_rule(ws, "accuracy < 0.8", monitor="nope")
    with pytest.raises(NotFound):
        monitors.create_rule(ws, "error_rate > 0.02", group="nope")
    with pytest.raises(FilterSyntaxError):
        monitors.create_rule(ws, "accuracy << 0.8", monitor=monitor)
    with pytest.raises(ValidationFailed, match="http"):
        monitors.create_rule(ws, "accuracy < 0.8", monitor=monitor, actions=["notify:ftp://x"])
    with pytest.raises(NotFound):
        monitors.create_rule(ws, "accuracy < 0.8", monitor=monitor, actions=["collect:nope"])
    with pytest.raises(ValidationFailed, match="drop pipeline"):
        monitors.create_rule(
            ws, "accuracy < 0.8", monitor=monitor, actions=[{"kind": "notify", "pipeline": "x"}]
        )
    with pytest.raises(ValidationFailed, match="not valid"):
        monitors.create_rule(ws, "accuracy < 0.8", monitor=monitor, actions=[{"kind": "page"}])
    with pytest.raises(ValidationFailed, match="cooldown"):
        monitors.create_rule(ws, "accuracy < 0.8", monitor=monitor, cooldown="soon")
    assert monitors.list_rules(ws) == []


def test_rule_changes_and_deletion(ws: Workspace, monitor: str) -> None:
    rule = monitors.create_rule(ws, "accuracy < 0.85", monitor=monitor, now=T0)
    add_report(ws, monitor, 0, accuracy=0.5)
    (alert_id,) = monitors.evaluate_rules(ws, now=at(0)).opened
    changed = monitors.update_rule(
        ws, rule.id, when="accuracy<0.6 for 1 window", cooldown="30m", enabled=False, now=T0 + 1
    )
    assert (changed.when, changed.cooldown_ms, changed.enabled) == (
        "accuracy < 0.6",
        1_800_000,
        False,
    )
    assert monitors.evaluate_rules(ws, now=at(0, 9)).rules == 0
    with pytest.raises(ValidationFailed):
        monitors.update_rule(ws, rule.id, when="error_rate > 0.1")  # the scope is a monitor
    monitors.delete_rule(ws, rule.id)
    assert monitors.list_rules(ws) == []
    with pytest.raises(NotFound):
        monitors.get_rule(ws, rule.id)
    gone = monitors.get_alert(ws, alert_id)
    assert (gone.status, gone.resolve_reason) == ("resolved", "rule deleted")


def test_a_rule_whose_monitor_was_deleted_is_reported_and_the_others_go_on(
    ws: Workspace, monitor: str
) -> None:
    monitors.create_monitor(ws, "other", model="pump", start=T0, now=T0)
    doomed = monitors.create_rule(ws, "accuracy < 0.85", monitor="other")
    monitors.create_rule(ws, "accuracy < 0.85", monitor=monitor)
    monitors.delete_monitor(ws, "other")
    add_report(ws, monitor, 0, accuracy=0.5)
    report = monitors.evaluate_rules(ws, now=at(0))
    assert len(report.opened) == 1 and set(report.errors) == {doomed.id}
