r"""The filter and order-by grammar for searching experiment runs.

A filter picks runs by their metrics, params, tags and attributes::

    metrics.f1 > 0.9 and params.model = 'resnet'
    (tags.team = 'vision' or tags.team = "audio") and not attributes.status = 'failed'
    params.lr in ('0.01', '0.001') and metrics.`val loss` <= 0.25
    attributes.start_time >= 1700000000000 and tags."owner name" ilike '%ann%'

Grammar (keywords and entity names are case-insensitive, keys are case-sensitive)::

    filter     := or_expr                    (an empty or blank filter means "no filter")
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | comparison
    comparison := ident op value
                | ident ("in" | "not in") "(" value ("," value)* ")"
    ident      := entity "." key
    entity     := metrics | metric | params | param | tags | tag
                | attributes | attribute | attr | run
    key        := [A-Za-z_][A-Za-z0-9_\-./]*  (metrics.val.f1 has the key "val.f1")
                | `back-quoted` | "double-quoted"
    op         := = | == | != | <> | < | <= | > | >= | like | ilike | not like | not ilike
    value      := number | 'single-quoted' | "double-quoted"

Numbers are finite decimals with an optional sign and exponent (``-1``, ``0.5``, ``2e-3``).
Inside quotes ``\'``, ``\"``, ``\\`` and ``\``` stand for the quoted character; any other
backslash is kept as it is. ``true`` and ``false`` are not values: quote them.

What each entity accepts:

* ``metrics``: numbers, with ``= != < <= > >= in``/``not in``.
* ``params`` and ``tags``: strings, with ``= != like ilike not like not ilike in not in``;
  an unquoted number is kept as its source text (``params.lr = 0.01`` compares with ``"0.01"``).
* ``attributes``: ``run_id``, ``name`` (or ``run_name``), ``status`` and ``experiment_id`` are
  strings like params; ``status`` must be one of running, finished, failed or killed (any case,
  except inside a like pattern); ``start_time`` and ``end_time`` are numbers (epoch
  milliseconds) like metrics.

``and`` binds tighter than ``or``; nested ``and``/``or`` are flattened. Order-by items are an
ident and an optional direction: ``metrics.f1 desc``, ``params.model``, ``attributes.start_time
ASC``, ``metrics.`val loss` desc``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias, get_args

from edgeloop.errors import FilterSyntaxError

__all__ = [
    "And",
    "Comparison",
    "Entity",
    "Node",
    "Not",
    "Op",
    "Or",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
    "to_text",
]

Entity: TypeAlias = Literal["metrics", "params", "tags", "attributes"]
Op: TypeAlias = Literal[
    "=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not like", "not ilike", "in", "not in"
]


@dataclass(frozen=True)
class Comparison:
    entity: Entity
    key: str
    op: Op
    value: float | str | tuple[float | str, ...]
    position: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderBy:
    entity: Entity
    key: str
    descending: bool


_ENTITIES: dict[str, Entity] = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTRIBUTES = {
    key: key for key in ("run_id", "name", "status", "experiment_id", "start_time", "end_time")
} | {"run_name": "name"}
_STATUSES = ("running", "finished", "failed", "killed")
_OPS: dict[str, Op] = {op: op for op in get_args(Op)} | {"==": "=", "<>": "!="}
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "not in"})
_STRING_OPS = frozenset({"=", "!=", "like", "ilike", "not like", "not ilike", "in", "not in"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_ESCAPABLE = "'\"\\`"
_MAX_DEPTH = 100


@dataclass(frozen=True)
class _Token:
    kind: str  # ident word number string backquoted op ( ) , end
    text: str  # an ident's key, a lower-cased keyword or op, a string's content
    pos: int
    end: int
    entity: str = ""
    key_pos: int = 0


def _fail(message: str, text: str, position: int) -> NoReturn:
    raise FilterSyntaxError.at(message, text=text, position=position)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The content of the quoted string opening at ``start``, and the index after it."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    _fail(f"unterminated string: add the closing {quote}", text, start)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(_Token(ch, ch, i, i + 1))
            i += 1
        elif ch in "=!<>":
            sym = text[i : i + 2] if text[i : i + 2] in _OPS else ch
            if sym not in _OPS:
                _fail("expected != after '!'", text, i)
            tokens.append(_Token("op", _OPS[sym], i, i + len(sym)))
            i += len(sym)
        elif ch in "'\"`":
            value, end = _read_quoted(text, i)
            tokens.append(_Token("backquoted" if ch == "`" else "string", value, i, end))
            i = end
        elif number := _NUMBER.match(text, i):
            tokens.append(_Token("number", number.group(), i, number.end()))
            i = number.end()
        elif word := _WORD.match(text, i):
            entity, dot, key = word.group().partition(".")
            end = word.end()
            if not dot:
                tokens.append(_Token("word", entity.lower(), i, end))
            else:
                if not key:
                    if end >= n or text[end] not in '`"':
                        _fail(f"expected a key after '{entity}.'", text, end)
                    key, end = _read_quoted(text, end)
                    if not key:
                        _fail("the key must not be empty", text, word.end())
                tokens.append(_Token("ident", key, i, end, entity, i + len(entity) + 1))
            i = end
        else:
            _fail(f"unexpected character {ch!r}", text, i)
    tokens.append(_Token("end", "", n, n))
    return tokens


def _numeric(entity: Entity, key: str) -> bool:
    return entity == "metrics" or (entity == "attributes" and key in ("start_time", "end_time"))


def _what(entity: Entity, key: str) -> str:
    """``metrics are numbers``, ``params are strings``, ``attributes.name is a string``..."""
    numeric = _numeric(entity, key)
    if entity != "attributes":
        return f"{entity} are {'numbers' if numeric else 'strings'}"
    return f"attributes.{key} is {'a number (epoch milliseconds)' if numeric else 'a string'}"


def _ops_message(entity: Entity, key: str) -> str:
    if _numeric(entity, key):
        return f"{_what(entity, key)}: use = != < <= > >= in (or not in)"
    return f"{_what(entity, key)}: use = != like ilike in (or not like, not ilike, not in)"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def next(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text == word

    def fail(self, message: str, position: int) -> NoReturn:
        _fail(message, self.text, position)

    def describe(self, token: _Token) -> str:
        if token.kind == "end":
            return "the end"
        source = self.text[token.pos : token.end]
        return repr(source if len(source) <= 30 else source[:27] + "...")

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail(f"the filter nests more than {_MAX_DEPTH} levels deep", token.pos)

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.next()
            items.append(self.and_expr())
        return _join(Or, items)

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.next()
            items.append(self.not_expr())
        return _join(And, items)

    def not_expr(self) -> Node:
        if not self.is_word("not"):
            return self.primary()
        self.enter(self.next())
        node = Not(self.not_expr())
        self.depth -= 1
        return node

    def primary(self) -> Node:
        token = self.peek()
        if token.kind != "(":
            return self.comparison()
        self.enter(self.next())
        node = self.or_expr()
        close = self.next()
        if close.kind != ")":
            self.fail(
                f"expected ')' to close the '(' at position {token.pos}, "
                f"got {self.describe(close)}",
                close.pos,
            )
        self.depth -= 1
        return node

    def ident(self, example: str) -> tuple[Entity, str, _Token]:
        token = self.next()
        if token.kind != "ident":
            self.fail(f"expected {example}, got {self.describe(token)}", token.pos)
        entity = _ENTITIES.get(token.entity.lower())
        if entity is None:
            allowed = ", ".join(_ENTITIES)
            self.fail(f"unknown entity {token.entity!r}: use one of {allowed}", token.pos)
        if entity != "attributes":
            return entity, token.text, token
        key = _ATTRIBUTES.get(token.text.lower())
        if key is None:
            allowed = ", ".join(_ATTRIBUTES)
            self.fail(f"unknown attribute {token.text!r}: use one of {allowed}", token.key_pos)
        return entity, key, token

    def op(self) -> Op:
        token = self.next()
        if token.kind == "op" or (token.kind == "word" and token.text in ("like", "ilike", "in")):
            return _OPS[token.text]
        if token.kind == "word" and token.text == "not":
            after = self.next()
            if after.kind == "word" and after.text in ("like", "ilike", "in"):
                return _OPS["not " + after.text]
            self.fail(
                f"expected like, ilike or in after 'not', got {self.describe(after)}", after.pos
            )
        self.fail(
            "expected an operator: = != < <= > >= like ilike not like not ilike in not in, "
            f"got {self.describe(token)}",
            token.pos,
        )

    def comparison(self) -> Comparison:
        entity, key, ident = self.ident("a comparison such as metrics.f1 > 0.9")
        op_pos = self.peek().pos
        op = self.op()
        if op not in (_NUMBER_OPS if _numeric(entity, key) else _STRING_OPS):
            self.fail(_ops_message(entity, key), op_pos)
        if op not in ("in", "not in"):
            return Comparison(entity, key, op, self.value(entity, key, op), ident.pos)
        token = self.next()
        if token.kind != "(":
            self.fail(f"expected '(' after {op}, got {self.describe(token)}", token.pos)
        if self.peek().kind == ")":
            self.fail(f"empty {op} (): give at least one value", self.peek().pos)
        values = [self.value(entity, key, op)]
        while self.peek().kind == ",":
            self.next()
            values.append(self.value(entity, key, op))
        token = self.next()
        if token.kind != ")":
            self.fail(
                f"expected ',' or ')' in the {op} list, got {self.describe(token)}", token.pos
            )
        return Comparison(entity, key, op, tuple(values), ident.pos)

    def value(self, entity: Entity, key: str, op: Op) -> float | str:
        token = self.next()
        numeric = _numeric(entity, key)
        if token.kind == "number" and numeric:
            number = float(token.text)
            if not math.isfinite(number):
                self.fail("the number is out of range: numbers must be finite", token.pos)
            return number
        if token.kind in ("number", "string") and not numeric:
            if key != "status" or entity != "attributes" or "like" in op:
                return token.text
            if token.text.lower() not in _STATUSES:
                allowed = ", ".join(_STATUSES)
                self.fail(f"attributes.status must be one of {allowed}", token.pos)
            return token.text.lower()
        if token.kind == "string":
            self.fail(f"{_what(entity, key)}: compare with a number", token.pos)
        if token.kind == "word" and token.text in ("true", "false"):
            self.fail("true and false are not supported: use a quoted string or 1/0", token.pos)
        if token.kind == "backquoted":
            self.fail("back-quotes are for keys: quote values with '...' or \"...\"", token.pos)
        self.fail(
            f"expected a value (a number or a quoted string), got {self.describe(token)}",
            token.pos,
        )


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


def parse_filter(text: str | None) -> Node | None:
    """The AST of a filter, or ``None`` for no filter; raises :class:`FilterSyntaxError`."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    node = parser.or_expr()
    token = parser.peek()
    if token.kind == ")":
        parser.fail("unmatched ')'", token.pos)
    if token.kind != "end":
        parser.fail(f"expected and, or or the end, got {parser.describe(token)}", token.pos)
    return node


def parse_order_by(items: Sequence[str] | None) -> list[OrderBy]:
    """Order-by items such as ``"metrics.f1 desc"``; a bare string is one item."""
    if items is None:
        return []
    result: list[OrderBy] = []
    for item in [items] if isinstance(items, str) else items:
        parser = _Parser(item)
        entity, key, _ = parser.ident("an order-by item such as 'metrics.f1 desc'")
        descending = False
        if parser.peek().kind == "word" and parser.peek().text in ("asc", "desc"):
            descending = parser.next().text == "desc"
        token = parser.peek()
        if token.kind != "end":
            parser.fail(f"expected asc, desc or the end, got {parser.describe(token)}", token.pos)
        result.append(OrderBy(entity, key, descending))
    return result


def _quote(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def _value_text(value: float | str) -> str:
    return _quote(value, "'") if isinstance(value, str) else repr(float(value))


def to_text(node: Node | None) -> str:
    """Canonical filter text for ``node`` that parses back to an equal AST (``""`` for None)."""
    if node is None:
        return ""
    if isinstance(node, Comparison):
        key = node.key if _WORD.fullmatch(node.key) else _quote(node.key, "`")
        if isinstance(node.value, tuple):
            value = "(" + ", ".join(_value_text(v) for v in node.value) + ")"
        else:
            value = _value_text(node.value)
        return f"{node.entity}.{key} {node.op} {value}"
    if isinstance(node, Not):
        return "not " + _group(node.item)
    return (" and " if isinstance(node, And) else " or ").join(_group(i) for i in node.items)


def _group(node: Node) -> str:
    return f"({to_text(node)})" if isinstance(node, And | Or) else to_text(node)
