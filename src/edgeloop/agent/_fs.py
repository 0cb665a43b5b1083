"""Durable file operations: every write the agent relies on after a power cut goes through
here (write, fsync the file, rename into place, fsync the directory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "remove_tree", "write_durable"]


def fsync_dir(path: Path) -> None:
    """Make the directory entries of ``path`` (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` (created or truncated) and fsync it; not atomic."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` by ``data`` atomically: readers see the old or the new bytes, never a
    mix, whenever the process or the machine stops."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_durable(tmp, data, mode=mode)
    os.chmod(tmp, mode)  # an existing temp file keeps its old mode through O_CREAT
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Remove ``path`` (a file or a directory tree) if it exists, durably."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return
    fsync_dir(path.parent)
