"""Monitors: reports of drift and performance per window, alert rules, alerts and actions.

Names load on first use.

>>> from edgeloop import monitors
>>> monitors.create_monitor(ws, "vibration", model="pump-classifier", window="1h")  # doctest: +SKIP
>>> monitors.run_monitor(ws, "vibration")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names

if TYPE_CHECKING:
    from edgeloop.monitoring._labels import post_labels, post_review, record_predictions
    from edgeloop.monitors._actions import run_pending_actions
    from edgeloop.monitors._alert_entities import (
        ActionInfo,
        ActionSpec,
        AlertInfo,
        EvaluationReport,
        RuleInfo,
        TickReport,
    )
    from edgeloop.monitors._alerts import (
        ack_alert,
        evaluate_rules,
        get_alert,
        list_alerts,
        resolve_alert,
    )
    from edgeloop.monitors._entities import MonitorInfo, MonitorScope, ReportInfo, TestOverride
    from edgeloop.monitors._grammar import Condition, parse_condition
    from edgeloop.monitors._monitors import (
        create_monitor,
        delete_monitor,
        get_monitor,
        list_monitors,
        parse_tests,
    )
    from edgeloop.monitors._report import MonitorSummary, monitor_report, report_plots
    from edgeloop.monitors._rules import (
        create_rule,
        delete_rule,
        get_rule,
        list_rules,
        parse_action,
        update_rule,
    )
    from edgeloop.monitors._run import list_reports, run_monitor
    from edgeloop.monitors._tick import MonitorLoop, tick
    from edgeloop.monitors._webhook import verify_signature

__all__ = [
    "ActionInfo",
    "ActionSpec",
    "AlertInfo",
    "Condition",
    "EvaluationReport",
    "MonitorInfo",
    "MonitorLoop",
    "MonitorScope",
    "MonitorSummary",
    "ReportInfo",
    "RuleInfo",
    "TestOverride",
    "TickReport",
    "ack_alert",
    "create_monitor",
    "create_rule",
    "delete_monitor",
    "delete_rule",
    "evaluate_rules",
    "get_alert",
    "get_monitor",
    "get_rule",
    "list_alerts",
    "list_monitors",
    "list_reports",
    "list_rules",
    "monitor_report",
    "parse_action",
    "parse_condition",
    "parse_tests",
    "post_labels",
    "post_review",
    "record_predictions",
    "report_plots",
    "resolve_alert",
    "run_monitor",
    "run_pending_actions",
    "tick",
    "update_rule",
    "verify_signature",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "edgeloop.monitoring._labels": ("post_labels", "post_review", "record_predictions"),
        "._entities": ("MonitorInfo", "MonitorScope", "ReportInfo", "TestOverride"),
        "._monitors": (
            "create_monitor",
            "delete_monitor",
            "get_monitor",
            "list_monitors",
            "parse_tests",
        ),
        "._report": ("MonitorSummary", "monitor_report", "report_plots"),
        "._run": ("list_reports", "run_monitor"),
        "._actions": ("run_pending_actions",),
        "._alert_entities": (
            "ActionInfo",
            "ActionSpec",
            "AlertInfo",
            "EvaluationReport",
            "RuleInfo",
            "TickReport",
        ),
        "._alerts": ("ack_alert", "evaluate_rules", "get_alert", "list_alerts", "resolve_alert"),
        "._grammar": ("Condition", "parse_condition"),
        "._rules": (
            "create_rule",
            "delete_rule",
            "get_rule",
            "list_rules",
            "parse_action",
            "update_rule",
        ),
        "._tick": ("MonitorLoop", "tick"),
        "._webhook": ("verify_signature",),
    },
)
