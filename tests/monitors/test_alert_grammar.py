"""The alert-rule grammar: canonical text round-trips, errors point at the problem, and the
command-line form of actions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeloop.errors import FilterSyntaxError, ValidationFailed
from edgeloop.monitors import ActionSpec, Condition, parse_action, parse_condition
from edgeloop.monitors._grammar import FLEET_METRICS, MONITOR_METRICS, OPERATORS

metrics = st.sampled_from(MONITOR_METRICS + FLEET_METRICS) | st.builds(
    lambda name, key: f"features.{name}.{key}",
    st.from_regex(r"[A-Za-z0-9_\-]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
)
conditions = st.builds(
    Condition,
    metric=metrics,
    op=st.sampled_from(sorted(OPERATORS)),
    threshold=st.floats(allow_nan=False, allow_infinity=False),
    windows=st.integers(1, 1000),
)


@given(conditions)
def test_the_canonical_text_parses_back_to_the_same_condition(condition: Condition) -> None:
    assert parse_condition(str(condition)) == condition
    assert str(parse_condition(str(condition))) == str(condition)


@given(conditions, st.sampled_from(["", " ", "  ", "\t"]))
def test_spacing_and_case_of_the_keywords_do_not_matter(condition: Condition, gap: str) -> None:
    text = f"{gap}{condition.metric}{gap}{condition.op}{gap}{condition.threshold!r}{gap}"
    if condition.windows > 1:
        text += f" FOR {condition.windows} Windows{gap}"
    assert parse_condition(text) == condition


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("drift_share >= 0.5 for 2 windows", Condition("drift_share", ">=", 0.5, 2)),
        ("accuracy < 0.85", Condition("accuracy", "<", 0.85, 1)),
        ("error_rate > 0.02", Condition("error_rate", ">", 0.02, 1)),
        ("error_rate>2%", Condition("error_rate", ">", 0.02, 1)),
        ("latency_p95_ms > 40", Condition("latency_p95_ms", ">", 40.0, 1)),
        ("accuracy < 0.9 for 1 window", Condition("accuracy", "<", 0.9, 1)),
        ("features.temp.statistic >= 1e-3", Condition("features.temp.statistic", ">=", 0.001)),
    ],
)
def test_the_documented_conditions(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


def test_canonical_text_drops_a_single_window_and_trailing_zeros() -> None:
    assert str(parse_condition("latency_p95_ms>40.0 for 1 window")) == "latency_p95_ms > 40"
    assert str(parse_condition("drift_share >= .5 for 3 window")) == (
        "drift_share >= 0.5 for 3 windows"
    )


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("", 0, "empty"),
        ("drift >= 0.5", 0, "metric 'drift' is not known"),
        ("  >= 0.5", 2, "expected a metric name"),
        ("drift_share => 0.5", 12, "expected a comparison"),
        ("drift_share = 0.5", 12, "expected a comparison"),
        ("drift_share >= ", 15, "expected a number"),
        ("drift_share >= half", 15, "expected a number"),
        ("drift_share >= 0.5 during 2 windows", 19, "expected 'for N windows'"),
        ("drift_share >= 0.5 for two windows", 23, "whole number of windows"),
        ("drift_share >= 0.5 for 0 windows", 23, "must be 1 to 1000"),
        ("drift_share >= 0.5 for 2 hours", 25, "expected 'windows'"),
        ("drift_share >= 0.5 for 2 windows please", 33, "unexpected 'please'"),
        ("accuracy < 1e999", 11, "not a finite number"),
        ("features.temp >= 1", 0, "features.NAME.KEY"),
    ],
)
def test_errors_name_the_position(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_condition(text)
    assert caught.value.position == position
    assert words in caught.value.message
    assert caught.value.details["field"] == "when"
    assert f"\n  {' ' * position}^" in caught.value.message  # the caret under it


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("notify", ActionSpec(kind="notify")),
        (
            "notify:https://hooks.example/ml?x=1",
            ActionSpec(kind="notify", url="https://hooks.example/ml?x=1"),
        ),
        ("retrain:pump-train", ActionSpec(kind="retrain", pipeline="pump-train")),
        (
            "collect:pump-data:20x50",
            ActionSpec(kind="collect", dataset="pump-data", devices=20, samples_per_device=50),
        ),
        ("collect:pump-data", ActionSpec(kind="collect", dataset="pump-data")),
        ("pause-rollout", ActionSpec(kind="pause_rollout")),
        ("pause_rollout", ActionSpec(kind="pause_rollout")),
    ],
)
def test_the_command_line_form_of_actions(text: str, spec: ActionSpec) -> None:
    assert parse_action(text) == spec


@pytest.mark.parametrize(
    "text",
    ["email:ops@example.com", "retrain", "retrain:", "collect:pump:20by50", "pause-rollout:x"],
)
def test_unknown_action_forms_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_action(text)
    assert caught.value.details == {"field": "actions"}
    assert "retrain:PIPELINE" in caught.value.message or "DEVICESxSAMPLES" in caught.value.message


def test_a_secret_never_shows() -> None:
    spec = ActionSpec(kind="notify", url="https://h.example/x", secret="s3cret")
    assert spec.public() == {"kind": "notify", "url": "https://h.example/x", "secret": "***"}
