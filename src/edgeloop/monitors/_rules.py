"""Alert rules: a condition (:mod:`edgeloop.monitors._grammar`) on a monitor's reports or on
the fleet's health over a scope, the actions to run when it fires, and a cool-down.

>>> rule = create_rule(ws, "drift_share >= 0.5 for 2 windows", monitor="pump-drift",
...                    actions=["notify:https://hooks.example/ml", "retrain:pump"],
...                    cooldown="6h")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from edgeloop import datasets, registry
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.fleet import get_group
from edgeloop.fleet._rollouts import parse_duration
from edgeloop.monitors._alert_entities import ACTION_KINDS, ActionSpec, RuleInfo
from edgeloop.monitors._grammar import FLEET_METRICS, Condition, parse_condition
from edgeloop.store import AlertRule, AlertStore, MonitorStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "ActionInput",
    "create_rule",
    "delete_rule",
    "get_rule",
    "list_rules",
    "parse_action",
    "rule_info",
    "update_rule",
]

ActionInput = ActionSpec | Mapping[str, Any] | str
"""An action as a spec, a mapping (``{"kind": "retrain", "pipeline": "pump"}``) or the
command-line form (``notify:URL``, ``retrain:PIPELINE``, ``collect:DATASET:20x50``,
``pause-rollout``)."""

DEFAULT_COOLDOWN = "1h"
DEFAULT_WINDOW = "1h"
DEFAULT_COLLECT = (10, 100)
_MAX_ACTIONS = 10
_MAX_WINDOW_MS = 31 * 86_400_000
_COUNTS = re.compile(r"^(\d+)x(\d+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMS = "notify, notify:URL, retrain:PIPELINE, collect:DATASET[:DEVICESxSAMPLES], pause-rollout"


def _invalid(message: str, field: str = "actions") -> ValidationFailed:
    return ValidationFailed(message, details={"field": field})


def parse_action(text: str) -> ActionSpec:
    """The command-line form of an action (see :data:`ActionInput`)."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower().replace("-", "_")
    if kind == "notify":
        return ActionSpec(kind="notify", url=rest.strip() or None)
    if kind == "pause_rollout" and not rest:
        return ActionSpec(kind="pause_rollout")
    if kind == "retrain" and rest.strip():
        return ActionSpec(kind="retrain", pipeline=rest.strip())
    if kind == "collect" and rest.strip():
        dataset, _, counts = rest.strip().rpartition(":")
        match = _COUNTS.match(counts.strip())
        if dataset and match:
            return ActionSpec(
                kind="collect",
                dataset=dataset,
                devices=int(match[1]),
                samples_per_device=int(match[2]),
            )
        if dataset:
            raise _invalid(
                f"action {text!r}: {counts!r} is not DEVICESxSAMPLES (e.g. collect:pump:20x50)"
            )
        return ActionSpec(kind="collect", dataset=rest.strip())
    raise _invalid(f"action {text!r} is not one of {_FORMS}")


def _as_spec(value: ActionInput) -> ActionSpec:
    if isinstance(value, ActionSpec):
        return value
    if isinstance(value, str):
        return parse_action(value)
    try:
        return ActionSpec.model_validate(dict(value))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'action'}: {e['msg']}" for e in exc.errors()
        )
        raise _invalid(
            f"action {dict(value)!r} is not valid ({problems}); kinds: {', '.join(ACTION_KINDS)}"
        ) from exc


def _check_action(ws: Workspace, spec: ActionSpec) -> ActionSpec:
    allowed = {
        "notify": {"url", "secret", "secret_env"},
        "pause_rollout": set(),
        "retrain": {"pipeline"},
        "collect": {"dataset", "devices", "samples_per_device"},
    }[spec.kind]
    extra = sorted(k for k, v in spec.model_dump(exclude={"kind"}).items() if v is not None)
    extra = [k for k in extra if k not in allowed]
    if extra:
        raise _invalid(
            f"a {spec.kind} action takes {', '.join(sorted(allowed)) or 'no settings'}; "
            f"drop {', '.join(extra)}"
        )
    if spec.kind == "notify":
        if spec.url is not None:
            parts = urlsplit(spec.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _invalid(f"notify url {spec.url!r} is not an http(s) URL with a host")
        if spec.secret is not None and not 1 <= len(spec.secret) <= 512:
            raise _invalid("a webhook secret has 1 to 512 characters")
        if spec.secret_env is not None and not _ENV_NAME.match(spec.secret_env):
            raise _invalid(f"secret_env {spec.secret_env!r} is not an environment variable name")
    elif spec.kind == "retrain":
        if not spec.pipeline or len(spec.pipeline) > 256:
            raise _invalid("a retrain action names the pipeline to queue (1-256 characters)")
    elif spec.kind == "collect":
        if not spec.dataset:
            raise _invalid("a collect action names the dataset the samples are for")
        datasets.get_dataset(ws, spec.dataset)  # NotFound names it
        devices = spec.devices if spec.devices is not None else DEFAULT_COLLECT[0]
        samples = (
            spec.samples_per_device if spec.samples_per_device is not None else DEFAULT_COLLECT[1]
        )
        if not 1 <= devices <= 10_000 or not 1 <= samples <= 1_000_000:
            raise _invalid("a collect action asks 1 to 10000 devices for 1 to 1000000 samples each")
        spec = spec.model_copy(update={"devices": devices, "samples_per_device": samples})
    return spec


def _check_actions(ws: Workspace, actions: Sequence[ActionInput]) -> list[dict[str, Any]]:
    if isinstance(actions, str | bytes):
        raise _invalid("actions is a list (e.g. ['notify', 'retrain:pump'])")
    if len(actions) > _MAX_ACTIONS:
        raise _invalid(f"a rule runs at most {_MAX_ACTIONS} actions")
    return [_check_action(ws, _as_spec(a)).model_dump(exclude_none=True) for a in actions]


def _check_scope(
    ws: Workspace, condition: Condition, monitor: str | None, model: str | None, group: str | None
) -> None:
    if condition.source == "fleet":
        if monitor is not None:
            raise _invalid(
                f"{condition.metric} is fleet health from device telemetry: scope the rule "
                "with model and/or group, not a monitor",
                "monitor",
            )
        if model is None and group is None:
            raise _invalid(
                f"{condition.metric} is fleet health: name the model whose devices, and/or "
                "the device group, it is measured over",
                "model",
            )
        if model is not None:
            registry.get_model(ws, model)
        if group is not None:
            get_group(ws, group)
        return
    if monitor is None:
        raise _invalid(
            f"{condition.metric} is a monitor figure: name the monitor whose reports it reads "
            f"(fleet health metrics: {', '.join(FLEET_METRICS)})",
            "monitor",
        )
    if model is not None or group is not None:
        raise _invalid(
            "a rule on a monitor takes its model and scope from the monitor: drop model/group",
            "model" if model is not None else "group",
        )
    with ws.db.read() as s:
        if MonitorStore(s).find(monitor) is None:
            raise NotFound(f"monitor {monitor!r} does not exist", details={"monitor": monitor})


def _window(value: str | int) -> int:
    window = parse_duration(value, "window")
    if not 0 < window <= _MAX_WINDOW_MS:
        raise _invalid("window must be more than 0 and at most 31 days", "window")
    return window


def rule_info(row: AlertRule) -> RuleInfo:
    condition = Condition(row.metric, row.op, row.threshold, row.windows)
    return RuleInfo(
        id=row.id,
        when=row.condition,
        metric=row.metric,
        op=row.op,
        threshold=row.threshold,
        windows=row.windows,
        source=condition.source,
        monitor=row.monitor,
        model=row.model,
        group=row.group_name,
        window_ms=row.window_ms,
        cooldown_ms=row.cooldown_ms,
        actions=[ActionSpec.model_validate(a).public() for a in row.actions],
        enabled=row.enabled,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def create_rule(
    ws: Workspace,
    when: str,
    *,
    monitor: str | None = None,
    model: str | None = None,
    group: str | None = None,
    actions: Sequence[ActionInput] = (),
    cooldown: str | int = DEFAULT_COOLDOWN,
    window: str | int = DEFAULT_WINDOW,
    description: str = "",
    enabled: bool = True,
    now: int | None = None,
) -> RuleInfo:
    """A rule on ``monitor``'s reports, or on the health of ``model``'s devices and/or
    ``group``'s (over telemetry windows of ``window``). ``cooldown``: after an alert of this
    rule resolves, no new one for the same subject until it has passed."""
    condition = parse_condition(when)
    _check_scope(ws, condition, monitor, model, group)
    specs = _check_actions(ws, actions)
    cooldown_ms = parse_duration(cooldown, "cooldown")
    window_ms = _window(window)
    at = now if now is not None else now_ms()
    row = AlertRule(
        id=f"rule_{secrets.token_hex(6)}",
        monitor=monitor,
        model=model,
        group_name=group,
        condition=str(condition),
        metric=condition.metric,
        op=condition.op,
        threshold=condition.threshold,
        windows=condition.windows,
        window_ms=window_ms,
        actions=specs,
        cooldown_ms=cooldown_ms,
        enabled=enabled,
        description=description,
        created_at=at,
        created_by=ws.principal.name,
        updated_at=at,
    )
    with ws.db.write() as s:
        return rule_info(AlertStore(s).add_rule(row))


def get_rule(ws: Workspace, rule_id: str) -> RuleInfo:
    with ws.db.read() as s:
        return rule_info(AlertStore(s).get_rule(rule_id))


def list_rules(ws: Workspace, *, monitor: str | None = None) -> list[RuleInfo]:
    with ws.db.read() as s:
        return [rule_info(r) for r in AlertStore(s).rules(monitor=monitor)]


def update_rule(
    ws: Workspace,
    rule_id: str,
    *,
    when: str | None = None,
    actions: Sequence[ActionInput] | None = None,
    cooldown: str | int | None = None,
    window: str | int | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    now: int | None = None,
) -> RuleInfo:
    """Change a rule (its scope stays: make a new rule for another monitor, model or group).
    A changed condition applies from the next evaluation; open alerts stay open until it
    clears."""
    with ws.db.read() as s:
        current = AlertStore(s).get_rule(rule_id)
        scope = (current.monitor, current.model, current.group_name)
    condition = parse_condition(when) if when is not None else None
    if condition is not None:
        _check_scope(ws, condition, *scope)
    specs = _check_actions(ws, actions) if actions is not None else None
    cooldown_ms = parse_duration(cooldown, "cooldown") if cooldown is not None else None
    window_ms = _window(window) if window is not None else None
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        row = AlertStore(s).get_rule(rule_id, for_update=True)
        if condition is not None:
            row.condition, row.metric, row.op = str(condition), condition.metric, condition.op
            row.threshold, row.windows = condition.threshold, condition.windows
        if specs is not None:
            row.actions = specs
        if cooldown_ms is not None:
            row.cooldown_ms = cooldown_ms
        if window_ms is not None:
            row.window_ms = window_ms
        if enabled is not None:
            row.enabled = enabled
        if description is not None:
            row.description = description
        row.updated_at = at
        s.flush()
        return rule_info(row)


def delete_rule(ws: Workspace, rule_id: str, *, now: int | None = None) -> RuleInfo:
    """Delete a rule: it stops evaluating and its open alerts resolve; its past alerts stay."""
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        store = AlertStore(s)
        row = store.get_rule(rule_id, for_update=True)
        for alert in store.alerts(0, 1000, status="active", rule_id=rule_id):
            alert.status, alert.open_key = "resolved", None
            alert.resolved_at, alert.resolved_by = at, ws.principal.name
            alert.resolve_reason = "rule deleted"
        row.deleted_at, row.enabled, row.updated_at = at, False, at
        s.flush()
        return rule_info(row)
