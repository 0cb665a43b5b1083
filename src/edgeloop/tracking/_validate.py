"""Validation of names, keys, values and artifact paths: clear messages, never a traceback."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from edgeloop.errors import ValidationFailed

__all__ = [
    "MAX_PARAM_LENGTH",
    "check_artifact_path",
    "check_key",
    "check_metric_value",
    "check_name",
    "param_text",
]

_KEY = re.compile(r"^[A-Za-z0-9_\-./ :]{1,250}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-. ]{0,255}$")
MAX_PARAM_LENGTH = 8000
MAX_PATH_LENGTH = 1024


def check_name(kind: str, name: Any) -> str:
    """Experiment, run, model and alias names: letters, digits, ``_ - . space``, ≤ 256."""
    if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
        raise ValidationFailed(
            f"{kind} name {name!r} is not allowed: use 1-256 letters, digits, '_', '-', '.' or "
            "spaces, starting with a letter or digit",
            details={"field": f"{kind}_name", "value": str(name)},
        )
    return name


def check_key(kind: str, key: Any) -> str:
    """Param, metric and tag keys: letters, digits, ``_ - . / : space``, ≤ 250."""
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key.split("/"):
        raise ValidationFailed(
            f"{kind} key {key!r} is not allowed: use 1-250 letters, digits, '_', '-', '.', '/', "
            "':' or spaces",
            details={"field": f"{kind}_key", "value": str(key)},
        )
    return key


def param_text(key: str, value: Any) -> str:
    """A param value as the text that is stored and compared."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise ValidationFailed(
            f"param {key!r} is {len(text)} characters long; the limit is {MAX_PARAM_LENGTH}"
        )
    return text


def check_metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(
                f"metric {key!r} value {value!r} is not a number", details={"metric": key}
            ) from exc
    number = float(value)
    if not math.isfinite(number):
        raise ValidationFailed(
            f"metric {key!r} value {number} is not finite: log finite numbers only",
            details={"metric": key},
        )
    return number


def check_artifact_path(path: Any) -> str:
    """A logical artifact path: relative, ``/``-separated, no ``..``, no empty segments."""
    if not isinstance(path, str) or not path:
        raise ValidationFailed("artifact path must be a non-empty string")
    problem = None
    if len(path) > MAX_PATH_LENGTH:
        problem = f"it is longer than {MAX_PATH_LENGTH} characters"
    elif path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        problem = "it is absolute"
    elif "\\" in path or "\x00" in path or any(ord(ch) < 32 for ch in path):
        problem = "it contains a backslash or a control character"
    else:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            problem = "it has an empty, '.' or '..' segment"
    if problem:
        raise ValidationFailed(
            f"artifact path {path!r} is not allowed: {problem}; use a relative path such as "
            "'model/model.joblib'",
            details={"field": "path", "value": path},
        )
    return path


def check_str_mapping(kind: str, values: Mapping[str, Any] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (values or {}).items():
        result[check_key(kind, key)] = param_text(key, value)
    return result
