"""Lazy package namespaces: a package's public names are imported on first use.

``import edgeloop`` (and the CLI's start-up) then costs only what is used: the command that
re-runs a fully cached pipeline never imports SQLAlchemy, pandas or scikit-learn. Each
package keeps its imports under ``TYPE_CHECKING`` for type checkers and declares, once, which
submodule provides each name::

    __getattr__, __dir__ = lazy_names(__name__, {"._spec": ("PipelineSpec", "step")})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, sources: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``: ``sources`` maps a module
    (relative like ``"._spec"``, or absolute) to the names it provides; a name that is also
    the module (``{"edgeloop.data": ("data",)}`` with the module's last part) is the module."""
    where: dict[str, str] = {}
    for module, names in sources.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is provided twice")
            where[name] = module

    def __getattr__(name: str) -> Any:
        module_name = where.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name, package)
        value = module if module.__name__.rpartition(".")[2] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
