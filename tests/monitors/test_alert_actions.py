"""The actions of an alert: a signed webhook a receiver can verify (with bounded retries),
pausing the model's rollouts, queueing a retraining run, requesting data collection; a failed
action is recorded and the alert stays; two workers at once run everything once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pyarrow as pa
import pytest
from sqlalchemy import update

from edgeloop import datasets, monitors, pipelines
from edgeloop.fleet import _devices, _rollouts, list_collections
from edgeloop.monitors import TickReport
from edgeloop.store import AlertAction
from edgeloop.workspace import Workspace
from tests.fleet._fleet import FakeDevice
from tests.fleet.test_rollouts import Fleet, make_fleet
from tests.monitors._alerting import SECRET, Receiver, add_report, at
from tests.monitors._monitors import T0

HOOK = "https://hooks.example/ml"


@pytest.fixture
def monitor(ws: Workspace) -> str:
    monitors.create_monitor(ws, "vib", model="pump", window="1h", start=T0, now=T0)
    return "vib"


def _fire(
    ws: Workspace,
    monitor: str,
    *actions: str | dict[str, str],
    transport: Receiver | None = None,
    sleep: Callable[[float], None] = lambda _: None,
) -> TickReport:
    """A rule with ``actions`` on ``monitor``, a breaching report, and one tick."""
    monitors.create_rule(ws, "drift_share >= 0.5", monitor=monitor, actions=list(actions))
    add_report(ws, monitor, 0, drift_share=0.9)
    report = monitors.tick(ws, now=at(0), transport=transport, sleep=sleep)
    assert len(report.evaluation.opened) == 1
    return report


def test_the_webhook_is_signed_and_a_receiver_verifies_it(ws: Workspace, monitor: str) -> None:
    hook = Receiver()
    spec = {"kind": "notify", "url": HOOK, "secret": SECRET}
    report = _fire(ws, monitor, spec, transport=hook)
    (alert_id,) = report.evaluation.opened
    (request,) = hook.requests
    assert request["verified"] and request["url"] == HOOK
    assert request["body"]["event"] == "alert.opened"
    assert request["body"]["alert"]["id"] == alert_id
    assert request["body"]["alert"]["evidence"]["when"] == "drift_share >= 0.5"
    assert request["headers"]["X-Edgeloop-Delivery"].startswith(alert_id)
    (action,) = monitors.get_alert(ws, alert_id).actions
    assert (action.kind, action.status, action.result["status"]) == ("notify", "succeeded", 200)
    assert action.config["secret"] == "***"
    # what a receiver must refuse: another body, another secret, an old timestamp
    body = b'{"forged": true}'
    stamp = request["headers"]["X-Edgeloop-Timestamp"]
    signature = request["headers"]["X-Edgeloop-Signature"]
    assert not monitors.verify_signature(SECRET, body, stamp, signature, now=int(stamp))
    raw = monitors.verify_signature
    assert not raw(
        "other", b"", stamp, monitors._webhook.sign(SECRET, b"", int(stamp)), now=int(stamp)
    )
    good = monitors._webhook.sign(SECRET, body, int(stamp))
    assert raw(SECRET, body, stamp, good, now=int(stamp) + 60_000)
    assert not raw(SECRET, body, stamp, good, now=int(stamp) + 10 * 60_000)


def test_the_secret_may_come_from_the_environment(
    ws: Workspace, monitor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_WEBHOOK_SECRET", SECRET)
    hook = Receiver()
    _fire(ws, monitor, f"notify:{HOOK}", transport=hook)
    assert [r["verified"] for r in hook.requests] == [True]


def test_retries_are_bounded_and_a_failure_keeps_the_alert(ws: Workspace, monitor: str) -> None:
    hook, waits = Receiver(statuses=[500, 0, 503]), list[float]()
    spec = {"kind": "notify", "url": HOOK, "secret": SECRET}
    report = _fire(ws, monitor, spec, "notify", transport=hook, sleep=waits.append)
    assert len(hook.requests) == 3 and waits == [1.0, 2.0]
    alert = monitors.get_alert(ws, report.evaluation.opened[0])
    assert alert.status == "open"
    failed, logged = alert.actions
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "failed after 3 attempt(s): 500, OSError: connection refused, 503" in failed.error
    assert failed.result["attempts"] == ["500", "OSError: connection refused", "503"]
    assert (logged.status, logged.result) == ("succeeded", {"logged": True})
    assert monitors.tick(ws, now=at(0, 5), transport=hook).actions == []  # not re-run


def test_a_client_error_is_not_retried_and_a_missing_secret_fails(
    ws: Workspace, monitor: str
) -> None:
    hook = Receiver(statuses=[404])
    spec = {"kind": "notify", "url": HOOK, "secret": SECRET}
    report = _fire(ws, monitor, spec, f"notify:{HOOK}", transport=hook)
    assert len(hook.requests) == 1
    first, second = report.actions
    assert first.status == "failed" and first.result["attempts"] == ["404"]
    assert second.status == "failed" and "EDGELOOP_WEBHOOK_SECRET" in second.error


@pytest.fixture
def fleet(ws: Workspace) -> Fleet:
    return make_fleet(ws, n=4)


def test_pause_rollout_pauses_the_running_rollouts_of_the_model(
    ws: Workspace, monitor: str, fleet: Fleet
) -> None:
    rollout = _rollouts.create_rollout(ws, fleet.new.id, "plant", waves="50,100", now=T0)
    assert rollout.state == "running"
    report = _fire(ws, monitor, "pause-rollout")
    (alert_id,) = report.evaluation.opened
    (action,) = report.actions
    assert (action.status, action.result) == ("succeeded", {"paused": [rollout.id]})
    assert _rollouts.get_rollout(ws, rollout.id).state == "paused"
    event = _rollouts.list_rollout_events(ws, rollout.id)[-1]
    assert (event.to_state, event.actor) == ("paused", f"alert:{alert_id}")
    assert alert_id in event.reason and "drift_share >= 0.5" in event.reason


def test_pause_rollout_without_a_running_rollout_is_skipped(ws: Workspace, monitor: str) -> None:
    (action,) = _fire(ws, monitor, "pause-rollout").actions
    assert action.status == "skipped" and action.result["paused"] == []


def test_retrain_queues_the_pipeline_with_the_evidence(ws: Workspace, monitor: str) -> None:
    report = _fire(ws, monitor, "retrain:pump-train")
    (alert_id,) = report.evaluation.opened
    assert report.actions[0].result["pipeline"] == "pump-train"
    (entry,) = pipelines.queued(ws)
    (reason,) = entry.reasons["alert"]
    assert (reason["alert"], reason["by"]) == (alert_id, f"alert:{alert_id}")
    assert reason["evidence"]["reports"] and reason["when"] == "drift_share >= 0.5"


def _opted_in(ws: Workspace, fleet: Fleet, device_id: str) -> FakeDevice:
    device = FakeDevice(device_id, release=fleet.old.id)
    _devices.enroll_device(
        ws, device.id, device.public_key, device.attributes(), now=T0, data_collection=True
    )
    _devices.accept_device(ws, device.id)
    device.checkin(ws, now=T0)
    return device


def test_collect_requests_samples_from_opted_in_devices(
    ws: Workspace, monitor: str, fleet: Fleet
) -> None:
    table = pa.table({"temp": [20.0, 21.5, 19.0], "label": ["ok", "ok", "fault"]})
    datasets.add_version(ws, "pump-data", table, label="label")
    _opted_in(ws, fleet, "collector-1")
    report = _fire(ws, monitor, "collect:pump-data:5x20")
    (alert_id,) = report.evaluation.opened
    (action,) = report.actions
    assert action.status == "succeeded", action.error
    (collection,) = list_collections(ws).items
    assert action.result == {"collection": collection.id, "dataset": "pump-data"}
    assert (collection.samples_per_device, collection.model) == (20, "pump")
    assert collection.created_by == f"alert:{alert_id}" and alert_id in collection.reason


def test_a_collect_that_finds_no_device_fails_and_the_alert_stays(
    ws: Workspace, monitor: str
) -> None:
    datasets.add_version(ws, "pump-data", pa.table({"temp": [1.0, 2.0]}))
    report = _fire(ws, monitor, "collect:pump-data:5x20", "retrain:pump-train")
    collect, retrain = report.actions
    assert collect.status == "failed" and "opted in to data collection" in collect.error
    assert retrain.status == "succeeded"
    assert monitors.get_alert(ws, collect.alert).status == "open"


def test_an_action_whose_worker_stopped_is_run_again_at_most_three_times(
    ws: Workspace, monitor: str
) -> None:
    monitors.create_rule(ws, "drift_share >= 0.5", monitor=monitor, actions=["notify"])
    add_report(ws, monitor, 0, drift_share=0.9)
    monitors.evaluate_rules(ws, now=at(0))
    with ws.db.write() as s:  # as if a worker claimed it and died
        s.execute(update(AlertAction).values(status="running", started_at=at(0), attempts=1))
    assert monitors.run_pending_actions(ws, now=at(0, 5)) == []  # still someone's
    (again,) = monitors.run_pending_actions(ws, now=at(0, 12))
    assert (again.status, again.attempts) == ("succeeded", 2)
    with ws.db.write() as s:
        s.execute(update(AlertAction).values(status="running", started_at=at(0), attempts=3))
    (given_up,) = monitors.run_pending_actions(ws, now=at(0, 30))
    assert given_up.status == "failed" and "stopped 3 times" in given_up.error


# ---- several workers ---------------------------------------------------------------------------


@pytest.fixture
def workers(ws: Workspace) -> Iterator[list[Workspace]]:
    opened = [Workspace.open(ws.settings) for _ in range(2)]  # an engine each, like replicas
    yield opened
    for worker in opened:
        worker.close()


def test_two_workers_ticking_at_once_open_one_alert_and_run_each_action_once(
    ws: Workspace, monitor: str, workers: list[Workspace]
) -> None:
    spec = {"kind": "notify", "url": HOOK, "secret": SECRET}
    monitors.create_rule(ws, "drift_share >= 0.5", monitor=monitor, actions=[spec, "retrain:p"])
    hook = Receiver()
    reports: list[TickReport] = []
    errors: list[BaseException] = []
    for window in range(3):
        add_report(ws, monitor, window, drift_share=0.9)
        barrier = threading.Barrier(len(workers))

        def work(
            worker: Workspace, now: int = at(window), barrier: threading.Barrier = barrier
        ) -> None:
            try:
                barrier.wait()
                reports.append(monitors.tick(worker, now=now, transport=hook))
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert sum(len(r.evaluation.opened) for r in reports) == 1
    assert sum(len(r.evaluation.updated) for r in reports) == 2
    assert len(hook.requests) == 1
    (alert,) = monitors.list_alerts(ws).items
    assert alert.occurrences == 3
    actions = monitors.get_alert(ws, alert.id).actions
    assert [(a.status, a.attempts) for a in actions] == [("succeeded", 1), ("succeeded", 1)]
    assert len(pipelines.queued(ws)[0].reasons["alert"]) == 1


def test_only_the_lease_holder_runs_the_loop(ws: Workspace, monitor: str) -> None:
    one = monitors.MonitorLoop(ws, holder="one", transport=Receiver())
    two = monitors.MonitorLoop(ws, holder="two")
    assert one.tick(now=at(0)) is not None
    assert two.tick(now=at(0)) is None
    one.release()
    assert two.tick(now=at(0)) is not None
    stop = threading.Event()
    stop.set()
    two.run_forever(stop, interval=0.01)  # returns at once when stopped
