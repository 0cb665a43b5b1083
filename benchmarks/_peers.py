"""Peer tools for benchmarks: each one in its own venv under ``.peers/<name>/``, pinned.

A benchmark compares edgeloop (in-process, in ``.venv``) with another tool that must not share
its dependencies. :func:`ensure_peer` creates ``.peers/<name>/`` with ``python3 -m venv`` and
pip-installs the peer's pinned requirements, once: a stamp file records what was installed,
and a second call with the same pins does nothing. :func:`run_in_peer` runs a script with that
venv's interpreter, JSON in and JSON out:

* the arguments are written to the script's standard input as one JSON document;
* the script prints its result as one JSON object on the last line of its standard output
  (progress goes to standard error, which is passed through).

>>> args = {"workdir": "/tmp/m", "points_b": 5000}
>>> run_in_peer("mlflow", PEER_SCRIPTS / "mlflow_tracking.py", args)["b"]["points_per_s"]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PEERS",
    "PEERS_DIR",
    "PEER_SCRIPTS",
    "Peer",
    "PeerError",
    "ensure_peer",
    "peer_python",
    "run_in_peer",
]

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / ".peers"
PEER_SCRIPTS = Path(__file__).resolve().parent / "peers"
_STAMP = ".edgeloop-peer-stamp.json"


@dataclass(frozen=True)
class Peer:
    """A tool to compare with: its venv name and the exact requirements to install."""

    name: str
    requirements: tuple[str, ...]
    python: str = ""  # the interpreter to build the venv with; "": the one .venv was made from


# Exact pins, so that figures are comparable from one run to the next. Later benchmarks add
# their peers here (DVC, whylogs, Evidently, emlearn, ...). mlflow: 3.17.2 is the newest 3.x
# that installs (pip lists 3.18.0, but the mlflow-skinny==3.18.0 it needs is not published).
PEERS: dict[str, Peer] = {
    "mlflow": Peer("mlflow", ("mlflow==3.17.2",)),
    # the same numpy / pandas / pyarrow / scikit-learn as edgeloop's pins, so pipeline steps
    # compute the same thing in both venvs; dvc 3.67.1 is the newest release
    "dvc": Peer(
        "dvc",
        (
            "dvc==3.67.1",
            "numpy==2.4.6",
            "pandas==3.1.1",
            "pyarrow==26.0.1",
            "scikit-learn==1.9.1",
        ),
    ),
    # whylogs 1.6.4 (the newest release) wants pandas 2.x; its sketching library is a
    # pre-release, pinned exactly.
    "whylogs": Peer(
        "whylogs",
        (
            "whylogs==1.6.4",
            "whylogs-sketching==3.4.1.dev3",
            "pandas==2.3.3",
            "numpy==2.4.6",
            "pyarrow==26.0.1",
            "protobuf==7.36.2",
        ),
    ),
    # emlearn 0.23.2 (the newest release) with edgeloop's numpy and scikit-learn, so the models
    # edgeloop trains unpickle unchanged in the peer (benchmarks/edge.py)
    "emlearn": Peer("emlearn", ("emlearn==0.23.2", "numpy==2.4.6", "scikit-learn==1.9.1")),
    # evidently 0.7.23 (the newest release) wants pandas < 3: pandas 2.3.3, with edgeloop's
    # numpy, pyarrow (to read the benchmark's Parquet files) and scipy (the same statistics)
    "evidently": Peer(
        "evidently",
        (
            "evidently==0.7.23",
            "pandas==2.3.3",
            "numpy==2.4.6",
            "scipy==1.17.1",
            "pyarrow==26.0.1",
        ),
    ),
}


class PeerError(RuntimeError):
    """A peer venv could not be built, or a peer script failed or printed no JSON."""


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _base_python(peer: Peer) -> str:
    if peer.python:
        return shutil.which(peer.python) or peer.python
    # Not .venv's python (a venv made from a venv works, but is one more indirection).
    return str(getattr(sys, "_base_executable", "") or sys.executable)


def _stamp_payload(peer: Peer) -> dict[str, Any]:
    return {"requirements": sorted(peer.requirements), "python": _base_python(peer)}


def peer_python(name: str) -> Path:
    """The interpreter of peer ``name``'s venv (which may not exist yet)."""
    return _venv_python(PEERS_DIR / name)


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without anything that would make the peer see ``.venv``'s packages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "__PYVENV_LAUNCHER__")
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra or {})
    return env


def ensure_peer(peer: Peer | str, *, quiet: bool = True) -> Path:
    """Create ``.peers/<name>/`` and install the pins unless already done; its python."""
    if isinstance(peer, str):
        try:
            peer = PEERS[peer]
        except KeyError:
            raise PeerError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}") from None
    venv = PEERS_DIR / peer.name
    python = _venv_python(venv)
    stamp = venv / _STAMP
    wanted = _stamp_payload(peer)
    if python.exists() and stamp.is_file():
        try:
            if json.loads(stamp.read_text(encoding="utf-8")) == wanted:
                return python
        except (OSError, ValueError):
            pass
    interpreter = _base_python(peer)
    env = _clean_env()
    print(f"[peers] preparing {venv} with {', '.join(peer.requirements)}", file=sys.stderr)
    try:
        if not python.exists():
            PEERS_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, env=env)
        stamp.unlink(missing_ok=True)
        pip = [str(python), "-m", "pip", "install", *(["--quiet"] if quiet else [])]
        subprocess.run([*pip, *peer.requirements], check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PeerError(f"could not prepare peer {peer.name!r} in {venv}: {exc}") from exc
    stamp.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    return python


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def run_in_peer(
    name: str,
    script: str | Path,
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``script`` with peer ``name``'s python; ``args`` as JSON on stdin, JSON result back."""
    python = ensure_peer(name)
    script = Path(script).resolve()
    try:
        proc = subprocess.run(
            [str(python), str(script), *argv],
            input=json.dumps(dict(args or {})),
            stdout=subprocess.PIPE,
            stderr=None,  # progress and warnings go straight to our terminal
            text=True,
            timeout=timeout,
            env=_clean_env(env),
            cwd=script.parent,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{script.name} in peer {name!r} took longer than {timeout} s") from exc
    result = _last_json(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise PeerError(
            f"{script.name} in peer {name!r} exited with {proc.returncode} "
            f"and {'no JSON' if result is None else 'a result'}; last output:\n{tail}"
        )
    return result
