"""The actions an alert runs: ``notify`` (the log, and a signed webhook), ``pause_rollout``,
``retrain`` (the pipelines' ``alert`` trigger) and ``collect`` (a data-collection request to
opted-in devices).

An alert's actions are written as ``pending`` rows in the transaction that opens it; then
:func:`run_pending_actions` claims each one (a locked row: ``running``, one worker at a time),
runs it outside any transaction, and records ``succeeded``, ``skipped`` or ``failed`` with its
result or error. An action that fails never loses the alert, and a worker that died while
running one leaves it to be claimed again after ``stale_ms`` (at most three attempts). Each
action acts as the principal ``alert:<id>`` (editor), so the rollout events, the queued
pipeline run and the collection request all name the alert that caused them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from edgeloop.errors import Conflict
from edgeloop.fleet import list_rollouts, pause_rollout, request_collection
from edgeloop.fleet._entities import RolloutInfo
from edgeloop.monitors._alert_entities import ActionInfo, ActionSpec, AlertInfo
from edgeloop.monitors._alerts import action_info, alert_info
from edgeloop.monitors._webhook import Transport, deliver, http_transport
from edgeloop.pipelines import enqueue
from edgeloop.store import AlertStore
from edgeloop.workspace import Principal, Workspace, now_ms

__all__ = ["DEFAULT_SECRET_ENV", "ActionFailed", "run_pending_actions"]

DEFAULT_SECRET_ENV = "EDGELOOP_WEBHOOK_SECRET"
MAX_ATTEMPTS = 3
STALE_MS = 10 * 60 * 1000
log = logging.getLogger("edgeloop.alerts")


class ActionFailed(Exception):
    """An action that could not do its work; ``result`` is recorded with the error."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = dict(result or {})


class _Skipped(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("skipped")
        self.result = result


def _why(alert: AlertInfo) -> str:
    value = "-" if alert.value is None else f"{alert.value:g}"
    return f"alert {alert.id}: {alert.when} ({alert.metric} = {value}, {alert.subject})"


def _notify(
    alert: AlertInfo,
    spec: ActionSpec,
    delivery: str,
    transport: Transport | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    log.warning("%s", _why(alert))
    if spec.url is None:
        return {"logged": True}
    env = spec.secret_env or DEFAULT_SECRET_ENV
    secret = spec.secret or os.environ.get(env)
    if not secret:
        raise ActionFailed(
            f"no webhook secret: give the notify action a secret, or set {env}",
            {"logged": True, "url": spec.url},
        )
    payload = {
        "event": "alert.opened",
        "alert": alert.model_dump(mode="json", exclude={"actions", "latest"}),
    }
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    outcome = deliver(
        transport or http_transport(),
        spec.url,
        body,
        secret=secret,
        delivery=delivery,
        now=now_ms,
        sleep=sleep,
    )
    result = {
        "logged": True,
        "url": spec.url,
        "status": outcome.status,
        "attempts": outcome.attempts,
    }
    if not outcome.ok:
        raise ActionFailed(
            f"webhook {spec.url} failed after {len(outcome.attempts)} attempt(s): "
            f"{', '.join(outcome.attempts)}",
            result,
        )
    return result


def _pause(ws: Workspace, alert: AlertInfo, now: int) -> dict[str, Any]:
    model, group = alert.evidence.get("model"), alert.evidence.get("group")
    if model is None and group is None:
        raise ActionFailed("the alert names neither a model nor a group whose rollouts to pause")
    running: list[RolloutInfo] = []
    cursor: str | None = None
    while True:
        page = list_rollouts(ws, state="running", cursor=cursor, limit=500)
        running.extend(
            r
            for r in page.items
            if (model is None or r.model == model) and (group is None or r.group == group)
        )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if not running:
        raise _Skipped({"paused": [], "note": f"no running rollout of {model or group}"})
    paused, moved_on = [], []
    for rollout in running:
        try:
            pause_rollout(ws, rollout.id, _why(alert), now=now)
        except Conflict:  # paused, completed or rolled back since it was listed
            moved_on.append(rollout.id)
            continue
        paused.append(rollout.id)
    if not paused:
        raise _Skipped({"paused": [], "moved_on": moved_on})
    return {"paused": paused, **({"moved_on": moved_on} if moved_on else {})}


def _run(
    ws: Workspace,
    alert: AlertInfo,
    spec: ActionSpec,
    delivery: str,
    now: int,
    transport: Transport | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    if spec.kind == "notify":
        return _notify(alert, spec, delivery, transport, sleep)
    if spec.kind == "pause_rollout":
        return _pause(ws, alert, now)
    if spec.kind == "retrain":
        assert spec.pipeline is not None
        detail = {
            "alert": alert.id,
            "rule": alert.rule,
            "when": alert.when,
            "subject": alert.subject,
            "value": alert.value,
            "evidence": alert.evidence,
        }
        entry = enqueue(ws, spec.pipeline, "alert", detail)
        return {"pipeline": entry.pipeline, "queued_at": entry.queued_at}
    assert spec.dataset is not None
    assert spec.devices is not None and spec.samples_per_device is not None
    collection = request_collection(
        ws,
        dataset=spec.dataset,
        devices=spec.devices,
        samples_per_device=spec.samples_per_device,
        model=alert.evidence.get("model"),
        group=alert.evidence.get("group"),
        reason=_why(alert),
        actor=ws.principal.name,
        now=now,
    )
    return {"collection": collection.id, "dataset": spec.dataset}


def _finish(
    ws: Workspace, action_id: int, status: str, result: dict[str, Any], error: str, now: int
) -> ActionInfo:
    with ws.db.write() as s:
        row = AlertStore(s).get_action(action_id)
        row.status, row.result, row.error, row.finished_at = status, result, error, now
        s.flush()
        return action_info(row)


def run_pending_actions(
    ws: Workspace,
    *,
    now: int | None = None,
    transport: Transport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stale_ms: int = STALE_MS,
) -> list[ActionInfo]:
    """Run every pending action (and any whose worker stopped ``stale_ms`` ago); safe in
    several workers at once: each action is claimed by one. ``transport`` sends webhooks
    (default: httpx)."""
    at = now if now is not None else now_ms()
    with ws.db.read() as s:
        ids = AlertStore(s).runnable_action_ids(at - stale_ms)
    done = []
    for action_id in ids:
        with ws.db.write() as s:
            store = AlertStore(s)
            row = store.claim_action(action_id, at, at - stale_ms)
            if row is None:
                continue  # another worker has it
            attempts = row.attempts
            spec = ActionSpec.model_validate({"kind": row.kind, **(row.config or {})})
            alert_row = store.get_alert(row.alert_id)
            alert = alert_info(alert_row)
        if attempts > MAX_ATTEMPTS:
            error = f"the worker running it stopped {MAX_ATTEMPTS} times"
            done.append(_finish(ws, action_id, "failed", {}, error, at))
            continue
        actor = ws.acting_as(Principal(name=f"alert:{alert.id}", role="editor"))
        delivery = f"{alert.id}:{action_id}"
        try:
            result = _run(actor, alert, spec, delivery, at, transport, sleep)
        except _Skipped as skipped:
            done.append(_finish(ws, action_id, "skipped", skipped.result, "", at))
        except ActionFailed as exc:
            log.error("%s: %s action failed: %s", alert.id, spec.kind, exc)
            done.append(_finish(ws, action_id, "failed", exc.result, str(exc), at))
        except Exception as exc:  # an action's failure is recorded; the alert stays
            log.exception("%s: %s action failed", alert.id, spec.kind)
            error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            done.append(_finish(ws, action_id, "failed", {}, str(error), at))
        else:
            done.append(_finish(ws, action_id, "succeeded", result, "", at))
    return done
