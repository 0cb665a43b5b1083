"""The run-search filter and order-by grammar: parsing, errors with positions, round trips."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.errors import FilterSyntaxError, ValidationFailed
from edgeloop.store._filter import (
    And,
    Comparison,
    Node,
    Not,
    Op,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
    to_text,
)

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def cmp(entity: Any, key: str, op: Op, value: Any, position: int = 0) -> Comparison:
    return Comparison(entity, key, op, value, position)


def zeroed(node: Node | None) -> Node | None:
    """``node`` with every position set to 0."""
    if node is None:
        return None
    if isinstance(node, Comparison):
        return dataclasses.replace(node, position=0)
    if isinstance(node, Not):
        item = zeroed(node.item)
        assert item is not None
        return Not(item)
    items = tuple(zeroed(item) for item in node.items)
    return type(node)(items)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- valid filters

VALID: list[tuple[str, Node]] = [
    ("metrics.f1 > 0.9", cmp("metrics", "f1", ">", 0.9)),
    ("metrics.f1>0.9", cmp("metrics", "f1", ">", 0.9)),
    ("METRIC.f1 == 1", cmp("metrics", "f1", "=", 1.0)),
    ("metrics.loss <> -2", cmp("metrics", "loss", "!=", -2.0)),
    ("metrics.loss<-2", cmp("metrics", "loss", "<", -2.0)),
    ("metrics.loss <= +1.5e-3", cmp("metrics", "loss", "<=", 0.0015)),
    ("metrics.loss >= .5", cmp("metrics", "loss", ">=", 0.5)),
    ("metrics.loss != 3.", cmp("metrics", "loss", "!=", 3.0)),
    ("metrics.val.f1 < 2E2", cmp("metrics", "val.f1", "<", 200.0)),
    ("metrics.a-b/c_d.e = 0", cmp("metrics", "a-b/c_d.e", "=", 0.0)),
    ("metrics.`val loss` <= 0.25", cmp("metrics", "val loss", "<=", 0.25)),
    ('metrics."val loss" <= 0.25', cmp("metrics", "val loss", "<=", 0.25)),
    (r"metrics.`a\`b\\c` = 1", cmp("metrics", "a`b\\c", "=", 1.0)),
    ("metrics.f1 in (1, 2.5, -3)", cmp("metrics", "f1", "in", (1.0, 2.5, -3.0))),
    ("metrics.f1 NOT IN (1)", cmp("metrics", "f1", "not in", (1.0,))),
    ("params.model = 'resnet'", cmp("params", "model", "=", "resnet")),
    ('param.model = "resnet"', cmp("params", "model", "=", "resnet")),
    ("params.Model = 'ResNet'", cmp("params", "Model", "=", "ResNet")),
    ("params.lr = 0.01", cmp("params", "lr", "=", "0.01")),
    ("params.lr = -1E5", cmp("params", "lr", "=", "-1E5")),
    ("params.lr in (0.01, '0.1')", cmp("params", "lr", "in", ("0.01", "0.1"))),
    ("params.m LIKE 'res%'", cmp("params", "m", "like", "res%")),
    ("params.m ilike '%NET'", cmp("params", "m", "ilike", "%NET")),
    ("params.m not like 'x'", cmp("params", "m", "not like", "x")),
    ("params.m Not ILike 'x'", cmp("params", "m", "not ilike", "x")),
    ("params.m != ''", cmp("params", "m", "!=", "")),
    (r"params.m = 'it\'s'", cmp("params", "m", "=", "it's")),
    (r'params.m = "say \"hi\""', cmp("params", "m", "=", 'say "hi"')),
    (r"params.m = 'a\\b'", cmp("params", "m", "=", "a\\b")),
    (r"params.m = 'C:\path'", cmp("params", "m", "=", "C:\\path")),
    ("params.m = 'a \"b\" and c'", cmp("params", "m", "=", 'a "b" and c')),
    ("tags.team = 'vision'", cmp("tags", "team", "=", "vision")),
    ("tag.`owner name` in ('ann', \"bo\")", cmp("tags", "owner name", "in", ("ann", "bo"))),
    ("attributes.status = 'RUNNING'", cmp("attributes", "status", "=", "running")),
    (
        "attr.status in ('failed', 'Killed')",
        cmp("attributes", "status", "in", ("failed", "killed")),
    ),
    ("run.status like 'RUN%'", cmp("attributes", "status", "like", "RUN%")),
    ("attribute.run_name = 'best'", cmp("attributes", "name", "=", "best")),
    ("attributes.Name ilike 'b%'", cmp("attributes", "name", "ilike", "b%")),
    ("attributes.run_id = 'abc'", cmp("attributes", "run_id", "=", "abc")),
    ("attributes.experiment_id = 3", cmp("attributes", "experiment_id", "=", "3")),
    ("attributes.start_time >= 1700000000000", cmp("attributes", "start_time", ">=", 1.7e12)),
    ("attributes.end_time in (1, 2)", cmp("attributes", "end_time", "in", (1.0, 2.0))),
    (
        "metrics.f1 > 0.9 and params.model = 'resnet'",
        And((cmp("metrics", "f1", ">", 0.9, 0), cmp("params", "model", "=", "resnet", 21))),
    ),
    (
        "metrics.a = 1 OR metrics.b = 2 and metrics.c = 3",
        Or(
            (
                cmp("metrics", "a", "=", 1.0, 0),
                And((cmp("metrics", "b", "=", 2.0, 17), cmp("metrics", "c", "=", 3.0, 35))),
            )
        ),
    ),
    (
        "(metrics.a = 1 or metrics.b = 2) and metrics.c = 3",
        And(
            (
                Or((cmp("metrics", "a", "=", 1.0, 1), cmp("metrics", "b", "=", 2.0, 18))),
                cmp("metrics", "c", "=", 3.0, 37),
            )
        ),
    ),
    (
        "metrics.a = 1 and (metrics.b = 2 and (metrics.c = 3))",
        And(
            (
                cmp("metrics", "a", "=", 1.0, 0),
                cmp("metrics", "b", "=", 2.0, 19),
                cmp("metrics", "c", "=", 3.0, 38),
            )
        ),
    ),
    (
        "(metrics.a = 1 or metrics.b = 2) or metrics.c = 3",
        Or(
            (
                cmp("metrics", "a", "=", 1.0, 1),
                cmp("metrics", "b", "=", 2.0, 18),
                cmp("metrics", "c", "=", 3.0, 36),
            )
        ),
    ),
    ("not metrics.a = 1", Not(cmp("metrics", "a", "=", 1.0, 4))),
    ("NOT not metrics.a = 1", Not(Not(cmp("metrics", "a", "=", 1.0, 8)))),
    (
        "not (metrics.a = 1 or metrics.b = 2)",
        Not(Or((cmp("metrics", "a", "=", 1.0, 5), cmp("metrics", "b", "=", 2.0, 22)))),
    ),
    (
        "not metrics.a = 1 and metrics.b = 2",
        And((Not(cmp("metrics", "a", "=", 1.0, 4)), cmp("metrics", "b", "=", 2.0, 22))),
    ),
    ("  ((metrics.a = 1))  ", cmp("metrics", "a", "=", 1.0, 4)),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_valid(text: str, expected: Node) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", " ", "\t\n  "])
def test_empty_filter_is_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None
    assert to_text(None) == ""


# ---------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, int, list[str]]] = [
    # syntax
    ("metrics.a = 1 metrics.b = 2", 14, ["expected and, or or the end"]),
    ("metrics.a = 1 and", 17, ["expected a comparison", "the end"]),
    ("(metrics.a = 1", 14, ["expected ')'", "'(' at position 0"]),
    ("((metrics.a = 1) or (metrics.b = 2)", 35, ["expected ')'", "'(' at position 0"]),
    ("metrics.a = 1)", 13, ["unmatched ')'"]),
    ("()", 1, ["expected a comparison"]),
    ("f1 > 0.5", 0, ["expected a comparison such as metrics.f1 > 0.9"]),
    ("metrics.", 8, ["expected a key after 'metrics.'"]),
    ("metrics. f1 = 1", 8, ["expected a key"]),
    ("metrics.`` = 1", 8, ["must not be empty"]),
    ("metrics.f1", 10, ["expected an operator", "not like", "not in"]),
    ("metrics.f1 ~ 1", 11, ["unexpected character '~'"]),
    ("metrics.f1 ! 1", 11, ["expected !="]),
    ("params.m not = 'x'", 13, ["expected like, ilike or in after 'not'"]),
    ("metrics.f1 =", 12, ["expected a value"]),
    ("metrics.f1 = = 1", 13, ["expected a value"]),
    ("params.m = abc", 11, ["expected a value", "'abc'"]),
    ("params.m = `abc`", 11, ["back-quotes are for keys"]),
    ("params.m = true", 11, ["true and false are not supported"]),
    ("metrics.a = FALSE", 12, ["true and false are not supported"]),
    ("params.m = 'abc", 11, ["unterminated string", "'"]),
    ('params.m = "abc\\"', 11, ["unterminated string", '"']),
    ("params.`m = 'x'", 7, ["unterminated string", "`"]),
    ("params.m in ()", 13, ["empty in ()", "at least one value"]),
    ("params.m not in ( )", 18, ["empty not in ()"]),
    ("params.m in 'x'", 12, ["expected '(' after in"]),
    ("params.m in ('x',)", 17, ["expected a value"]),
    ("params.m in ('x' 'y')", 17, ["expected ',' or ')'"]),
    ("params.m in ('x'", 16, ["expected ',' or ')'", "the end"]),
    ("metrics.a = 1e999", 12, ["out of range", "finite"]),
    ("metrics.a = 1 and é", 18, ["unexpected character"]),
    # entities and attributes
    ("metricz.f1 > 1", 0, ["unknown entity 'metricz'", "metrics", "params", "tags", "attributes"]),
    ("metrics.a = 1 or x.y = 2", 17, ["unknown entity 'x'"]),
    ("attributes.foo = 'x'", 11, ["unknown attribute 'foo'", "run_id", "status", "start_time"]),
    ("attr.`start time` > 1", 5, ["unknown attribute 'start time'", "end_time"]),
    # operators per entity
    ("metrics.f1 like '0.9'", 11, ["metrics are numbers", "= != < <= > >= in"]),
    ("metrics.f1 not ilike '0.9'", 11, ["metrics are numbers"]),
    ("params.lr < 0.1", 10, ["params are strings: use = != like ilike in"]),
    ("tags.t >= 'a'", 7, ["tags are strings: use = != like ilike in"]),
    ("attributes.name > 'a'", 16, ["attributes.name is a string", "like ilike"]),
    ("attributes.start_time like '1%'", 22, ["attributes.start_time is a number", "epoch"]),
    # values per entity
    ("metrics.f1 = '0.9'", 13, ["metrics are numbers: compare with a number"]),
    ("metrics.f1 in (1, '2')", 18, ["metrics are numbers"]),
    ("attributes.end_time = 'now'", 22, ["attributes.end_time is a number"]),
    ("attributes.status = 'done'", 20, ["running, finished, failed, killed"]),
    ("attributes.status in ('running', 'paused')", 33, ["running, finished, failed, killed"]),
    ("attributes.status = 1", 20, ["must be one of running"]),
]


@pytest.mark.parametrize(("text", "position", "fragments"), ERRORS)
def test_parse_errors(text: str, position: int, fragments: list[str]) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    error = caught.value
    assert error.position == position
    assert error.details == {"position": position, "filter": text}
    for fragment in fragments:
        assert fragment in error.message
    assert f"at position {position}" in error.message
    assert isinstance(error, ValidationFailed)


def test_nesting_is_limited_without_recursion_error() -> None:
    assert parse_filter("(" * 100 + "metrics.a = 1" + ")" * 100) == cmp(
        "metrics", "a", "=", 1.0, 100
    )
    assert parse_filter("not " * 100 + "metrics.a = 1") is not None
    with pytest.raises(FilterSyntaxError, match="nests more than 100") as caught:
        parse_filter("(" * 101 + "metrics.a = 1" + ")" * 101)
    assert caught.value.position == 100
    with pytest.raises(FilterSyntaxError, match="nests more than 100"):
        parse_filter("(" * 5000)


# ---------------------------------------------------------------------------- order by


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("metrics.f1 desc", OrderBy("metrics", "f1", True)),
        ("params.model", OrderBy("params", "model", False)),
        ("attributes.start_time ASC", OrderBy("attributes", "start_time", False)),
        ("metrics.`val loss` desc", OrderBy("metrics", "val loss", True)),
        ('tag."owner name" DESC', OrderBy("tags", "owner name", True)),
        ("  run.run_name  ", OrderBy("attributes", "name", False)),
        ("metrics.val.f1 Desc", OrderBy("metrics", "val.f1", True)),
    ],
)
def test_order_by(item: str, expected: OrderBy) -> None:
    assert parse_order_by([item]) == [expected]


def test_order_by_several_none_and_bare_string() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []
    assert parse_order_by(["metrics.f1 desc", "params.m"]) == [
        OrderBy("metrics", "f1", True),
        OrderBy("params", "m", False),
    ]
    assert parse_order_by("metrics.f1 desc") == [OrderBy("metrics", "f1", True)]


@pytest.mark.parametrize(
    ("item", "position", "fragment"),
    [
        ("", 0, "expected an order-by item such as 'metrics.f1 desc'"),
        ("desc", 0, "expected an order-by item"),
        ("metrics.f1 down", 11, "expected asc, desc or the end"),
        ("metrics.f1 desc asc", 16, "expected asc, desc or the end"),
        ("metrics.f1, params.m", 10, "expected asc, desc or the end"),
        ("foo.f1", 0, "unknown entity 'foo'"),
        ("attributes.duration desc", 11, "unknown attribute 'duration'"),
        ("metrics.`f1", 8, "unterminated string"),
    ],
)
def test_order_by_errors(item: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_order_by(["metrics.ok", item])
    assert caught.value.position == position
    assert caught.value.details["filter"] == item
    assert fragment in caught.value.message


# ---------------------------------------------------------------------------- to_text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("METRIC.f1 == 1", "metrics.f1 = 1.0"),
        ("params.lr = 0.01", "params.lr = '0.01'"),
        ('tag."a b" <> "it\'s"', r"tags.`a b` != 'it\'s'"),
        ("run.run_name in ('a', 'b')", "attributes.name in ('a', 'b')"),
        (r"params.p = 'C:\dir'", r"params.p = 'C:\\dir'"),
        (
            "metrics.a = 1 and (metrics.b = 2 or not metrics.c = 3)",
            "metrics.a = 1.0 and (metrics.b = 2.0 or not metrics.c = 3.0)",
        ),
        ("not (metrics.a = 1 and metrics.b = 2)", "not (metrics.a = 1.0 and metrics.b = 2.0)"),
        ("metrics.a = 1 or metrics.b = 2 and metrics.c = 3", None),
    ],
)
def test_to_text(text: str, canonical: str | None) -> None:
    node = parse_filter(text)
    if canonical is not None:
        assert to_text(node) == canonical
    assert zeroed(parse_filter(to_text(node))) == zeroed(node)


# ---------------------------------------------------------------------------- properties

NUMERIC_OPS: list[Op] = ["=", "!=", "<", "<=", ">", ">=", "in", "not in"]
STRING_OPS: list[Op] = ["=", "!=", "like", "ilike", "not like", "not ilike", "in", "not in"]
ATTRIBUTES = ["run_id", "name", "status", "experiment_id", "start_time", "end_time"]
STATUSES = ["running", "finished", "failed", "killed"]

keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-./]{0,8}", fullmatch=True),
    st.text(min_size=1, max_size=8),
    st.sampled_from(["val loss", "a`b", "back\\slash", "x'y\"z", "`", "\\", ".a", "1st"]),
)
numbers = st.floats(allow_nan=False, allow_infinity=False)
strings = st.text(max_size=8) | st.sampled_from(["it's", 'say "hi"', "C:\\dir\\", "\\'", "`"])


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    entity = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    key = draw(st.sampled_from(ATTRIBUTES) if entity == "attributes" else keys)
    numeric = entity == "metrics" or key in ("start_time", "end_time")
    op: Op = draw(st.sampled_from(NUMERIC_OPS if numeric else STRING_OPS))
    values: st.SearchStrategy[Any] = numbers if numeric else strings
    if entity == "attributes" and key == "status" and "like" not in op:
        values = st.sampled_from(STATUSES)
    value = draw(
        st.lists(values, min_size=1, max_size=3).map(tuple) if op in ("in", "not in") else values
    )
    return Comparison(entity, key, op, value, 0)  # type: ignore[arg-type]


def joined(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """``kind(items)`` flattened as the parser flattens it."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


nodes: st.SearchStrategy[Node] = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda items: joined(And, items)),
        st.lists(children, min_size=2, max_size=3).map(lambda items: joined(Or, items)),
    ),
    max_leaves=8,
)


@PROPERTY
@given(nodes)
def test_to_text_round_trips(node: Node) -> None:
    text = to_text(node)
    parsed = parse_filter(text)
    assert zeroed(parsed) == node
    assert to_text(parsed) == text


FRAGMENTS = [
    "metrics.f1", "params.`a b`", "tags.t", "attr.status", "foo.x", "metrics.", "and", "or",
    "not", "in", "like", "ilike", "(", ")", ",", "=", "==", "!=", "<>", "<", "<=", ">", ">=",
    "!", "1", "-2.5e3", "1e999", "'x'", "'it\\'s", '"q"', "`k`", "true", "'running'", " ",
]  # fmt: skip


@PROPERTY
@given(st.text() | st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join))
def test_arbitrary_text_parses_or_raises_filter_syntax_error(text: str) -> None:
    node: Node | None = None
    position = 0
    try:
        node = parse_filter(text)
    except FilterSyntaxError as error:
        position = error.position
    assert 0 <= position <= len(text)
    assert node is None or isinstance(node, Comparison | And | Or | Not)


@PROPERTY
@given(st.text(max_size=30))
def test_arbitrary_order_by_raises_only_filter_syntax_error(item: str) -> None:
    position = 0
    try:
        assert all(isinstance(order, OrderBy) for order in parse_order_by([item]))
    except FilterSyntaxError as error:
        position = error.position
    assert 0 <= position <= len(item)
