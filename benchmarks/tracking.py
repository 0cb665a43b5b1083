"""Tracking benchmark: edgeloop against MLflow, both on SQLite on this machine, side by side.

What is measured (edgeloop in-process in ``.venv``, MLflow in its own venv ``.peers/mlflow``,
built on first use by ``_peers.py``; the two never run at the same time):

(a) metric points logged one call at a time through each Python API, points/s:
    ``with el.start_run(...): el.log_metric("loss", v, step=i)`` against
    ``with mlflow.start_run(): mlflow.log_metric("loss", v, step=i)``. The clock runs from the
    first call to the end of the ``with`` block, so edgeloop's final flush (and each tool's end
    of run) is included. edgeloop logs 20,000 points; MLflow, at a few hundred points/s, logs
    2,000 by default and 20,000 with ``--full``.
(b) 100,000 points through each batch API, points/s: ``el.get_backend().log_metrics(run_id,
    points)`` (one call) against ``MlflowClient().log_batch`` (1000 metrics per call, its cap).
(c) latency of a search with a metric filter over 5,000 runs x 20 params x 20 metrics (the same
    seeded runs in both stores): ``el.search_runs("bench", "metrics.m3 > 0.5 and params.p1 =
    'v1'", order_by=["metrics.m3 desc"], max_results=1000)`` against
    ``MlflowClient().search_runs`` with the same filter and order. Both return full runs
    (params, metrics, tags); the benchmark checks they return the same runs in the same order.
    One warm-up, then the median of ``--repeats`` searches. Loading the runs is timed too, for
    information (MLflow: one ``log_batch`` per run, the fastest its public API allows).

Targets: (a) edgeloop >= 100x MLflow and >= 50,000 points/s; (b) >= 5x; (c) >= 10x.

Run::

    make bench                                       # or: .venv/bin/python benchmarks/tracking.py
    .venv/bin/python benchmarks/tracking.py --runs 500   # a quick check
    .venv/bin/python benchmarks/tracking.py --full       # MLflow logs all 20,000 points in (a)

Prints a table and writes ``benchmarks/results/tracking.json``. Nothing is cached between
runs: each uses fresh temporary stores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# _peers and peers/ sit next to this file (already on the path when it is run as a script).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console, JustifyMethod
from rich.table import Table

import edgeloop as el
from _peers import PEER_SCRIPTS, PEERS, ensure_peer, run_in_peer
from edgeloop.config import load_settings
from edgeloop.tracking import MetricPoint, Run
from peers._dataset import (
    SEARCH_FILTER,
    SEARCH_ORDER_KEY,
    search_run,
    series_value,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tracking.json"
console = Console(stderr=True)


# edgeloop side ------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def edgeloop_case_a(points: int) -> dict[str, Any]:
    with el.start_run("bench-a-warmup", "warmup"):
        for i in range(100):
            el.log_metric("loss", series_value(i), step=i)
    with el.start_run("bench-a", "a") as run:
        start = time.perf_counter()
        for i in range(points):
            el.log_metric("loss", series_value(i), step=i)
        logged = time.perf_counter()
    seconds = time.perf_counter() - start
    stored = len(el.get_backend().metric_history(run.id, "loss"))
    assert stored == points, f"edgeloop stored {stored} of {points} points"
    return {
        "points": points,
        "seconds": seconds,
        "points_per_s": points / seconds,
        "calls_s": logged - start,  # the log_metric calls alone
        "end_of_run_s": seconds - (logged - start),  # leaving the block: flush and status
    }


def edgeloop_case_b(points: int) -> dict[str, Any]:
    backend = el.get_backend()
    now = _now_ms()
    warm = backend.create_run("bench-b-warmup", "warmup")
    backend.log_metrics(
        warm.id,
        [MetricPoint(key="loss", value=series_value(i), step=i, timestamp=now) for i in range(100)],
    )
    run = backend.create_run("bench-b", "b")
    batch = [
        MetricPoint(key="loss", value=series_value(i), step=i, timestamp=now + i)
        for i in range(points)
    ]
    start = time.perf_counter()
    stored = backend.log_metrics(run.id, batch)
    seconds = time.perf_counter() - start
    assert stored == points, f"edgeloop stored {stored} of {points} points"
    return {"points": points, "seconds": seconds, "points_per_s": points / seconds}


def edgeloop_case_c(
    runs: int, n_params: int, n_metrics: int, seed: int, repeats: int
) -> dict[str, Any]:
    backend = el.get_backend()
    now = _now_ms()
    start = time.perf_counter()
    for index in range(runs):
        name, params, metrics = search_run(seed, index, n_params, n_metrics)
        run = backend.create_run("bench", name, params=params)
        backend.log_metrics(
            run.id, [MetricPoint(key=k, value=v, step=0, timestamp=now) for k, v in metrics.items()]
        )
        backend.set_run_status(run.id, "finished")
    populate_s = time.perf_counter() - start
    console.log(f"edgeloop: (c) loaded {runs} runs in {populate_s:.1f} s")

    def search() -> list[Run]:
        page = el.search_runs(
            "bench",
            SEARCH_FILTER,
            order_by=[f"metrics.{SEARCH_ORDER_KEY} desc"],
            max_results=1000,
        )
        return page.items

    found, times = _timed_repeats(search, repeats)
    return {
        "runs": runs,
        "populate_s": populate_s,
        "search_s": statistics.median(times),
        "search_times_s": times,
        "count": len(found),
        "names": [r.name for r in found],
    }


def _timed_repeats(fn: Callable[[], list[Any]], repeats: int) -> tuple[list[Any], list[float]]:
    found = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        found = fn()
        times.append(time.perf_counter() - t0)
    return found, times


def run_edgeloop(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    el.set_backend(el.LocalBackend(load_settings(home=home)))
    try:
        out: dict[str, Any] = {"edgeloop": el.__version__}
        out["a"] = edgeloop_case_a(args.points_a)
        console.log(f"edgeloop: (a) {out['a']['points_per_s']:,.0f} points/s")
        out["b"] = edgeloop_case_b(args.points_b)
        console.log(f"edgeloop: (b) {out['b']['points_per_s']:,.0f} points/s")
        out["c"] = edgeloop_case_c(args.runs, args.params, args.metrics, args.seed, args.repeats)
        console.log(
            f"edgeloop: (c) search {out['c']['search_s'] * 1000:.1f} ms, {out['c']['count']} runs"
        )
        return out
    finally:
        backend = el.get_backend()
        el.set_backend(None)
        backend.close()


# MLflow side --------------------------------------------------------------------------------


def run_mlflow(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    ensure_peer("mlflow")
    return run_in_peer(
        "mlflow",
        PEER_SCRIPTS / "mlflow_tracking.py",
        {
            "workdir": str(workdir),
            "points_a": args.points_a if args.full else args.mlflow_points_a,
            "points_b": args.points_b,
            "runs": args.runs,
            "n_params": args.params,
            "n_metrics": args.metrics,
            "seed": args.seed,
            "repeats": args.repeats,
            "workers": args.mlflow_workers,
        },
    )


# report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    case: str
    unit: str
    edgeloop: float
    mlflow: float
    ratio: float
    target: str
    met: bool
    note: str


def compare(ours: dict[str, Any], theirs: dict[str, Any], shape: str) -> list[Row]:
    a_el, a_ml = ours["a"], theirs["a"]
    b_el, b_ml = ours["b"], theirs["b"]
    c_el, c_ml = ours["c"], theirs["c"]
    if c_el["count"] != c_ml["count"]:
        raise AssertionError(
            f"(c) the searches differ: edgeloop found {c_el['count']} runs, MLflow {c_ml['count']}"
        )
    if c_el["names"] != c_ml["names"]:
        raise AssertionError("(c) both found the same number of runs, but not the same runs")
    a_ratio = a_el["points_per_s"] / a_ml["points_per_s"]
    b_ratio = b_el["points_per_s"] / b_ml["points_per_s"]
    c_ratio = c_ml["search_s"] / c_el["search_s"]
    return [
        Row(
            "(a) log_metric, one call per point",
            "points/s",
            a_el["points_per_s"],
            a_ml["points_per_s"],
            a_ratio,
            ">= 100x and >= 50,000 points/s",
            a_ratio >= 100 and a_el["points_per_s"] >= 50_000,
            f"edgeloop {a_el['points']:,} points (log_metric calls {a_el['calls_s']:.3f} s, "
            f"end of run {a_el['end_of_run_s']:.3f} s), MLflow {a_ml['points']:,} points",
        ),
        Row(
            "(b) batch API",
            "points/s",
            b_el["points_per_s"],
            b_ml["points_per_s"],
            b_ratio,
            ">= 5x",
            b_ratio >= 5,
            f"{b_el['points']:,} points; MLflow in batches of 1000",
        ),
        Row(
            "(c) search, metric + param filter",
            "ms (median)",
            c_el["search_s"] * 1000,
            c_ml["search_s"] * 1000,
            c_ratio,
            ">= 10x",
            c_ratio >= 10,
            f"{c_el['runs']:,} runs x {shape}; {c_el['count']} found by both, same order",
        ),
    ]


def print_table(rows: list[Row], ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    table = Table(
        title=f"edgeloop {ours['edgeloop']} vs MLflow {theirs['mlflow']}, SQLite, "
        f"{os.cpu_count()} cores"
    )
    columns: list[tuple[str, JustifyMethod]] = [
        ("case", "left"),
        ("unit", "left"),
        ("edgeloop", "right"),
        ("MLflow", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("met", "center"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for r in rows:
        digits = 1 if r.unit.startswith("ms") else 0
        table.add_row(
            r.case,
            r.unit,
            f"{r.edgeloop:,.{digits}f}",
            f"{r.mlflow:,.{digits}f}",
            f"{r.ratio:,.1f}x",
            r.target,
            "[green]yes[/]" if r.met else "[red]NO[/]",
        )
    table.add_row(
        "(c) loading the runs (info)",
        "s",
        f"{ours['c']['populate_s']:.1f}",
        f"{theirs['c']['populate_s']:.1f}",
        f"{theirs['c']['populate_s'] / ours['c']['populate_s']:.1f}x",
        "-",
        "-",
    )
    notes = [f"{r.case[:3]} {r.note}" for r in rows]
    notes.append(
        f"(c) loading: edgeloop create_run + log_metrics + set_run_status per run; MLflow "
        f"create_run + log_batch + set_terminated per run, "
        f"{theirs['c']['populate_workers']} process(es)"
    )
    out = Console(width=max(Console().width, 120))
    out.print(table)
    for note in notes:
        out.print(f"  {note}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="MLflow logs all points in (a)")
    parser.add_argument("--runs", type=int, default=5000, help="runs in (c) (default 5000)")
    parser.add_argument("--points-a", type=int, default=20_000, help="(a): edgeloop's points")
    parser.add_argument(
        "--mlflow-points-a", type=int, default=2000, help="(a): MLflow's points without --full"
    )
    parser.add_argument("--points-b", type=int, default=100_000, help="(b): points")
    parser.add_argument("--params", type=int, default=20, help="(c): params per run")
    parser.add_argument("--metrics", type=int, default=20, help="(c): metrics per run")
    parser.add_argument("--repeats", type=int, default=7, help="(c): timed searches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mlflow-workers",
        type=int,
        default=1,
        help="(c): processes loading MLflow's runs (more do not help on SQLite with 2 cores)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_before = os.getloadavg()
    console.log(f"preparing peer venv {PEERS['mlflow'].requirements}")
    ensure_peer("mlflow")
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-") as tmp:
        console.log("edgeloop: (a), (b), (c)")
        ours = run_edgeloop(args, Path(tmp) / "edgeloop")
        console.log("MLflow: (a), (b), (c)")
        theirs = run_mlflow(args, Path(tmp) / "mlflow")
    rows = compare(ours, theirs, f"{args.params} params x {args.metrics} metrics")
    print_table(rows, ours, theirs)
    report = {
        "benchmark": "tracking",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": {"edgeloop": ours["edgeloop"], "mlflow": theirs["mlflow"]},
        "cases": [row.__dict__ for row in rows],
        "edgeloop": _without_names(ours),
        "mlflow": _without_names(theirs),
        "all_targets_met": all(r.met for r in rows),
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 1 if args.check and not report["all_targets_met"] else 0


def _without_names(side: dict[str, Any]) -> dict[str, Any]:
    out = dict(side)
    if "c" in out:
        out["c"] = {k: v for k, v in out["c"].items() if k != "names"}
    return out


if __name__ == "__main__":
    sys.exit(main())
