"""DVC side of ``benchmarks/pipelines.py``; runs in ``.peers/dvc`` (see ``_peers.py``).

Reads its arguments as JSON on standard input, prints the results as one JSON line on standard
output. ``project`` is a directory that ``pipelines.py`` has already filled with the step code
(``pipeline_steps/``), ``dvc.yaml`` and ``params.yaml``. Here:

* setup, timed for information: ``git init`` (user.name and user.email set locally), ``dvc
  init``, analytics off, ``git add -A`` and ``git commit``;
* ``cold``: ``dvc repro``; ``unchanged``: ``dvc repro`` again; ``changed``: ``params.yaml``
  replaced by ``params_after`` (one param that only train and later stages use), then ``dvc
  repro``. Each clock covers the whole ``dvc repro`` command, interpreter start included.

For each case: the wall time, the stages DVC ran (from its ``Running stage 'NAME':`` lines) and
``registry/metrics.json`` as it stands afterwards (what ``register`` wrote).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RAN = re.compile(r"^Running stage '([^']+)':", re.MULTILINE)
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(f"[dvc] {message}", file=sys.stderr, flush=True)


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    # the stages' "python" is this venv's, as if it were activated
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env["DVC_NO_ANALYTICS"] = "1"  # no telemetry, no network
    env["DVC_SITE_CACHE_DIR"] = str(project / ".dvc-site")  # not /var/tmp/dvc
    env.pop("PYTHONPATH", None)
    return env


def _run(cmd: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def setup(project: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    _run(["git", "init", "-q"], project, env)
    _run(["git", "config", "user.name", "edgeloop-bench"], project, env)
    _run(["git", "config", "user.email", "bench@edgeloop.invalid"], project, env)
    _run([str(BIN / "dvc"), "init", "-q"], project, env)
    _run([str(BIN / "dvc"), "config", "core.analytics", "false"], project, env)
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-q", "-m", "pipeline"], project, env)
    return time.perf_counter() - t0


def repro(project: Path, env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = _run([str(BIN / "dvc"), "repro"], project, env)
    seconds = time.perf_counter() - t0
    metrics_file = project / "registry" / "metrics.json"
    return {
        "seconds": seconds,
        "ran": RAN.findall(done.stdout),
        "metrics": json.loads(metrics_file.read_text(encoding="utf-8")),
    }


def main() -> None:
    args = json.load(sys.stdin)
    project = Path(args["project"])
    env = _env(project)
    result: dict[str, Any] = {"dvc": metadata.version("dvc")}
    result["setup_s"] = setup(project, env)
    result["cold"] = repro(project, env)
    log(f"cold {result['cold']['seconds']:.2f} s, ran {', '.join(result['cold']['ran'])}")
    result["unchanged"] = repro(project, env)
    log(f"unchanged {result['unchanged']['seconds']:.2f} s")
    (project / "params.yaml").write_text(args["params_after"], encoding="utf-8")
    result["changed"] = repro(project, env)
    log(f"changed {result['changed']['seconds']:.2f} s, ran {', '.join(result['changed']['ran'])}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
