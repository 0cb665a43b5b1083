"""Monitors: what to watch (a model within a scope), per window, and how to judge drift.

A monitor evaluates aligned windows (multiples of its window length since the epoch) from
``start_at`` on; ``evaluated_until`` is where the next run starts. Per-feature tests default
to Evidently's choice by reference size (:func:`edgeloop.monitoring.choose_test`); ``tests``
overrides them per feature (``*`` for every feature without its own entry).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.fleet._rollouts import parse_duration
from edgeloop.monitoring import TESTS
from edgeloop.monitoring._labels import check_source
from edgeloop.monitors._entities import MonitorInfo, MonitorScope, TestOverride
from edgeloop.store import DeviceStore, ModelStore, Monitor, MonitorStore
from edgeloop.tracking import check_name
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "create_monitor",
    "delete_monitor",
    "get_monitor",
    "list_monitors",
    "monitor_info",
    "parse_tests",
]

DEFAULT_MIN_SAMPLES = 100
_MIN_WINDOW_MS = 1000
_MAX_WINDOW_MS = 31 * 86_400_000
_FEATURE = re.compile(r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.:\-\[\] ]{0,127})$")
_SLICE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


def _override(feature: str, spec: str | Mapping[str, object] | TestOverride) -> TestOverride:
    """``"ks:0.05"``, ``"ks"``, ``":0.2"`` (threshold only), a mapping or a TestOverride."""
    if isinstance(spec, TestOverride):
        out = spec
    elif isinstance(spec, str):
        test, _, threshold = spec.partition(":")
        try:
            value = float(threshold) if threshold.strip() else None
        except ValueError:
            raise ValidationFailed(
                f"test for {feature!r}: threshold {threshold!r} is not a number "
                "(write feature=test:threshold, e.g. speed=ks:0.05)",
                details={"field": "tests", "feature": feature},
            ) from None
        out = TestOverride(test=test.strip() or None, threshold=value)
    else:
        out = TestOverride.model_validate(dict(spec))
    if out.test is not None and out.test not in TESTS:
        raise ValidationFailed(
            f"test for {feature!r}: unknown drift test {out.test!r}; known: {', '.join(TESTS)}",
            details={"field": "tests", "feature": feature},
        )
    if out.threshold is not None:
        p_value = out.test is not None and TESTS[out.test].score == "p_value"
        if (
            not math.isfinite(out.threshold)
            or out.threshold <= 0
            or (p_value and out.threshold >= 1)
        ):
            allowed = "in (0, 1)" if p_value else "> 0"
            raise ValidationFailed(
                f"threshold for {feature!r} must be {allowed}, got {out.threshold!r}",
                details={"field": "tests", "feature": feature},
            )
    if out.test is None and out.threshold is None:
        raise ValidationFailed(
            f"test for {feature!r} names neither a test nor a threshold",
            details={"field": "tests", "feature": feature},
        )
    return out


def parse_tests(
    tests: Mapping[str, str | Mapping[str, object] | TestOverride] | Sequence[str] | None,
) -> dict[str, TestOverride]:
    """Per-feature overrides from ``{"speed": "ks:0.05"}`` or ``["speed=ks:0.05", ...]``.

    >>> parse_tests(["speed=ks:0.01", "*=psi"])["*"].test
    'psi'
    """
    if tests is None:
        return {}
    items: list[tuple[str, str | Mapping[str, object] | TestOverride]] = []
    if isinstance(tests, Mapping):
        items = list(tests.items())
    else:
        for text in tests:
            feature, sep, given = str(text).partition("=")
            if not sep:
                raise ValidationFailed(
                    f"test {text!r} is not feature=test[:threshold] (e.g. speed=ks:0.05, "
                    "'*=psi:0.2')",
                    details={"field": "tests"},
                )
            items.append((feature.strip(), given))
    out: dict[str, TestOverride] = {}
    for feature, spec in items:
        if not _FEATURE.match(feature):
            raise ValidationFailed(
                f"feature name {feature!r} is not allowed in tests", details={"field": "tests"}
            )
        out[feature] = _override(feature, spec)
    return out


def _scope(
    group: str | None, tags: Mapping[str, str] | None, sources: Sequence[str] | None
) -> MonitorScope:
    given = [name for name, v in (("group", group), ("tags", tags), ("sources", sources)) if v]
    if len(given) > 1:
        raise ValidationFailed(
            f"give at most one scope (group, tags or sources), got {' and '.join(given)}",
            details={"field": given[1]},
        )
    if group:
        check_name("group", group)
        return MonitorScope(kind="group", group=group)
    if tags:
        for key, value in tags.items():
            if not _SLICE.match(key) or not isinstance(value, str) or not value:
                raise ValidationFailed(
                    f"scope tag {key}={value!r} is not allowed: tag names are letters, "
                    "digits, '_', '.', '-'; values non-empty strings",
                    details={"field": "tags"},
                )
        return MonitorScope(kind="tags", tags=dict(tags))
    if sources:
        return MonitorScope(kind="sources", sources=[check_source(s) for s in sources])
    return MonitorScope(kind="all")


def monitor_info(row: Monitor, reports: int = 0) -> MonitorInfo:
    return MonitorInfo(
        name=row.name,
        model=row.model,
        scope=MonitorScope.model_validate(row.scope),
        window_ms=row.window_ms,
        delay_ms=row.delay_ms,
        tests={k: TestOverride.model_validate(v) for k, v in (row.tests or {}).items()},
        drift_share=row.drift_share,
        min_samples=row.min_samples,
        slice_by=[str(s) for s in row.slice_by or []],
        start_at=row.start_at,
        evaluated_until=row.evaluated_until,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        reports=reports,
    )


def _check_overrides_against_reference(
    ws: Workspace, model: str, version: int | None, tests: Mapping[str, TestOverride]
) -> None:
    named = sorted(f for f in tests if f != "*")
    if version is None or not named:
        return
    from edgeloop.edge import load_reference

    try:
        reference = load_reference(ws, model, version)
    except NotFound:
        return  # nothing to check against yet; unknown names are reported at run time
    unknown = [f for f in named if f not in reference.features]
    if unknown:
        raise ValidationFailed(
            f"tests name features that version {version} of {model!r} does not have: "
            f"{', '.join(unknown)}; its features: {', '.join(reference.features)}",
            details={"field": "tests", "unknown": unknown},
        )


def create_monitor(
    ws: Workspace,
    name: str,
    *,
    model: str,
    window: str | int = "1h",
    group: str | None = None,
    tags: Mapping[str, str] | None = None,
    sources: Sequence[str] | None = None,
    tests: Mapping[str, str | Mapping[str, object] | TestOverride] | Sequence[str] | None = None,
    drift_share: float = 0.5,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    slice_by: Sequence[str] = ("site",),
    delay: str | int = 0,
    start: int | None = None,
    description: str = "",
    now: int | None = None,
) -> MonitorInfo:
    """A monitor of ``model`` over windows of ``window`` (``"1h"``, ``"15m"`` or ms).

    Scope: ``group`` (a device group), ``tags`` (sources whose tags match) or ``sources``
    (``device:<id>``, ``endpoint:<name>``, ``batch:<name>``); none of them: every source.
    ``start`` (epoch ms, aligned down to a window) is the first window to evaluate (default:
    the current window); a window is evaluated once ``now >= its end + delay``.
    """
    check_name("monitor", name)
    window_ms = parse_duration(window, "window")
    if not _MIN_WINDOW_MS <= window_ms <= _MAX_WINDOW_MS:
        raise ValidationFailed(
            f"window must be between 1s and 31d, got {window!r}", details={"field": "window"}
        )
    delay_ms = parse_duration(delay, "delay")
    if not (isinstance(drift_share, int | float) and 0 < drift_share <= 1):
        raise ValidationFailed(
            f"drift_share must be in (0, 1], got {drift_share!r}", details={"field": "drift_share"}
        )
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ValidationFailed(
            f"min_samples must be an integer >= 1, got {min_samples!r}",
            details={"field": "min_samples"},
        )
    slices = list(dict.fromkeys(slice_by))
    for key in slices:
        if not isinstance(key, str) or not _SLICE.match(key):
            raise ValidationFailed(
                f"slice_by {key!r} is not a tag name (letters, digits, '_', '.', '-')",
                details={"field": "slice_by"},
            )
    scope = _scope(group, tags, sources)
    overrides = parse_tests(tests)
    at = now if now is not None else now_ms()
    first = (at if start is None else start) // window_ms * window_ms
    with ws.db.read() as s:
        models = ModelStore(s)
        latest = models.latest_version(models.get(model).id)
        if scope.group is not None:
            DeviceStore(s).group(scope.group)
    _check_overrides_against_reference(ws, model, latest, overrides)
    with ws.db.write() as s:
        row = Monitor(
            name=name,
            model=model,
            scope=scope.model_dump(),
            window_ms=window_ms,
            delay_ms=delay_ms,
            tests={k: v.model_dump() for k, v in overrides.items()},
            drift_share=float(drift_share),
            min_samples=min_samples,
            slice_by=slices,
            start_at=first,
            evaluated_until=first,
            description=description,
            created_at=at,
            created_by=ws.principal.name,
        )
        MonitorStore(s).add(row)
        return monitor_info(row)


def get_monitor(ws: Workspace, name: str) -> MonitorInfo:
    with ws.db.read() as s:
        store = MonitorStore(s)
        row = store.get(name)
        return monitor_info(row, store.report_count(row.id))


def list_monitors(ws: Workspace, *, model: str | None = None) -> list[MonitorInfo]:
    with ws.db.read() as s:
        store = MonitorStore(s)
        return [monitor_info(row, store.report_count(row.id)) for row in store.all(model)]


def delete_monitor(ws: Workspace, name: str) -> MonitorInfo:
    """Delete a monitor and its reports."""
    with ws.db.write() as s:
        store = MonitorStore(s)
        row = store.get(name, for_update=True)
        info = monitor_info(row, store.report_count(row.id))
        store.delete(row)
        return info
