"""Monitoring benchmark: a data-drift report on 1,000,000 x 20 features, edgeloop vs Evidently.

The data (generated once per run, seeded, in a temporary directory, 100,000 rows at a time):
a reference and a current Parquet file (snappy, row groups of 100,000 rows), each 1,000,000
rows x 20 float64 features ``f00..f19`` with varied distributions (normal, uniform,
log-normal, exponential, gamma, beta, Student t, a bimodal mixture, Pareto, Weibull,
chi-square, Laplace, one of large magnitude (1e6 +- 1e5), logistic, Rayleigh, Gumbel,
Poisson counts, ...). The current file draws the same distributions afresh, except for five
features with drift injected (``DRIFTED``): a mean shift of 0.5 sd (``f00``), a scale x1.5
(``f05``, ``f16``), mixture weights 30/70 -> 60/40 (``f08``) and a shift of 0.3 sd on the
large-magnitude feature (``f13``). Both tools should flag exactly those five.

Each case runs in a FRESH process, one at a time, so that its peak RSS is its own (``VmHWM``
from ``/proc/self/status`` at the end, interpreter and imports included). The clock covers
reading the data for both tools (it is interleaved with sketching on edgeloop's side):

* edgeloop (``.venv``): the reference profile, as ``el.data.add`` builds it for a dataset
  version (``edgeloop.datasets.profile_parquet``: two streaming passes, 20 equal-mass bins per
  feature, FeatureSketch = summary + histogram + quantile sketch); the current window sketched
  with the reference's edges in one streaming pass (as a device or a server would keep it);
  then ``feature_drift`` per feature with the default test (more than 1,000 reference rows:
  normalised Wasserstein, threshold 0.1) and ``dataset_drift``.
* Evidently 0.7.23 (``.peers/evidently``, pinned, built on first use by ``_peers.py``):
  ``pd.read_parquet`` of both files, ``Report([DataDriftPreset()]).run(...)`` and
  ``snapshot.dict()`` (see ``peers/evidently_drift.py``); its default test on these columns is
  the same normalised Wasserstein distance, on the raw samples.

Then, in this process, for information: ``FeatureSketch`` update throughput (samples/s for one
feature, vectorised ``update`` on batches and ``add`` one sample at a time) and the sketches'
serialised size per feature (``len(to_bytes())``, from the reference profile).

Targets: edgeloop >= 20x faster than Evidently, at most half its peak RSS, and the same
drifted set (equal to the injected one).

Run::

    .venv/bin/python benchmarks/monitoring.py                  # 1,000,000 rows, ~2-3 minutes
    .venv/bin/python benchmarks/monitoring.py --rows 100000    # a quick check
    .venv/bin/python benchmarks/monitoring.py --check          # exit 1 if a target is missed

Prints a table and writes ``benchmarks/results/monitoring.json``. Evidently takes ~100 s per
run at full size, so it runs ``--evidently-repeats`` times (default 1); edgeloop runs
``--repeats`` times (default 3); medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _peers import PEER_SCRIPTS, PEERS, ensure_peer, run_in_peer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "monitoring.json"
CHILD = "_edgeloop-case"
CHUNK_ROWS = 100_000
FEATURES = tuple(f"f{i:02d}" for i in range(20))
DRIFTED = ("f00", "f05", "f08", "f13", "f16")
SPEED_TARGET = 20.0
MEMORY_TARGET = 0.5  # edgeloop peak RSS / Evidently's


def _columns(rng: np.random.Generator, n: int, drift: bool) -> dict[str, np.ndarray]:
    """One chunk of every feature; ``drift``: the current side's five drifted features."""
    bimodal_left = 0.6 if drift else 0.3
    scale = 1.5 if drift else 1.0
    cols = {
        "f00": rng.normal(0.5 if drift else 0.0, 1.0, n),
        "f01": rng.normal(100.0, 15.0, n),
        "f02": rng.uniform(-1.0, 1.0, n),
        "f03": rng.lognormal(0.0, 1.0, n),
        "f04": rng.exponential(2.0, n),
        "f05": rng.gamma(2.0, 3.0 * scale, n),
        "f06": rng.beta(2.0, 5.0, n),
        "f07": rng.standard_t(5.0, n),
        "f08": np.where(
            rng.random(n) < bimodal_left, rng.normal(-2.0, 0.5, n), rng.normal(3.0, 1.0, n)
        ),
        "f09": (rng.pareto(3.0, n) + 1.0) * 10.0,
        "f10": rng.weibull(1.5, n),
        "f11": rng.chisquare(4.0, n),
        "f12": rng.laplace(0.0, 2.0, n),
        "f13": rng.normal(1e6 + (0.3e5 if drift else 0.0), 1e5, n),
        "f14": rng.normal(5.0, 2.0, n),
        "f15": rng.logistic(0.0, 1.0, n),
        "f16": rng.uniform(0.0, 1000.0 * scale, n),
        "f17": rng.rayleigh(2.0, n),
        "f18": rng.gumbel(0.0, 1.0, n),
        "f19": rng.poisson(20.0, n).astype(np.float64),
    }
    assert tuple(cols) == FEATURES
    return cols


@dataclass(frozen=True)
class DataFiles:
    rows: int
    reference: Path
    current: Path
    reference_mb: float
    current_mb: float
    seconds: float


def generate(directory: Path, rows: int, seed: int) -> DataFiles:
    """Write ``reference.parquet`` and ``current.parquet``, one chunk in memory at a time."""
    start = time.perf_counter()
    paths = {"reference": directory / "reference.parquet", "current": directory / "current.parquet"}
    for side, (name, path) in enumerate(paths.items()):
        writer: pq.ParquetWriter | None = None
        for index, lo in enumerate(range(0, rows, CHUNK_ROWS)):
            n = min(CHUNK_ROWS, rows - lo)
            rng = np.random.default_rng([seed, side, index])
            table = pa.table(_columns(rng, n, drift=name == "current"))
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression="snappy")
            writer.write_table(table)
        assert writer is not None
        writer.close()
    return DataFiles(
        rows=rows,
        reference=paths["reference"],
        current=paths["current"],
        reference_mb=paths["reference"].stat().st_size / 2**20,
        current_mb=paths["current"].stat().st_size / 2**20,
        seconds=time.perf_counter() - start,
    )


# edgeloop side: one case per fresh process ---------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` (reset by exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def edgeloop_child(args: dict[str, Any]) -> dict[str, Any]:
    """Reference profile + current sketches + per-feature drift + dataset drift, timed."""
    import edgeloop as el
    from edgeloop.datasets import profile_parquet
    from edgeloop.monitoring.drift import dataset_drift, feature_drift

    rss_imports = _peak_rss_mb()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    reference = profile_parquet(args["reference"])
    t1 = time.perf_counter()
    current = profile_parquet(args["current"], edges=reference.edges())
    t2 = time.perf_counter()
    results = {}
    for name, column in reference.columns.items():
        ref_sketch, cur_sketch = column.feature, current.columns[name].feature
        assert ref_sketch is not None and cur_sketch is not None
        results[name] = feature_drift(ref_sketch, cur_sketch)
    dataset = dataset_drift(results)
    t3 = time.perf_counter()
    peak = _peak_rss_mb()
    cpu = _cpu_s() - cpu0
    if reference.rows != args["rows"] or current.rows != args["rows"]:
        raise SystemExit(f"profiled {reference.rows} / {current.rows} rows, not {args['rows']}")
    sizes = {
        name: len(col.feature.to_bytes())
        for name, col in reference.columns.items()
        if col.feature is not None
    }
    return {
        "tool": "edgeloop",
        "rows": args["rows"],
        "seconds": t3 - t0,
        "reference_profile_s": t1 - t0,
        "current_sketch_s": t2 - t1,
        "drift_s": t3 - t2,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "rss_after_imports_mb": rss_imports,
        "drifted": sorted(dataset.drifted_features),
        "dataset": {"share": dataset.share, "drifted": dataset.drifted},
        "per_column": {name: r.to_dict() for name, r in results.items()},
        "sketch_bytes": sizes,
        "versions": {
            "edgeloop": el.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
    }


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.strip().startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def run_edgeloop(data: DataFiles, timeout: float) -> dict[str, Any]:
    args = {"reference": str(data.reference), "current": str(data.current), "rows": data.rows}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), CHILD],
        input=json.dumps(args),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=data.reference.parent,
        timeout=timeout,
        check=False,
    )
    result = _last_json(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise RuntimeError(f"edgeloop case exited with {proc.returncode}:\n{tail}")
    return result


def run_evidently(data: DataFiles, timeout: float) -> dict[str, Any]:
    args = {"reference": str(data.reference), "current": str(data.current), "rows": data.rows}
    return run_in_peer("evidently", PEER_SCRIPTS / "evidently_drift.py", args, timeout=timeout)


def _median_case(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeat with the median time, with the median seconds and peak RSS; all kept."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["seconds"] = statistics.median(r["seconds"] for r in results)
    chosen["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in results)
    chosen["repeats"] = len(results)
    chosen["repeats_seconds"] = [r["seconds"] for r in results]
    chosen["repeats_peak_rss_mb"] = [r["peak_rss_mb"] for r in results]
    chosen["drifted_every_repeat"] = all(r["drifted"] == results[0]["drifted"] for r in results)
    return chosen


# sketch throughput and size -------------------------------------------------------------------


def sketch_throughput(seed: int, samples: int = 2_000_000) -> dict[str, Any]:
    """Samples/s of one FeatureSketch (20 equal-mass bins, alpha 0.01) fed N(0, 1) values."""
    from edgeloop.monitoring.sketch import FeatureSketch, reference_edges

    rng = np.random.default_rng([seed, 99])
    x = rng.normal(0.0, 1.0, samples)
    edges = reference_edges(x[:100_000], 20)
    out: dict[str, Any] = {"samples": samples, "batched": {}}
    for batch in (1_000, 10_000, 100_000):
        sketch = FeatureSketch(edges)
        t = time.perf_counter()
        for lo in range(0, samples, batch):
            sketch.update(x[lo : lo + batch])
        out["batched"][str(batch)] = samples / (time.perf_counter() - t)
    one = x[:200_000].tolist()
    sketch = FeatureSketch(edges)
    t = time.perf_counter()
    for v in one:
        sketch.add(v)
    out["one_at_a_time"] = len(one) / (time.perf_counter() - t)
    return out


# report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    edgeloop_s: float
    evidently_s: float
    speed_ratio: float
    edgeloop_peak_rss_mb: float
    evidently_peak_rss_mb: float
    memory_ratio: float  # edgeloop / Evidently: <= 0.5 meets the target
    edgeloop_drifted: list[str]
    evidently_drifted: list[str]
    injected: list[str]
    same_drifted_set: bool
    met: bool


def summarise(ours: dict[str, Any], theirs: dict[str, Any]) -> Summary:
    speed = theirs["seconds"] / ours["seconds"]
    memory = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
    same = ours["drifted"] == theirs["drifted"] == sorted(DRIFTED)
    return Summary(
        edgeloop_s=ours["seconds"],
        evidently_s=theirs["seconds"],
        speed_ratio=speed,
        edgeloop_peak_rss_mb=ours["peak_rss_mb"],
        evidently_peak_rss_mb=theirs["peak_rss_mb"],
        memory_ratio=memory,
        edgeloop_drifted=ours["drifted"],
        evidently_drifted=theirs["drifted"],
        injected=sorted(DRIFTED),
        same_drifted_set=same,
        met=speed >= SPEED_TARGET and memory <= MEMORY_TARGET and same,
    )


def print_report(
    s: Summary, ours: dict[str, Any], theirs: dict[str, Any], data: DataFiles, tp: dict[str, Any]
) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(width=max(Console().width, 120))
    yes_no = {True: "[green]yes[/]", False: "[red]NO[/]"}
    table = Table(
        title=f"data drift, {data.rows:,} reference + {data.rows:,} current rows x "
        f"{len(FEATURES)} features: edgeloop {ours['versions']['edgeloop']} vs Evidently "
        f"{theirs['versions']['evidently']} (median of {ours['repeats']} / "
        f"{theirs['repeats']} runs, {os.cpu_count()} cores)"
    )
    for name, justify in (("", "left"), ("edgeloop", "right"), ("Evidently", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("ratio / target", justify="right")
    table.add_row(
        "wall time, s (read + profile/report)",
        f"{s.edgeloop_s:.2f}",
        f"{s.evidently_s:.1f}",
        f"{s.speed_ratio:.0f}x faster (>= {SPEED_TARGET:g}x) "
        + yes_no[s.speed_ratio >= SPEED_TARGET],
    )
    table.add_row(
        "peak RSS, MB",
        f"{s.edgeloop_peak_rss_mb:,.0f}",
        f"{s.evidently_peak_rss_mb:,.0f}",
        f"{s.memory_ratio:.2f} (<= {MEMORY_TARGET:g}) {yes_no[s.memory_ratio <= MEMORY_TARGET]}",
    )
    table.add_row(
        "drifted features",
        ", ".join(s.edgeloop_drifted),
        ", ".join(s.evidently_drifted),
        f"same as injected: {yes_no[s.same_drifted_set]}",
    )
    out.print(table)

    per = Table(title="per feature: normalised Wasserstein (Evidently exact, edgeloop sketch)")
    for name in ("feature", "injected", "Evidently", "edgeloop", "|diff|", "edgeloop bound"):
        per.add_column(name, justify="left" if name == "feature" else "right")
    for name in FEATURES:
        e, o = theirs["per_column"][name], ours["per_column"][name]
        bound = o["error_bound"]
        per.add_row(
            name,
            "drift" if name in DRIFTED else "",
            f"{e['score']:.4f}{' *' if e['drifted'] else ''}",
            f"{o['statistic']:.4f}{' *' if o['drifted'] else ''}",
            f"{abs(e['score'] - o['statistic']):.1e}",
            "-" if bound is None else f"{float(bound):.3f}",
        )
    out.print(per)

    sizes = sorted(ours["sketch_bytes"].values())
    notes = [
        f"targets: >= {SPEED_TARGET:g}x Evidently's speed, <= {MEMORY_TARGET:g}x its peak RSS, "
        "the same drifted set as Evidently and as injected; all met: " + ("yes" if s.met else "NO"),
        f"data: 2 Parquet files of {data.reference_mb:,.0f} MB (snappy), generated in "
        f"{data.seconds:.1f} s; both clocks include reading them",
        f"edgeloop: reference profile {ours['reference_profile_s']:.2f} s + current sketches "
        f"{ours['current_sketch_s']:.2f} s + drift {ours['drift_s'] * 1e3:.0f} ms (cpu "
        f"{ours['cpu_s']:.1f} s; imports {ours['rss_after_imports_mb']:.0f} MB RSS)",
        f"Evidently: read {theirs['read_s']:.2f} s + Report.run/dict {theirs['report_s']:.1f} s "
        f"(cpu {theirs['cpu_s']:.1f} s; imports {theirs['rss_after_imports_mb']:.0f} MB RSS); "
        f"method {next(iter(theirs['per_column'].values()))['method']!r}",
        "sketch update throughput, one feature: "
        + ", ".join(
            f"batches of {int(b):,}: {v / 1e6:.1f} M samples/s" for b, v in tp["batched"].items()
        )
        + f"; add() one at a time: {tp['one_at_a_time'] / 1e6:.2f} M samples/s",
        f"sketch size per feature (FeatureSketch.to_bytes of the reference): min {sizes[0]:,} B, "
        f"median {statistics.median(sizes):,.0f} B, max {sizes[-1]:,} B",
    ]
    for note in notes:
        out.print(f"  {note}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side (1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="edgeloop runs (median)")
    parser.add_argument("--evidently-repeats", type=int, default=1, help="Evidently runs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1 or args.evidently_repeats < 1:
        parser.error("--rows, --repeats and --evidently-repeats must be positive")

    started = time.perf_counter()
    load_before = os.getloadavg()
    console.log(f"preparing peer venv {PEERS['evidently'].requirements}")
    ensure_peer("evidently")
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-monitoring-") as tmp:
        console.log(f"generating 2 x {args.rows:,} rows x {len(FEATURES)} features")
        data = generate(Path(tmp), args.rows, args.seed)
        el_runs: list[dict[str, Any]] = []
        ev_runs: list[dict[str, Any]] = []
        for rep in range(max(args.repeats, args.evidently_repeats)):
            if rep < args.repeats:
                el_runs.append(run_edgeloop(data, args.timeout))
                r = el_runs[-1]
                console.log(
                    f"edgeloop: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, "
                    f"drifted {r['drifted']}"
                )
            if rep < args.evidently_repeats:
                console.log("Evidently: running (about 100 s per 1,000,000 rows)")
                ev_runs.append(run_evidently(data, args.timeout))
                r = ev_runs[-1]
                console.log(
                    f"Evidently: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, "
                    f"drifted {r['drifted']}"
                )
    ours, theirs = _median_case(el_runs), _median_case(ev_runs)
    console.log("measuring sketch update throughput")
    tp = sketch_throughput(args.seed)
    summary = summarise(ours, theirs)
    print_report(summary, ours, theirs, data, tp)
    report = {
        "benchmark": "monitoring",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(data).items()},
        "injected_drift": sorted(DRIFTED),
        "targets": {
            "speed_ratio_min": SPEED_TARGET,
            "memory_ratio_max": MEMORY_TARGET,
            "same_drifted_set": True,
        },
        "summary": asdict(summary),
        "sketch_throughput": tp,
        "edgeloop": ours,
        "evidently": theirs,
        "all_targets_met": summary.met,
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 1 if args.check and not summary.met else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        print(json.dumps(edgeloop_child(json.load(sys.stdin))))
        sys.exit(0)
    sys.exit(main())
