"""Search spaces: how a param is sampled by random search and by Optuna.

A search space maps a param name to one of::

    ("float", low, high)        uniform in [low, high]
    ("log_float", low, high)    log-uniform in [low, high]; 0 < low
    ("int", low, high)          integer in [low, high]
    ("log_int", low, high)      integer, log-uniform in [low, high]; 1 <= low
    ("categorical", [a, b, c])  one of the choices (None, bool, int, float or str)

Lists work as well as tuples (specs read from YAML or JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from edgeloop.errors import ValidationFailed

if TYPE_CHECKING:
    import optuna

__all__ = ["SPACE_KINDS", "SpaceEntry", "check_space_entry", "draw", "suggest"]

SpaceEntry: TypeAlias = Sequence[Any]
"""``(kind, low, high)`` or ``("categorical", choices)``; see the module docstring."""

SPACE_KINDS: tuple[str, ...] = ("float", "log_float", "int", "log_int", "categorical")
_CHOICE_TYPES = (type(None), bool, int, float, str)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_space_entry(entry: object, *, field: str) -> None:
    """Raise :class:`ValidationFailed` unless ``entry`` is a valid search-space entry."""
    kinds = ", ".join(SPACE_KINDS)
    if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or not entry:
        raise ValidationFailed(
            f"{field} must be (kind, low, high) or ('categorical', choices) with kind one of "
            f"{kinds}; got {entry!r}",
            details={"field": field, "allowed": list(SPACE_KINDS)},
        )
    kind = entry[0]
    if kind == "categorical":
        choices = entry[1] if len(entry) == 2 else None
        if (
            isinstance(choices, str | bytes)
            or not isinstance(choices, Sequence)
            or not choices
            or not all(isinstance(c, _CHOICE_TYPES) for c in choices)
        ):
            raise ValidationFailed(
                f"{field} must be ('categorical', [choices...]) with at least one choice, each "
                f"None, a bool, an int, a float or a str; got {entry!r}",
                details={"field": field},
            )
        return
    if kind not in SPACE_KINDS:
        raise ValidationFailed(
            f"{field}: unknown space kind {kind!r}; allowed: {kinds}",
            details={"field": field, "allowed": list(SPACE_KINDS)},
        )
    if len(entry) != 3 or not _is_real(entry[1]) or not _is_real(entry[2]):
        raise ValidationFailed(
            f"{field} must be ({kind!r}, low, high) with finite numbers; got {entry!r}",
            details={"field": field},
        )
    low, high = entry[1], entry[2]
    if kind in ("int", "log_int") and not (isinstance(low, int) and isinstance(high, int)):
        raise ValidationFailed(f"{field}: {kind} bounds must be integers; got {entry!r}")
    if not low <= high:
        raise ValidationFailed(f"{field}: low must not exceed high; got {entry!r}")
    if kind == "log_float" and low <= 0:
        raise ValidationFailed(f"{field}: log_float needs 0 < low; got {entry!r}")
    if kind == "log_int" and low < 1:
        raise ValidationFailed(f"{field}: log_int needs 1 <= low; got {entry!r}")


def draw(rng: np.random.Generator, entry: SpaceEntry) -> Any:
    """One value of ``entry`` drawn with ``rng`` (random search), as a Python scalar."""
    kind = entry[0]
    if kind == "categorical":
        choices = entry[1]
        return choices[int(rng.integers(len(choices)))]
    low, high = entry[1], entry[2]
    if kind == "float":
        return float(rng.uniform(low, high))
    if kind == "log_float":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if kind == "int":
        return int(rng.integers(low, high, endpoint=True))
    # log_int: log-uniform on [low, high + 1), floored
    return min(int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))), int(high))


def suggest(trial: optuna.Trial, name: str, entry: SpaceEntry) -> Any:
    """One value of ``entry`` suggested by an Optuna ``trial`` under the param ``name``."""
    kind = entry[0]
    if kind == "categorical":
        return trial.suggest_categorical(name, list(entry[1]))
    low, high = entry[1], entry[2]
    if kind in ("float", "log_float"):
        return trial.suggest_float(name, float(low), float(high), log=kind == "log_float")
    return trial.suggest_int(name, int(low), int(high), log=kind == "log_int")
