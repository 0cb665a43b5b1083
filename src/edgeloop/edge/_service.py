"""Footprints stored on a model version, one per target.

Each function is one transaction on the workspace's database. Writing needs the editor role
(the same as registering a version); reading needs none beyond access to the workspace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edgeloop.edge._footprint import Footprint
from edgeloop.errors import ValidationFailed
from edgeloop.governance import require
from edgeloop.registry import parse_version
from edgeloop.store import ModelStore
from edgeloop.workspace import Workspace, now_ms

__all__ = ["FootprintRecord", "get_footprints", "set_footprints"]


@dataclass(frozen=True)
class FootprintRecord:
    """A stored footprint, with when and by whom it was measured."""

    footprint: Footprint
    measured_at: int
    measured_by: str


def set_footprints(
    ws: Workspace, name: str, version: int | str, footprints: Iterable[Footprint]
) -> list[FootprintRecord]:
    """Store ``footprints`` on version ``version`` of model ``name``, one per target; a
    target measured before is replaced. All or nothing."""
    require(ws.principal, "editor")
    number = parse_version(version)
    items = list(footprints)
    targets = [fp.target for fp in items]
    if len(set(targets)) != len(targets):
        duplicated = sorted({t for t in targets if targets.count(t) > 1})
        raise ValidationFailed(
            f"one footprint per target, got several for {', '.join(duplicated)}",
            details={"field": "footprints", "targets": duplicated},
        )
    for fp in items:
        if not isinstance(fp, Footprint) or not fp.target or len(fp.target) > 64:
            raise ValidationFailed(
                f"not a footprint with a target id of 1-64 characters: {fp!r}",
                details={"field": "footprints"},
            )
    with ws.db.write() as s:
        store = ModelStore(s)
        model = store.get(name)
        mv = store.version(model, number)
        at, actor = now_ms(), ws.principal.name
        for fp in items:
            store.set_footprint(mv.id, fp.target, fp.to_dict(), actor, at)
        return [FootprintRecord(fp, at, actor) for fp in sorted(items, key=lambda f: f.target)]


def get_footprints(ws: Workspace, name: str, version: int | str) -> list[FootprintRecord]:
    """The stored footprints of a model version, by target id."""
    number = parse_version(version)
    with ws.db.read() as s:
        store = ModelStore(s)
        mv = store.version(store.get(name), number)
        return [
            FootprintRecord(Footprint.from_dict(row.footprint), row.measured_at, row.measured_by)
            for row in store.footprints(mv.id)
        ]
