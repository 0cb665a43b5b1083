"""Crash injection for the crash-safety tests.

``EDGELOOP_AGENT_CRASH_AT=<point>`` makes the agent ``os._exit(137)`` (what ``kill -9``
leaves behind: no ``finally``, no flush, no atexit) when it reaches ``<point>``:

- a journal step (``assigned``, ``downloading``, ``downloaded``, ``installing``,
  ``verifying``, ``switched``, ``healthy``, ``committed``, ``failed``, ``rolled-back``,
  ``reported``): right after that record is written and fsynced;
- ``torn:<step>``: half of that step's record is written (no newline), then the exit;
- a point between two writes: ``download-partial`` (half of a file's bytes are on disk),
  ``install-partial`` (one file is in the idle slot), ``switch-unjournaled`` (``active``
  names the new slot, the journal does not know yet), ``rollback-unjournaled`` (``active``
  is switched back, the journal does not know yet).
"""

from __future__ import annotations

import os

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "crash_point", "crash_requested"]

CRASH_ENV = "EDGELOOP_AGENT_CRASH_AT"
CRASH_EXIT_CODE = 137


def crash_requested(point: str) -> bool:
    """Whether the environment asks for a crash at ``point``."""
    return os.environ.get(CRASH_ENV, "") == point


def crash_point(point: str) -> None:
    """Exit at once, as ``kill -9`` would, if the environment asks for it at ``point``."""
    if crash_requested(point):
        os._exit(CRASH_EXIT_CODE)
