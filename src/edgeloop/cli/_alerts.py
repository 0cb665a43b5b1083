"""``edgeloop alerts`` (rules, alerts, acknowledge, resolve) and ``edgeloop monitors tick``,
on the local workspace."""

from __future__ import annotations

import json

import typer

from edgeloop.cli._render import JSON_OPTION, console, emit_json, fmt, table, when
from edgeloop.client import LocalBackend, get_backend
from edgeloop.errors import ValidationFailed
from edgeloop.monitors import _alerts, _rules, _tick
from edgeloop.monitors._alert_entities import AlertInfo, RuleInfo
from edgeloop.workspace import Workspace

__all__ = ["alerts_app", "monitors_tick"]

alerts_app = typer.Typer(
    help="Alerts: rules on monitor reports and fleet health, and the alerts they raise.",
    no_args_is_help=True,
)
rules_app = typer.Typer(help="Alert rules: a condition, a scope, actions.", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")


def _workspace() -> Workspace:
    backend = get_backend()
    if not isinstance(backend, LocalBackend):
        raise ValidationFailed(
            "the alerts commands work on a local workspace: unset EDGELOOP_URL, or call the "
            "server's /api/v1/alerts endpoints"
        )
    return backend.ws


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _action_text(action: dict[str, object]) -> str:
    kind = str(action["kind"])
    if kind == "notify":
        return f"notify:{action['url']}" if action.get("url") else "notify"
    if kind == "retrain":
        return f"retrain:{action['pipeline']}"
    if kind == "collect":
        return f"collect:{action['dataset']}:{action['devices']}x{action['samples_per_device']}"
    return kind.replace("_", "-")


def _scope(rule: RuleInfo) -> str:
    if rule.monitor is not None:
        return f"monitor {rule.monitor}"
    parts = [f"model {rule.model}"] if rule.model else []
    parts += [f"group {rule.group}"] if rule.group else []
    return ", ".join(parts) + f" ({_duration(rule.window_ms)} windows)"


def _print_rule(rule: RuleInfo) -> None:
    console.print(f"[bold]{rule.id}[/]  when {rule.when}  on {_scope(rule)}")
    console.print(
        f"  actions: {', '.join(_action_text(a) for a in rule.actions) or '(record only)'}"
        f"  cool-down {_duration(rule.cooldown_ms)}"
        f"{'' if rule.enabled else '  [yellow]disabled[/]'}"
    )


@rules_app.command("create")
def create_rule(
    when_: str = typer.Option(
        ..., "--when", help='Condition, e.g. "drift_share >= 0.5 for 2 windows".'
    ),
    monitor: str | None = typer.Option(None, help="The monitor whose reports the rule reads."),
    model: str | None = typer.Option(None, help="Fleet health over this model's devices."),
    group: str | None = typer.Option(None, help="Fleet health over this device group."),
    action: list[str] = typer.Option(
        [],
        "--action",
        help="notify[:URL] | retrain:PIPELINE | collect:DATASET[:DEVICESxSAMPLES] | "
        "pause-rollout (repeatable).",
    ),
    cooldown: str = typer.Option(
        _rules.DEFAULT_COOLDOWN, help="After an alert resolves, none for the same subject."
    ),
    window: str = typer.Option(
        _rules.DEFAULT_WINDOW, help="Telemetry window of a fleet-health rule."
    ),
    description: str = typer.Option("", help="What the rule is for."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an alert rule."""
    rule = _rules.create_rule(
        _workspace(),
        when_,
        monitor=monitor,
        model=model,
        group=group,
        actions=action,
        cooldown=cooldown,
        window=window,
        description=description,
    )
    if as_json:
        emit_json(rule)
        return
    _print_rule(rule)


@rules_app.command("list")
def list_rules(
    monitor: str | None = typer.Option(None, help="Only this monitor's rules."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the alert rules."""
    rules = _rules.list_rules(_workspace(), monitor=monitor)
    if as_json:
        emit_json(rules)
        return
    table(
        "alert rules",
        ["id", "when", "scope", "actions", "cool-down", "enabled"],
        [
            (
                r.id,
                r.when,
                _scope(r),
                ", ".join(_action_text(a) for a in r.actions) or "-",
                _duration(r.cooldown_ms),
                "yes" if r.enabled else "no",
            )
            for r in rules
        ],
    )


@rules_app.command("show")
def show_rule(
    rule_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """Show one alert rule."""
    rule = _rules.get_rule(_workspace(), rule_id)
    if as_json:
        emit_json(rule)
        return
    _print_rule(rule)


@rules_app.command("enable")
def enable_rule(rule_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Evaluate the rule again."""
    _print_rule(_rules.update_rule(_workspace(), rule_id, enabled=True))


@rules_app.command("disable")
def disable_rule(rule_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Stop evaluating the rule (its open alerts stay open)."""
    _print_rule(_rules.update_rule(_workspace(), rule_id, enabled=False))


@rules_app.command("delete")
def delete_rule(rule_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Delete the rule: its open alerts resolve, its past alerts stay."""
    rule = _rules.delete_rule(_workspace(), rule_id)
    console.print(f"deleted {rule.id} ({rule.when})")


def _value(alert: AlertInfo) -> str:
    return fmt(alert.value)


@alerts_app.command("list")
def list_alerts(
    status: str | None = typer.Option(
        None, help="open | acknowledged | resolved | active (not resolved)."
    ),
    rule: str | None = typer.Option(None, help="Only this rule's alerts."),
    limit: int = typer.Option(50, help="At most this many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List alerts, newest first."""
    page = _alerts.list_alerts(_workspace(), status=status, rule=rule, limit=limit)
    if as_json:
        emit_json(page.items)
        return
    table(
        "alerts",
        ["id", "status", "when", "subject", "value", "seen", "opened", "last seen"],
        [
            (
                a.id,
                a.status,
                a.when,
                a.subject,
                _value(a),
                a.occurrences,
                when(a.opened_at),
                when(a.last_seen_at),
            )
            for a in page.items
        ],
    )


def _print_alert(alert: AlertInfo) -> None:
    console.print(f"[bold]{alert.id}[/]  {alert.status}  rule {alert.rule}: {alert.when}")
    console.print(
        f"  subject {alert.subject}, value {_value(alert)}, seen {alert.occurrences}x, "
        f"opened {when(alert.opened_at)}, last seen {when(alert.last_seen_at)}"
    )
    if alert.acked_at is not None:
        console.print(f"  acknowledged {when(alert.acked_at)} by {alert.acked_by}")
    if alert.resolved_at is not None:
        console.print(
            f"  resolved {when(alert.resolved_at)} by {alert.resolved_by}: {alert.resolve_reason}"
        )
    console.print("  evidence:")
    console.print(json.dumps(alert.evidence, indent=2, sort_keys=True), markup=False)
    table(
        "actions",
        ["#", "kind", "status", "attempts", "result", "error"],
        [
            (
                a.position,
                a.kind,
                a.status,
                a.attempts,
                json.dumps(a.result, sort_keys=True) if a.result else "-",
                a.error or "-",
            )
            for a in alert.actions
        ],
    )


@alerts_app.command("show")
def show_alert(
    alert_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON_OPTION
) -> None:
    """An alert with its evidence and its actions."""
    alert = _alerts.get_alert(_workspace(), alert_id)
    if as_json:
        emit_json(alert)
        return
    _print_alert(alert)


@alerts_app.command("ack")
def ack_alert(alert_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Acknowledge an alert (it stays open until the condition clears or it is resolved)."""
    alert = _alerts.ack_alert(_workspace(), alert_id)
    console.print(f"{alert.id} {alert.status}")


@alerts_app.command("resolve")
def resolve_alert(
    alert_id: str = typer.Argument(..., metavar="ID"),
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
) -> None:
    """Resolve an alert by hand (the rule's cool-down starts now)."""
    alert = _alerts.resolve_alert(_workspace(), alert_id, reason)
    console.print(f"{alert.id} {alert.status}")


def monitors_tick(as_json: bool = JSON_OPTION) -> None:
    """Once: run due monitors, judge the alert rules, run the new alerts' actions."""
    report = _tick.tick(_workspace())
    if as_json:
        emit_json(report)
        return
    new = sum(report.reports.values())
    evaluation = report.evaluation
    console.print(
        f"{new} new report(s) from {len(report.reports)} monitor(s); {evaluation.rules} rule(s): "
        f"{len(evaluation.opened)} opened, {len(evaluation.updated)} updated, "
        f"{len(evaluation.resolved)} resolved, {len(evaluation.suppressed)} in cool-down"
    )
    for name, error in {**report.monitor_errors, **evaluation.errors}.items():
        console.print(f"[red]{name}[/]: {error}")
    for action in report.actions:
        line = f"{action.alert} {action.kind}: {action.status}"
        console.print(line + (f" ({action.error})" if action.error else ""))
