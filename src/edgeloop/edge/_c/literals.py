"""Exact C literals: float32 constants that round-trip, int32 extremes, escaped strings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed

__all__ = ["c_array", "c_comment", "c_float", "c_int", "c_string", "floats", "fnv1a", "ints"]

_INT32_MIN = -(2**31)
_PRINTABLE = re.compile(r"[ !#-\[\]-~]")  # printable ASCII except '"' and '\'


def c_float(value: float | np.floating, field: str = "a constant") -> str:
    """``value`` rounded to float32, as the shortest decimal that reads back to the same
    float32 (``0.1f``, ``1e-10f``, ``-0.0f``)."""
    f = np.float32(value)
    if not np.isfinite(f):
        raise ValidationFailed(f"{field} must be a finite float32, got {value!r}")
    text = str(f)
    if not any(c in text for c in ".e"):
        text += ".0"
    if np.float32(text).tobytes() != f.tobytes():  # str(float32) is the shortest round trip
        raise AssertionError(f"float32 {f!r} printed as {text!r} does not read back")
    return text + "f"


def c_int(value: int | np.integer) -> str:
    """An integer literal; ``INT32_MIN`` as ``(-2147483647 - 1)`` (its magnitude is no int)."""
    v = int(value)
    if v == _INT32_MIN:
        return "(-2147483647 - 1)"
    return str(v)


def c_string(text: str) -> str:
    """``text`` (UTF-8) as a C string literal: printable ASCII as is, other bytes and ``?``
    (trigraphs) as three-digit octal escapes, so no escape can swallow the next character."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if char != "?" and _PRINTABLE.fullmatch(char) else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """``text`` made safe inside a ``/* */`` comment: ASCII only, no ``*/``, no ``??``."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return safe.replace("*/", "* /").replace("??", "? ?")


def c_array(
    ctype: str, name: str, values: Iterable[str], *, per_line: int, comment: str = ""
) -> str:
    """``static const <ctype> <name>[n] = {...};`` with ``per_line`` values to a line."""
    items: Sequence[str] = list(values)
    if not items:
        raise AssertionError(f"C array {name} would be empty")
    lines = [
        "    " + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line)
    ]
    head = f"/* {c_comment(comment)} */\n" if comment else ""
    body = "\n".join(lines)
    return f"{head}static const {ctype} {name}[{len(items)}] = {{\n{body}\n}};\n"


def ints(values: npt.ArrayLike) -> list[str]:
    """Integer array values as C literals, flattened in C (row-major) order."""
    return [c_int(v) for v in np.asarray(values).ravel().tolist()]


def floats(values: npt.ArrayLike, field: str) -> list[str]:
    """Float array values as exact float32 literals, flattened in C (row-major) order."""
    return [c_float(v, field) for v in np.asarray(values, dtype=np.float32).ravel()]


def fnv1a(data: bytes, state: int = 0x811C9DC5) -> int:
    """32-bit FNV-1a of ``data`` (continuing from ``state``), as the C self-test computes it."""
    for byte in data:
        state = ((state ^ byte) * 0x01000193) & 0xFFFFFFFF
    return state
