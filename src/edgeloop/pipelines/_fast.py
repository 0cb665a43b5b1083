"""``edgeloop run`` when nothing changed: a cached run recorded without loading the stack.

Re-running an unchanged pipeline does no work, so its cost is start-up: importing SQLAlchemy,
pandas, scikit-learn and the CLI framework takes about a second. :func:`run_if_cached` is
tried by the ``edgeloop`` entry point before anything else is imported. It reads the
pipeline file, computes every step's cache key with the same code as the runner
(:mod:`edgeloop.pipelines._keys`), and if every step hits the cache it records the pipeline
run (all steps ``cached``) through the standard library's sqlite3 and prints what
``edgeloop run`` prints. It returns ``None`` — and has written nothing — whenever it cannot
be sure: a step to execute, a non-SQLite or remote backend, a database that is not yet at the
schema head, options other than ``--param``, ``--file`` and ``--json``, or any error (the
regular path then reports it properly).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sqlite3
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from edgeloop.config import load_settings
from edgeloop.datasets._refs import format_ref, parse_ref
from edgeloop.errors import EdgeloopError
from edgeloop.pipelines._keys import PRODUCED, code_digest, digest, input_digests, step_key
from edgeloop.pipelines._spec import (
    PipelineSpec,
    open_pipeline_file,
    parse_params,
    pick_pipeline,
)
from edgeloop.store._lite import LiteSQLite
from edgeloop.tracking._lineage import environment_digest, git_state
from edgeloop.workspace import Principal, now_ms

__all__ = ["run_if_cached"]

_PLAIN = (str, int, float, bool, type(None))


class _Miss(Exception):
    """Something the fast path does not handle: take the regular path."""


def _parse(argv: Sequence[str]) -> tuple[str, list[str], Path, bool]:
    pipeline, params, file, as_json = "", [], Path("edgeloop.yaml"), False
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in ("--param", "-p", "--file", "-f") and not eq:
            value = next(args, "")
            if not value:
                raise _Miss
        if name in ("--param", "-p"):
            params.append(value)
        elif name in ("--file", "-f"):
            file = Path(value)
        elif arg == "--json":
            as_json = True
        elif arg.startswith("-") or pipeline:
            raise _Miss
        else:
            pipeline = arg
    return pipeline, params, file, as_json


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _produced_value(artifacts_root: str, content: str) -> Any:
    """A produced id (run id, version number) stored by ``dump_value``: joblib writes plain
    Python values as an ordinary pickle; anything else goes the regular way."""
    if "://" in artifacts_root:
        raise _Miss
    path = Path(artifacts_root) / "blobs" / content[:2] / content[2:]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Miss from exc
    if hashlib.sha256(data).hexdigest() != content:
        raise _Miss
    try:
        value = pickle.loads(data)
    except Exception as exc:
        raise _Miss from exc
    if not _plain(value):
        raise _Miss
    return value


def run_if_cached(argv: Sequence[str], *, out: TextIO | None = None) -> int | None:
    """Handle ``edgeloop run ARGV`` if every step is cached; the exit code, or ``None``."""
    started = time.perf_counter()
    try:
        pipeline, param_args, file, as_json = _parse(argv)
        settings = load_settings()
        if settings.url:
            raise _Miss
        spec = pick_pipeline(open_pipeline_file(file), pipeline, file)
        spec = spec.with_params(parse_params(param_args))
        db = LiteSQLite.open(settings.database_url)
        if db is None:
            raise _Miss
        try:
            return _run(db, spec, settings.artifacts_uri, as_json, started, out or sys.stdout)
        finally:
            db.close()
    except (_Miss, EdgeloopError, sqlite3.Error, OSError):
        return None


def _run(
    db: LiteSQLite,
    spec: PipelineSpec,
    artifacts_root: str,
    as_json: bool,
    started: float,
    out: TextIO,
) -> int:
    order = spec.order()
    datasets: dict[str, tuple[str, str]] = {}
    for step in order:
        for value in step.inputs.values():
            if isinstance(value, str) and value.startswith("datasets:/") and value not in datasets:
                name, number = parse_ref(value)
                found = db.dataset_version(name, number)
                if found is None or found[1] == "quarantined":
                    raise _Miss
                datasets[value] = (format_ref(name, found[0]), found[2])
    codes = {s.name: code_digest(s.run) for s in order}
    env = environment_digest()
    outputs: dict[str, dict[str, str]] = {}
    steps: list[dict[str, Any]] = []
    for step in order:
        inputs = input_digests(step, outputs, datasets)
        key = step_key(spec, step, codes[step.name], inputs, env)
        hit = db.cached_outputs(key)
        if hit is None:
            raise _Miss
        outputs[step.name] = hit
        at = now_ms()
        steps.append(
            {
                "name": step.name,
                "status": "cached",
                "cache_key": key,
                "inputs": inputs,
                "outputs": hit,
                "logs_digest": "",
                "error": "",
                "started_at": at,
                "ended_at": at,
            }
        )
    produced: dict[str, list[Any]] = {}
    for step_outputs in outputs.values():
        for name in PRODUCED:
            if name in step_outputs:
                value = _produced_value(artifacts_root, step_outputs[name])
                produced.setdefault(name, []).append(value)
    principal = Principal.local_user().name
    lineage: dict[str, Any] = {
        "code_digest": digest(codes),
        "environment_digest": env,
        "git": git_state(),
        "datasets": dict(datasets.values()),
    }
    if produced:
        lineage["produced"] = produced
    run = {
        "id": uuid.uuid4().hex,
        "pipeline": spec.name,
        "status": "succeeded",
        "params": dict(spec.params),
        "reasons": {"manual": {"by": principal}},
        "lineage": lineage,
        "error": "",
        "resumed_from": None,
        "started_at": steps[0]["started_at"] if steps else now_ms(),
        "ended_at": now_ms(),
        "created_by": principal,
    }
    db.add_pipeline_run(run, steps)
    if as_json:
        out.write(json.dumps({**run, "steps": steps}, indent=2, sort_keys=True) + "\n")
    else:
        for s in steps:
            out.write(f"↺ {s['name']} cached\n")
        out.write(f"run {run['id']} succeeded in {time.perf_counter() - started:.2f} s\n")
    return 0
