"""The Python API for datasets.

>>> import edgeloop as el
>>> el.data.add("vibration", ["recordings/"], label_from="folder")  # doctest: +SKIP
>>> table = el.data.load("datasets:/vibration@latest")  # doctest: +SKIP
"""

from __future__ import annotations

from edgeloop.client._data import (
    accept,
    add,
    diff,
    folds,
    get,
    get_split,
    label_history,
    list_datasets,
    load,
    profile,
    read_changes,
    relabel,
    schema,
    set_policy,
    set_schema,
    split,
    versions,
    window,
)

__all__ = [
    "accept",
    "add",
    "diff",
    "folds",
    "get",
    "get_split",
    "label_history",
    "list_datasets",
    "load",
    "profile",
    "read_changes",
    "relabel",
    "schema",
    "set_policy",
    "set_schema",
    "split",
    "versions",
    "window",
]
