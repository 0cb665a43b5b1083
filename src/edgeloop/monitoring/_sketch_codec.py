"""Encoding helpers shared by the sketches (pure numpy + standard library).

Binary layout of every ``to_bytes()``::

    b"ELSK" | u8 format version | u8 type code | zlib(body)

The body is a sequence of little-endian fields written by :class:`Writer` and read back by
:class:`Reader`. Integer arrays are stored in the narrowest little-endian dtype that holds them
(one dtype code byte, a u32 length, then the raw bytes), so counts that fit a byte take a byte.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from edgeloop.errors import ValidationFailed

__all__ = [
    "MAGIC",
    "MAX_BODY_BYTES",
    "Reader",
    "Writer",
    "as_float_array",
    "check_type",
    "decode_float",
    "encode_float",
    "inflate",
    "pack",
    "parse_dict",
    "unpack",
]

MAGIC = b"ELSK"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBB")
_INT_DTYPES = ("<u1", "<u2", "<u4", "<u8", "<i1", "<i2", "<i4", "<i8")
_T = TypeVar("_T")
MAX_BODY_BYTES = 64 << 20
"""The most a sketch's body may inflate to when the caller gives no tighter limit: a few
compressed bytes never make the reader allocate more (a zip bomb is refused)."""


def encode_float(x: float) -> float | str:
    """A float as JSON allows it: finite floats as themselves, NaN and infinities as strings."""
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def decode_float(v: object) -> float:
    """The inverse of :func:`encode_float`."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValidationFailed(f"expected a number, got {v!r}")
    if isinstance(v, str) and v not in ("nan", "inf", "-inf"):
        raise ValidationFailed(f"expected a number or 'nan'/'inf'/'-inf', got {v!r}")
    return float(v)


def as_float_array(values: object) -> np.ndarray:
    """``values`` as a flat float64 array (a view when it already is one)."""
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"values must be numbers: {exc}") from exc


def check_type(data: Mapping[str, Any], expected: str) -> None:
    """Raise unless ``data`` is a dict whose ``"type"`` is ``expected``."""
    if not isinstance(data, Mapping):
        raise ValidationFailed(f"expected a {expected} dict, got {type(data).__name__}")
    if data.get("type") != expected:
        raise ValidationFailed(f"expected type {expected!r}, got {data.get('type')!r}")


def parse_dict(kind: str, build: Callable[[], _T]) -> _T:
    """Run ``build``; turn the errors a malformed dict causes into :class:`ValidationFailed`."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValidationFailed(f"invalid {kind} dict: {type(exc).__name__}: {exc}") from exc


def _int_dtype(arr: np.ndarray) -> int:
    if arr.size == 0:
        return 0
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0:
        for code, bits in ((0, 8), (1, 16), (2, 32)):
            if hi < (1 << bits):
                return code
        return 3
    for code, bits in ((4, 7), (5, 15), (6, 31)):
        if -(1 << bits) <= lo and hi < (1 << bits):
            return code
    return 7


class Writer:
    """Appends little-endian fields to a body."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, x: int) -> None:
        self._parts.append(struct.pack("<B", x))

    def i64(self, x: int) -> None:
        self._parts.append(struct.pack("<q", x))

    def u64(self, x: int) -> None:
        self._parts.append(struct.pack("<Q", x))

    def f64(self, x: float) -> None:
        self._parts.append(struct.pack("<d", x))

    def raw(self, data: bytes) -> None:
        self._parts.append(struct.pack("<I", len(data)))
        self._parts.append(data)

    def text(self, s: str) -> None:
        self.raw(s.encode("utf-8"))

    def ints(self, arr: np.ndarray) -> None:
        a = np.asarray(arr, dtype=np.int64).ravel()
        code = _int_dtype(a)
        self._parts.append(struct.pack("<BI", code, a.size))
        self._parts.append(a.astype(_INT_DTYPES[code]).tobytes())

    def floats(self, arr: np.ndarray) -> None:
        a = np.asarray(arr, dtype="<f8").ravel()
        self._parts.append(struct.pack("<I", a.size))
        self._parts.append(a.tobytes())

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads the fields a :class:`Writer` wrote, in the same order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if n < 0 or end > len(self._data):
            raise ValidationFailed("sketch bytes are truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return int(self._take(1)[0])

    def i64(self) -> int:
        return int(struct.unpack("<q", self._take(8))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self._take(8))[0])

    def f64(self) -> float:
        return float(struct.unpack("<d", self._take(8))[0])

    def raw(self) -> bytes:
        (n,) = struct.unpack("<I", self._take(4))
        return self._take(int(n))

    def text(self) -> str:
        try:
            return self.raw().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"sketch bytes hold invalid UTF-8: {exc}") from exc

    def ints(self) -> np.ndarray:
        code, n = struct.unpack("<BI", self._take(5))
        if code >= len(_INT_DTYPES):
            raise ValidationFailed(f"sketch bytes hold an unknown integer dtype code {code}")
        dtype = np.dtype(_INT_DTYPES[code])
        return np.frombuffer(self._take(int(n) * dtype.itemsize), dtype=dtype).astype(np.int64)

    def floats(self) -> np.ndarray:
        (n,) = struct.unpack("<I", self._take(4))
        return np.frombuffer(self._take(int(n) * 8), dtype="<f8").astype(np.float64)

    def done(self) -> None:
        if self._pos != len(self._data):
            raise ValidationFailed(f"sketch bytes have {len(self._data) - self._pos} extra bytes")


def pack(type_code: int, body: bytes) -> bytes:
    """Header + zlib-compressed body."""
    return _HEADER.pack(MAGIC, FORMAT_VERSION, type_code) + zlib.compress(body, 6)


def inflate(data: bytes, max_bytes: int, kind: str) -> bytes:
    """The zlib stream ``data`` inflated, refusing (:class:`ValidationFailed`) a stream that
    inflates to more than ``max_bytes`` — without producing more than ``max_bytes + 1`` bytes,
    whatever the stream says — one that is truncated, and bytes left over after its end."""
    d = zlib.decompressobj()
    try:
        body = d.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ValidationFailed(f"{kind} bytes are corrupt: {exc}") from exc
    if len(body) > max_bytes:
        raise ValidationFailed(
            f"{kind} bytes inflate to more than {max_bytes} bytes, the most allowed"
        )
    if not d.eof:
        raise ValidationFailed(f"{kind} bytes are corrupt: the compressed stream is truncated")
    if d.unused_data:
        raise ValidationFailed(
            f"{kind} bytes have {len(d.unused_data)} bytes left over after the compressed stream"
        )
    return body


def unpack(data: bytes, type_code: int, kind: str, *, max_bytes: int = MAX_BODY_BYTES) -> Reader:
    """A reader over the body of ``data``, checking the header names ``type_code`` and that
    the body inflates to at most ``max_bytes`` (see :func:`inflate`)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationFailed(f"{kind}.from_bytes needs bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise ValidationFailed(f"not {kind} bytes: too short")
    magic, version, code = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValidationFailed(f"not {kind} bytes: bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ValidationFailed(f"{kind} bytes have format version {version}, expected 1")
    if code != type_code:
        raise ValidationFailed(f"bytes hold sketch type {code}, not {kind} ({type_code})")
    return Reader(inflate(data[_HEADER.size :], max_bytes, kind))
