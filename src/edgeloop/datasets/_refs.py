"""Dataset references: ``datasets:/name@4``, ``datasets:/name@latest`` (or ``name@4``)."""

from __future__ import annotations

import re

from edgeloop.errors import ValidationFailed

__all__ = ["format_ref", "parse_ref"]

_REF = re.compile(
    r"^(?:datasets:/)?(?P<name>[A-Za-z0-9][A-Za-z0-9_\-. ]{0,255})(?:@(?P<v>[^@/]+))?$"
)


def parse_ref(ref: str, *, default_latest: bool = True) -> tuple[str, int | None]:
    """(name, version) of a reference; version None means the latest."""
    match = _REF.match(ref.strip() if isinstance(ref, str) else "")
    if match is None:
        raise ValidationFailed(
            f"dataset reference {ref!r} is not valid; use datasets:/NAME@VERSION, "
            "datasets:/NAME@latest or NAME@VERSION"
        )
    version = match["v"]
    if version is None:
        if not default_latest:
            raise ValidationFailed(f"{ref!r} names no version; add @VERSION or @latest")
        return match["name"], None
    if version == "latest":
        return match["name"], None
    if not version.isdigit() or int(version) < 1:
        raise ValidationFailed(
            f"dataset version {version!r} in {ref!r} must be a number ≥ 1 or latest"
        )
    return match["name"], int(version)


def format_ref(name: str, version: int) -> str:
    return f"datasets:/{name}@{version}"
