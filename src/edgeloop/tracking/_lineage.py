"""Lineage captured automatically: git commit, a digest of the uncommitted diff, environment."""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["capture_lineage", "environment_digest", "git_state"]


@functools.cache
def environment_digest() -> str:
    """SHA-256 over the Python version and every installed distribution's name and version
    (read from the ``*.dist-info`` folder names on ``sys.path``, which is cheap)."""
    names: set[str] = set()
    for entry in sys.path:
        folder = Path(entry or ".")
        if not folder.is_dir():
            continue
        try:
            names.update(
                p.name[: -len(".dist-info")].lower()
                for p in folder.iterdir()
                if p.name.endswith(".dist-info")
            )
        except OSError:
            continue
    payload = "\n".join([sys.version, *sorted(names)]).encode()
    return hashlib.sha256(payload).hexdigest()


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty", "diff_digest"}`` of the repository around ``cwd``, or ``{}``."""
    where = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], where)
    if commit is None:
        return {}
    diff = _git(["diff", "HEAD", "--no-color", "--binary"], where) or b""
    return {
        "commit": commit.decode().strip(),
        "dirty": bool(diff),
        "diff_digest": hashlib.sha256(diff).hexdigest() if diff else "",
    }


def capture_lineage(cwd: Path | None = None) -> dict[str, Any]:
    lineage: dict[str, Any] = {
        "environment_digest": environment_digest(),
        "python": sys.version.split()[0],
    }
    git = git_state(cwd)
    if git:
        lineage["git"] = git
    if sys.argv and sys.argv[0]:
        lineage["entry_point"] = Path(sys.argv[0]).name
    return lineage
