"""Packages import their public names on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgeloop
from edgeloop._lazy import lazy_names


def test_import_edgeloop_is_light_and_names_resolve() -> None:
    script = (
        "import sys, edgeloop\n"
        "before = sorted(m for m in ('sqlalchemy', 'pandas', 'pyarrow', 'httpx', 'sklearn')"
        " if m in sys.modules)\n"
        "edgeloop.start_run\n"
        "print(before, 'sqlalchemy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[] True"


def test_every_public_name_resolves_and_unknown_names_raise() -> None:
    for name in edgeloop.__all__:
        assert getattr(edgeloop, name) is not None
    assert set(edgeloop.__all__) <= set(dir(edgeloop))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = edgeloop.nope  # type: ignore[attr-defined]


def test_a_name_provided_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="provided twice"):
        lazy_names("pkg", {".a": ("x",), ".b": ("x",)})


def test_device_runtimes_load_numpy_only_and_edge_names_resolve() -> None:
    script = (
        "import sys\n"
        "import edgeloop.edge.runtime, edgeloop.edge.trees, edgeloop.fleet.bundle\n"
        "heavy = ('sqlalchemy', 'sklearn', 'onnx', 'onnxruntime', 'pandas', 'pyarrow', 'yaml')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from edgeloop import edge, fleet\n"
        "print(all(getattr(m, n) is not None for m in (edge, fleet) for n in m.__all__))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["[]", "True"]
