"""Row helpers shared by the per-aggregate stores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

__all__ = ["insert_once"]


def insert_once(s: Session, row: object, existing: Select[Any]) -> bool:
    """Add ``row`` unless ``existing`` (a select of the same natural key) finds one; False
    when it was there already or a concurrent writer stored it first (the unique constraint,
    caught inside a savepoint so the caller's transaction goes on)."""
    if s.scalar(existing) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except sa_exc.IntegrityError:
        return False
    return True
