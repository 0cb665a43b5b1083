"""MLflow side of ``benchmarks/tracking.py``; runs in ``.peers/mlflow`` (see ``_peers.py``).

Reads its arguments as JSON on standard input, prints the results as one JSON line on standard
output. Everything goes to a fresh SQLite database (``sqlite:///<workdir>/mlflow.db``):

* (a) ``points_a`` calls of ``mlflow.log_metric`` in ``mlflow.start_run()`` (end of run included);
* (b) ``points_b`` points through ``MlflowClient().log_batch`` (1000 metrics per call, its cap);
* (c) ``runs`` runs with ``n_params`` params and ``n_metrics`` metrics each, loaded with one
  ``log_batch`` per run by ``workers`` processes, then ``MlflowClient().search_runs`` with the
  filter of ``_dataset.SEARCH_FILTER``: one warm-up, then the median of ``repeats``.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

# No telemetry or network from the peer: the benchmark measures the local store only.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from _dataset import SEARCH_FILTER, SEARCH_ORDER_KEY, search_run, series_value
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

MAX_BATCH_METRICS = 1000  # MLflow's own limit for log_batch


def log(message: str) -> None:
    print(f"[mlflow] {message}", file=sys.stderr, flush=True)


def _set_uri(uri: str) -> None:
    mlflow.set_tracking_uri(uri)


def case_a(points: int) -> dict[str, Any]:
    mlflow.set_experiment("bench-a-warmup")
    with mlflow.start_run():
        for i in range(50):
            mlflow.log_metric("loss", series_value(i), step=i)
    mlflow.set_experiment("bench-a")
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(points):
            mlflow.log_metric("loss", series_value(i), step=i)
    seconds = time.perf_counter() - start
    return {"points": points, "seconds": seconds, "points_per_s": points / seconds}


def case_b(points: int) -> dict[str, Any]:
    client = MlflowClient()
    warm = client.create_run(client.create_experiment("bench-b-warmup")).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(warm, metrics=[Metric("loss", series_value(i), now, i) for i in range(100)])
    run_id = client.create_run(client.create_experiment("bench-b")).info.run_id
    metrics = [Metric("loss", series_value(i), now + i, i) for i in range(points)]
    start = time.perf_counter()
    for k in range(0, points, MAX_BATCH_METRICS):
        client.log_batch(run_id, metrics=metrics[k : k + MAX_BATCH_METRICS])
    seconds = time.perf_counter() - start
    return {"points": points, "seconds": seconds, "points_per_s": points / seconds}


def _load_runs(uri: str, experiment_id: str, seed: int, lo: int, hi: int, shape: list[int]) -> int:
    _set_uri(uri)
    client = MlflowClient()
    now = int(time.time() * 1000)
    for index in range(lo, hi):
        name, params, metrics = search_run(seed, index, *shape)
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    return hi - lo


def case_c(
    uri: str, runs: int, n_params: int, n_metrics: int, seed: int, repeats: int, workers: int
) -> dict[str, Any]:
    client = MlflowClient()
    experiment_id = client.create_experiment("bench")
    start = time.perf_counter()
    shape = [n_params, n_metrics]
    if workers <= 1:
        _load_runs(uri, experiment_id, seed, 0, runs, shape)
    else:
        bounds = [runs * w // workers for w in range(workers + 1)]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            jobs = [
                pool.submit(_load_runs, uri, experiment_id, seed, lo, hi, shape)
                for lo, hi in itertools.pairwise(bounds)
            ]
            loaded = sum(job.result() for job in jobs)
        assert loaded == runs, (loaded, runs)
    populate_s = time.perf_counter() - start
    log(f"(c) loaded {runs} runs in {populate_s:.1f} s with {workers} process(es)")

    def search() -> list[Any]:
        return list(
            client.search_runs(
                [experiment_id],
                filter_string=SEARCH_FILTER,
                order_by=[f"metrics.{SEARCH_ORDER_KEY} DESC"],
                max_results=1000,
            )
        )

    found = search()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        found = search()
        times.append(time.perf_counter() - t0)
    return {
        "runs": runs,
        "populate_s": populate_s,
        "populate_workers": workers,
        "search_s": statistics.median(times),
        "search_times_s": times,
        "count": len(found),
        "names": [r.info.run_name for r in found],
    }


def main() -> None:
    args = json.load(sys.stdin)
    workdir = Path(args["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    _set_uri(uri)
    t0 = time.perf_counter()
    MlflowClient().search_experiments()  # creates and migrates the database
    result: dict[str, Any] = {"mlflow": mlflow.__version__, "setup_s": time.perf_counter() - t0}
    log(f"{mlflow.__version__} on {uri}")
    if args.get("points_a"):
        result["a"] = case_a(int(args["points_a"]))
        log(f"(a) {result['a']['points_per_s']:,.0f} points/s")
    if args.get("points_b"):
        result["b"] = case_b(int(args["points_b"]))
        log(f"(b) {result['b']['points_per_s']:,.0f} points/s")
    if args.get("runs"):
        result["c"] = case_c(
            uri,
            int(args["runs"]),
            int(args["n_params"]),
            int(args["n_metrics"]),
            int(args["seed"]),
            int(args["repeats"]),
            int(args.get("workers", 1)),
        )
        log(f"(c) search {result['c']['search_s'] * 1000:.1f} ms, {result['c']['count']} runs")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
