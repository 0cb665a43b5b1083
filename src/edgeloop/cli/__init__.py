"""The ``edgeloop`` command: a thin Typer layer over the Python API.

:func:`main` first offers ``edgeloop run`` to the cached-run fast path
(:mod:`edgeloop.pipelines._fast`), which needs neither Typer nor the storage stack; every
other command, and any run with work to do, goes to the Typer application.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgeloop._lazy import lazy_names
from edgeloop.errors import EdgeloopError

if TYPE_CHECKING:
    from edgeloop.cli._app import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: errors become one line on stderr and a non-zero exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        from edgeloop.pipelines._fast import run_if_cached

        code = run_if_cached(args[1:])
        if code is not None:
            raise SystemExit(code)
    from edgeloop.cli._app import app

    try:
        app(args=args, prog_name="edgeloop")
    except EdgeloopError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(exc.exit_code) from None


__getattr__, __dir__ = lazy_names(__name__, {"._app": ("app",)})
