"""What a rule sees when it is judged: the figures of a monitor's latest reports, or the
fleet's health over the last closed telemetry windows of a scope, with the evidence that
an alert records.

A :class:`Verdict` is ``breach`` (the N latest windows all breach), ``clear`` (the latest
window does not) or neither (not enough data: nothing changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.fleet._groups import group_devices
from edgeloop.fleet._telemetry import health_figures
from edgeloop.monitors._grammar import Condition
from edgeloop.store import AlertRule, AlertStore, DeviceStore, MonitorReport, MonitorStore

__all__ = ["Verdict", "fleet_verdicts", "judge", "monitor_verdicts", "report_value"]

_RECENT_REPORTS = 50


@dataclass
class Verdict:
    subject: str
    breach: bool | None
    """True: breached for the rule's N windows; False: the latest window is clear; None:
    not enough data to say."""
    value: float | None
    evidence: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """Identifies the newest window judged: a repeat with the same key is no new breach."""


def judge(condition: Condition, values: list[float | None]) -> bool | None:
    """Breach if the last ``windows`` values all breach, clear if the last one is known and
    does not, None otherwise (``values`` oldest first)."""
    if not values or values[-1] is None:
        return None
    if not condition.holds(values[-1]):
        return False
    recent = values[-condition.windows :]
    if len(recent) < condition.windows or any(v is None for v in recent):
        return None
    return all(condition.holds(v) for v in recent if v is not None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def report_value(metric: str, metrics: dict[str, Any], features: dict[str, Any]) -> float | None:
    """A report's figure: a key of its metrics, or ``features.NAME.KEY``."""
    if metric.startswith("features."):
        _, name, key = metric.split(".", 2)
        return _number((features.get(name) or {}).get(key))
    return _number(metrics.get(metric))


def _condition(rule: AlertRule) -> Condition:
    return Condition(rule.metric, rule.op, rule.threshold, rule.windows)


def _report_evidence(rule: AlertRule, reports: list[MonitorReport]) -> dict[str, Any]:
    latest = reports[-1]
    return {
        "rule": rule.id,
        "when": rule.condition,
        "monitor": rule.monitor,
        "model": latest.model,
        "model_version": latest.model_version,
        "reports": [r.id for r in reports],
        "figures": [
            {
                "report": r.id,
                "window_start": r.window_start,
                "window_end": r.window_end,
                rule.metric: report_value(rule.metric, r.metrics or {}, r.features or {}),
            }
            for r in reports
        ],
        "drifted_features": sorted(
            n for n, f in (latest.features or {}).items() if (f or {}).get("drifted")
        ),
    }


def monitor_verdicts(s: Session, rule: AlertRule, open_subjects: list[str]) -> list[Verdict]:
    """One verdict per model version the monitor reports on (recently, or with an open
    alert), from its latest evaluated windows."""
    assert rule.monitor is not None
    monitor = MonitorStore(s).get(rule.monitor)
    store = AlertStore(s)
    versions = {r.model_version for r in store.recent_reports(monitor.id, _RECENT_REPORTS)}
    for subject in open_subjects:
        _, _, number = subject.rpartition("/v")
        if number.isdigit():
            versions.add(int(number))
    condition = _condition(rule)
    verdicts = []
    for version in sorted(versions, key=lambda v: -1 if v is None else v):
        reports = store.version_reports(monitor.id, version, condition.windows)
        if not reports:
            continue
        values = [report_value(rule.metric, r.metrics or {}, r.features or {}) for r in reports]
        subject = f"monitor:{monitor.name}" + ("" if version is None else f"/v{version}")
        verdicts.append(
            Verdict(
                subject=subject,
                breach=judge(condition, values),
                value=values[-1],
                evidence=_report_evidence(rule, reports),
                key=f"report:{reports[-1].id}",
            )
        )
    return verdicts


def fleet_subject(rule: AlertRule) -> str:
    parts = []
    if rule.model is not None:
        parts.append(f"model:{rule.model}")
    if rule.group_name is not None:
        parts.append(f"group:{rule.group_name}")
    return "/".join(parts)


def fleet_verdicts(s: Session, rule: AlertRule, now: int) -> list[Verdict]:
    """The health of the scope's devices over the rule's last N closed telemetry windows
    (``window_ms`` each, aligned to multiples of it)."""
    store = AlertStore(s)
    release_ids = store.release_ids(rule.model) if rule.model is not None else None
    device_ids = None
    if rule.group_name is not None:
        group = DeviceStore(s).group(rule.group_name)
        device_ids = [d.id for d in group_devices(s, group)]
    width = rule.window_ms
    last_end = now // width * width
    windows: list[dict[str, Any]] = []
    for index in reversed(range(rule.windows)):
        end = last_end - index * width
        rows = store.telemetry_between(
            end - width, end, release_ids=release_ids, device_ids=device_ids
        )
        figures = health_figures(rows)
        figures.update(start=end - width, end=end, devices=len({r.device_id for r in rows}))
        windows.append(figures)
    values = [w[rule.metric] for w in windows]
    evidence = {
        "rule": rule.id,
        "when": rule.condition,
        "model": rule.model,
        "group": rule.group_name,
        "window_ms": width,
        "windows": windows,
    }
    subject = fleet_subject(rule)
    return [
        Verdict(
            subject=subject,
            breach=judge(_condition(rule), values),
            value=values[-1],
            evidence=evidence,
            key=f"window:{last_end}",
        )
    ]
