"""The agent's own refusal: an update that cannot complete, with the protocol's reason."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from edgeloop.errors import EdgeloopError, ValidationFailed
from edgeloop.fleet.bundle import BundleRejected

__all__ = ["NoModel", "UpdateFailed", "failure_reason", "safe_join"]


class UpdateFailed(ValidationFailed):
    """An update that failed on the device for a reason outside the bundle's own checks
    (those raise :class:`~edgeloop.fleet.bundle.BundleRejected`): ``inference``, ``crash``,
    ``storage``, ``superseded``, ``unavailable`` or ``release``. ``reason`` is what the
    check-in reports."""

    code = "update_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` for a bundle file path, refusing anything that could leave
    ``root`` (absolute paths, ``..``, backslashes, empty parts)."""
    pure = PurePosixPath(relative)
    if (
        not relative
        or "\\" in relative
        or "\x00" in relative
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in relative.split("/"))
    ):
        raise BundleRejected(f"the bundle names an unsafe file path {relative!r}", reason="path")
    return root.joinpath(*pure.parts)


def failure_reason(exc: BaseException) -> str:
    """The reason to report for an update that raised ``exc``."""
    if isinstance(exc, BundleRejected | UpdateFailed):
        return str(exc.reason)
    if isinstance(exc, OSError):
        return "storage"
    return "inference"


class NoModel(EdgeloopError):
    """Inference asked of a device that has no verified model installed yet."""

    code = "no_model"
    http_status = 503
    exit_code = 7
