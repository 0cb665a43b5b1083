"""Device groups: a static list of device ids, or a tag query such as
``target=nano33ble and site=plant-3``.

The query grammar: ``key=value`` terms joined by ``and``; keys are ``target``, ``site``,
``firmware``, ``id`` and ``tags.NAME``; a value is a bare word (letters, digits,
``. _ - : / *``; ``*`` matches any run of characters) or a quoted string. A group holds the
*accepted* devices it names or matches, evaluated when it is used.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, FilterSyntaxError, ValidationFailed
from edgeloop.fleet._entities import GroupInfo
from edgeloop.store import DeviceBrief, DeviceGroup, DeviceStore, RolloutStore
from edgeloop.store import Rollout as RolloutRow
from edgeloop.tracking import check_name
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "QUERY_KEYS",
    "Term",
    "create_group",
    "delete_group",
    "get_group",
    "group_devices",
    "list_groups",
    "matches",
    "parse_query",
]

QUERY_KEYS = ("target", "site", "firmware", "id", "tags.<name>")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*
        (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[A-Za-z0-9._:/*\-]+))
    )""",
    re.VERBOSE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_TAG = re.compile(r"^tags\.([A-Za-z0-9_][A-Za-z0-9_.\-]{0,63})$")
_MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Term:
    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def _check_key(key: str, text: str, position: int) -> None:
    if key in ("target", "site", "firmware", "id") or _TAG.match(key):
        return
    raise FilterSyntaxError.at(
        f"unknown key {key!r}: use {', '.join(QUERY_KEYS)}", text=text, position=position
    )


def parse_query(text: str) -> list[Term]:
    """The terms of a group query; :class:`FilterSyntaxError` (a ValidationFailed) with the
    position of the first problem.

    >>> [str(t) for t in parse_query("target=nano33ble and site=plant-3")]
    ['target=nano33ble', 'site=plant-3']
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed(
            "the group query is empty: write key=value terms joined by 'and', e.g. "
            "target=nano33ble and site=plant-3",
            details={"field": "query"},
        )
    terms: list[Term] = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:
            at = len(text) - len(text[position:].lstrip())
            raise FilterSyntaxError.at(
                "expected key=value (values with spaces in quotes)", text=text, position=at
            )
        _check_key(match["key"], text, match.start("key"))
        value = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
        terms.append(Term(match["key"], value))
        position = match.end()
        if not text[position:].strip():
            return terms
        joiner = _AND.match(text, position)
        if joiner is None:
            at = len(text) - len(text[position:].lstrip())
            raise FilterSyntaxError.at("expected 'and' between terms", text=text, position=at)
        position = joiner.end()


def _value(device: DeviceBrief, key: str) -> str | None:
    if key == "id":
        return device.id
    if key == "target":
        return device.target
    if key == "firmware":
        return device.firmware or (device.attributes or {}).get("firmware")
    attributes = device.attributes or {}
    if key == "site":
        site = attributes.get("site")
        return None if site is None else str(site)
    tag = _TAG.match(key)
    tags = attributes.get("tags") or {}
    if tag is not None and isinstance(tags, dict) and tag[1] in tags:
        return str(tags[tag[1]])
    return None


def matches(terms: Sequence[Term], device: DeviceBrief) -> bool:
    """Whether every term holds for ``device`` (``*`` in a value is a wildcard)."""
    for term in terms:
        value = _value(device, term.key)
        if value is None:
            return False
        if "*" in term.value:
            if not fnmatch.fnmatchcase(value, term.value.replace("[", "[[]")):
                return False
        elif value != term.value:
            return False
    return True


def _info(row: DeviceGroup, devices: list[str] | None = None) -> GroupInfo:
    return GroupInfo(
        name=row.name,
        kind=row.kind,
        members=[str(m) for m in row.members or []],
        query=row.query,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        devices=devices,
    )


def group_devices(s: Session, group: DeviceGroup, target: str | None = None) -> list[DeviceBrief]:
    """The accepted devices of ``group`` (of ``target`` only, if given), by id."""
    devices = DeviceStore(s).briefs(target)
    if group.kind == "static":
        members = set(group.members or [])
        return [d for d in devices if d.id in members]
    terms = parse_query(group.query)
    return [d for d in devices if matches(terms, d)]


def _check_members(s: Session, members: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(members))
    if not ids:
        raise ValidationFailed(
            "a static group needs at least one device id", details={"field": "members"}
        )
    if len(ids) > _MAX_MEMBERS:
        raise ValidationFailed(f"a static group holds at most {_MAX_MEMBERS} devices")
    known = DeviceStore(s).existing_ids(ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise ValidationFailed(
            f"{len(unknown)} of the group's devices are not enrolled: {shown}",
            details={"field": "members", "unknown": unknown[:100]},
        )
    return ids


def create_group(
    ws: Workspace,
    name: str,
    *,
    members: Sequence[str] | None = None,
    query: str | None = None,
    description: str = "",
) -> GroupInfo:
    """A static group (``members``: device ids, all enrolled) or a query group (``query``)."""
    check_name("group", name)
    if (members is None) == (query is None):
        raise ValidationFailed(
            "give a group either static members (--static ID,ID) or a query (--query "
            "'target=rpi4 and site=plant-3'), not both",
            details={"field": "members"},
        )
    if query is not None:
        parse_query(query)
    with ws.db.write() as s:
        row = DeviceGroup(
            name=name,
            kind="static" if members is not None else "query",
            members=_check_members(s, members) if members is not None else [],
            query=query or "",
            description=description,
            created_at=now_ms(),
            created_by=ws.principal.name,
        )
        DeviceStore(s).add_group(row)
        return _info(row, [d.id for d in group_devices(s, row)])


def list_groups(ws: Workspace) -> list[GroupInfo]:
    with ws.db.read() as s:
        return [_info(g) for g in DeviceStore(s).groups()]


def get_group(ws: Workspace, name: str) -> GroupInfo:
    """The group with the accepted devices it holds now."""
    with ws.db.read() as s:
        row = DeviceStore(s).group(name)
        return _info(row, [d.id for d in group_devices(s, row)])


def delete_group(ws: Workspace, name: str) -> GroupInfo:
    """Delete a group that no active rollout uses."""
    with ws.db.write() as s:
        store = DeviceStore(s)
        row = store.group(name)
        rollouts = RolloutStore(s)
        for rollout_id in rollouts.ids_in_states(
            ("draft", "awaiting-approval", "running", "paused")
        ):
            rollout: RolloutRow = rollouts.get(rollout_id)
            if rollout.group_name == name:
                raise Conflict(
                    f"rollout {rollout_id} ({rollout.state}) uses group {name!r}: finish or "
                    "abort it first",
                    details={"rollout": rollout_id},
                )
        info = _info(row)
        store.delete_group(row)
        return info
