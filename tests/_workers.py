"""Worker processes for the concurrency and crash-safety tests.

Run as a script, never imported by pytest::

    python tests/_workers.py COMMAND 'JSON-ARGS'

with ``PYTHONPATH=<repo>/src`` and the workspace settings (``EDGELOOP_HOME``, optionally
``EDGELOOP_DB_URL``) in the environment. Workers that take a ``barrier`` argument (a
directory) create ``ready-<name>`` in it and wait for ``go`` before doing their work, so the
parent can release them all at the same moment. Progress goes to stdout, one line each,
flushed, so the parent can follow (and kill) a worker mid-way.
"""

from __future__ import annotations

import io
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BARRIER_TIMEOUT_S = 120.0


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def _barrier(args: dict[str, Any]) -> None:
    directory = args.get("barrier")
    if not directory:
        return
    where = Path(directory)
    (where / f"ready-{args['name']}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while not (where / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"worker {args['name']}: barrier never opened")
        time.sleep(0.001)


def _points(key: str, start: int, count: int) -> list[Any]:
    from edgeloop.tracking import MetricPoint

    return [
        MetricPoint(key=key, value=float(step) / 7.0, step=step, timestamp=1_000 + step)
        for step in range(start, start + count)
    ]


# commands --------------------------------------------------------------------------------


def open_workspace(args: dict[str, Any]) -> None:
    """Open (and so create and migrate) the workspace, all workers at once."""
    from edgeloop.workspace import Workspace

    _barrier(args)
    ws = Workspace.open()
    ws.close()
    _say("OPENED")


def write(args: dict[str, Any]) -> None:
    """Many small write transactions through the service layer, with reads in between.

    Prints ``RUN <id> <points>`` for every run it completed.
    """
    from edgeloop import tracking
    from edgeloop.workspace import Workspace

    ws = Workspace.open()
    _barrier(args)
    worker, batch = args["worker"], args["batch"]
    for r in range(args["runs"]):
        run = tracking.create_run(
            ws,
            args["experiment"],
            f"w{worker}-r{r}",
            params={"worker": worker, "run": r},
            tags={"phase": "start"},
        )
        written = 0
        for b, start in enumerate(range(0, args["points"], batch)):
            count = min(batch, args["points"] - start)
            written += tracking.log_metrics(ws, run.id, _points("loss", start, count))
            if b % 4 == 0:
                tracking.log_params(ws, run.id, {f"p{b}": b})
                tracking.set_tags(ws, run.id, {"phase": f"batch-{b}"})
            if b % 5 == 0:  # readers mixed in with the writers
                assert len(tracking.metric_history(ws, run.id, "loss")) == written
                tracking.search_runs(ws, args["experiment"], max_results=5)
        tracking.set_tags(ws, run.id, {"phase": "done"})
        tracking.set_run_status(ws, run.id, "finished")
        _say("RUN", run.id, written)
    ws.close()


def register(args: dict[str, Any]) -> None:
    """Register ``count`` versions of one model, racing the other workers."""
    from edgeloop import registry
    from edgeloop.workspace import Workspace

    ws = Workspace.open()
    _barrier(args)
    for _ in range(args["count"]):
        version = registry.create_model_version(ws, args["model"], run_id=args["run_id"])
        _say("VERSION", version.version)
    ws.close()


def crash_loop(args: dict[str, Any]) -> None:
    """Create runs forever until killed: params, metric batches and artifacts.

    Every run is created with exactly ``args["params"]``; metrics go in batches of
    ``args["batch"]`` points; artifacts are random bytes of up to ~2 MB.
    """
    from edgeloop import tracking
    from edgeloop.workspace import Workspace

    rng = random.Random(args["seed"])
    ws = Workspace.open()
    _say("OPEN")
    i = 0
    while True:
        run = tracking.create_run(ws, args["experiment"], params=args["params"])
        _say("RUN", run.id)
        for b in range(args["batches"]):
            start = b * args["batch"]
            tracking.log_metrics(ws, run.id, _points("loss", start, args["batch"]))
            _say("METRICS", run.id, b)
            size = rng.choice((0, 1, 4096, rng.randrange(2 * 1024 * 1024)))
            _say("ARTIFACT-START", run.id, b, size)
            tracking.put_artifact(ws, run.id, f"out/{b}.bin", io.BytesIO(rng.randbytes(size)))
            _say("ARTIFACT", run.id, b)
        tracking.set_run_status(ws, run.id, "finished")
        _say("DONE", run.id, i)
        i += 1


def fluent(args: dict[str, Any]) -> None:
    """The public API: log ``n`` points one at a time, then end in the way ``mode`` says."""
    import edgeloop as el

    mode, n = args["mode"], args["n"]

    def log_all() -> None:
        for step in range(n):
            el.log_metric("loss", 1.0 / (step + 1), step=step)

    if mode in ("with", "with-raise"):
        with el.start_run(experiment="buffered", name=mode) as run:
            _say("RUN", run.id)
            log_all()
            if mode == "with-raise":
                raise RuntimeError("boom after logging")
        return
    run = el.start_run(experiment="buffered", name=mode)
    _say("RUN", run.id)
    log_all()
    if mode == "raise":
        raise RuntimeError("boom after logging")
    # mode "no-end": just return; the interpreter exits without end_run().


COMMANDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "open": open_workspace,
    "write": write,
    "register": register,
    "crash-loop": crash_loop,
    "fluent": fluent,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
