"""Data benchmark: edgeloop adds 1,000,000 rows x 20 columns, whylogs profiles the same rows.

The data (generated once per run, seeded, in a temporary directory, a bounded chunk at a
time): 16 float64 columns ``f00..f15`` with varied distributions (normal, uniform, log-normal,
exponential, gamma, beta, Student t, a bimodal mixture, Pareto, a seasonal signal, Weibull,
chi-square, Laplace, one with 1 % missing values, one of large magnitude), 3 low-cardinality
string columns (``site``, ``device``, ``mode``) and a string ``label`` (3 imbalanced classes).
The same rows are written as CSV (pyarrow's writer: a header, text in double quotes) and as
Parquet (snappy, row groups of 100,000 rows); both read back to identical tables.

Each case runs in a FRESH process, one at a time, so that its peak RSS is its own: the
process's high-water mark ``VmHWM`` from ``/proc/self/status`` at the end, interpreter and
imports included. Not ``ru_maxrss``: Linux carries that over from the parent through fork and
exec, so every child would report at least the parent's peak (the data generator's):

* edgeloop (``.venv``): in a fresh workspace (``EDGELOOP_HOME`` = a new temporary directory),
  ``el.data.add("bench", [path], label_from="column:label")``, which reads and normalises the
  file, infers a schema, validates the rows against it, profiles them and stores the version.
  The clock covers that whole call. Afterwards, for information only (after the peak RSS is
  taken), the file is read again and ``profile_table(table, label="label")`` is timed alone.
* whylogs (``.peers/whylogs``, pinned, built on first use by ``_peers.py``):
  ``pd.read_csv(path)`` (pandas' default C engine; ``--whylogs-csv-engine pyarrow`` is about
  as fast overall and peaks higher) / ``pd.read_parquet(path, engine="pyarrow")`` then
  ``why.log(pandas=df).view()``; see ``peers/whylogs_profile.py``. The clock covers reading and
  profiling. whylogs neither validates nor stores, so edgeloop does strictly more work.

Each case runs ``--repeats`` times (default 3; edgeloop and whylogs alternate, never at the
same time); the medians of the wall time and of the peak RSS are reported (the peak RSS of one
tool varies by up to ~100 MB from one run to the next: allocators and threads).

Target, per format: edgeloop >= 2x whylogs' rows/s AND edgeloop's peak RSS <= whylogs'.

Run::

    .venv/bin/python benchmarks/data.py                 # 1,000,000 rows, ~3 minutes
    .venv/bin/python benchmarks/data.py --rows 100000 --repeats 1   # a quick check
    .venv/bin/python benchmarks/data.py --check         # exit 1 if a target is missed

Prints a table and writes ``benchmarks/results/data.json``. Nothing is cached between runs
except the peer venv.
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

# _peers and peers/ sit next to this file (already on the path when it is run as a script).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from _peers import PEER_SCRIPTS, PEERS, ensure_peer, run_in_peer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "data.json"
CHILD = "_edgeloop-case"  # argv[1] of this script when it runs one edgeloop case
FORMATS = ("csv", "parquet")
CHUNK_ROWS = 100_000
SPEED_TARGET = 2.0

SITES = ("north", "south", "east", "west")
DEVICES = tuple(f"dev-{i:02d}" for i in range(12))
DEVICE_P = np.array([1 / (i + 1) for i in range(12)]) / sum(1 / (i + 1) for i in range(12))
MODES = ("idle", "run", "boost")
LABELS = ("normal", "warning", "fault")


def make_chunk(seed: int, index: int, start: int, n: int) -> pa.Table:
    """Rows ``start .. start + n`` of the data set: seeded per chunk, so chunks are independent."""
    rng = np.random.default_rng([seed, index])
    t = np.arange(start, start + n, dtype=np.float64)
    f14 = rng.normal(5.0, 2.0, n)
    cols: dict[str, Any] = {
        "f00": rng.normal(0.0, 1.0, n),
        "f01": rng.normal(100.0, 15.0, n),
        "f02": rng.uniform(-1.0, 1.0, n),
        "f03": rng.lognormal(0.0, 1.0, n),
        "f04": rng.exponential(2.0, n),
        "f05": rng.gamma(2.0, 3.0, n),
        "f06": rng.beta(2.0, 5.0, n),
        "f07": rng.standard_t(3.0, n),
        "f08": np.where(rng.random(n) < 0.3, rng.normal(-2.0, 0.5, n), rng.normal(3.0, 1.0, n)),
        "f09": (rng.pareto(3.0, n) + 1.0) * 10.0,
        "f10": 20.0 + 5.0 * np.sin(t * 2 * np.pi / 86_400) + rng.normal(0.0, 0.5, n),
        "f11": rng.weibull(1.5, n),
        "f12": rng.chisquare(4.0, n),
        "f13": rng.laplace(0.0, 2.0, n),
        "f14": None,
        "f15": rng.normal(1e6, 1e5, n),
    }
    arrays: dict[str, pa.Array] = {}
    for name, values in cols.items():
        if name == "f14":
            arrays[name] = pa.array(np.round(f14, 6), mask=rng.random(n) < 0.01)
        else:
            arrays[name] = pa.array(np.round(values, 2 if name == "f15" else 6))
    arrays["site"] = pa.array(np.array(SITES)[rng.integers(0, len(SITES), n)])
    arrays["device"] = pa.array(np.array(DEVICES)[rng.choice(len(DEVICES), n, p=DEVICE_P)])
    arrays["mode"] = pa.array(np.array(MODES)[rng.choice(len(MODES), n, p=[0.2, 0.7, 0.1])])
    # The label leans on f00 and f07, so that it is not independent of the features.
    score = cols["f00"] + 0.3 * np.clip(cols["f07"], -5, 5) + rng.normal(0.0, 0.5, n)
    label = np.where(score > 2.2, 2, np.where(score > 1.2, 1, 0))
    arrays["label"] = pa.array(np.array(LABELS)[label])
    return pa.table(arrays)


@dataclass(frozen=True)
class DataFiles:
    rows: int
    columns: int
    csv: Path
    parquet: Path
    csv_mb: float
    parquet_mb: float
    seconds: float


def generate(directory: Path, rows: int, seed: int) -> DataFiles:
    """Write the rows as ``data.csv`` and ``data.parquet``, one chunk in memory at a time."""
    start = time.perf_counter()
    csv_path, parquet_path = directory / "data.csv", directory / "data.parquet"
    schema = make_chunk(seed, 0, 0, 1).schema
    with (
        pacsv.CSVWriter(str(csv_path), schema) as csv_out,
        pq.ParquetWriter(str(parquet_path), schema, compression="snappy") as pq_out,
    ):
        for index, lo in enumerate(range(0, rows, CHUNK_ROWS)):
            chunk = make_chunk(seed, index, lo, min(CHUNK_ROWS, rows - lo))
            csv_out.write_table(chunk)
            pq_out.write_table(chunk)
    return DataFiles(
        rows=rows,
        columns=len(schema),
        csv=csv_path,
        parquet=parquet_path,
        csv_mb=csv_path.stat().st_size / 2**20,
        parquet_mb=parquet_path.stat().st_size / 2**20,
        seconds=time.perf_counter() - start,
    )


# edgeloop side: one case per fresh process ---------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` (reset by exec), else ``ru_maxrss``.

    Not ``ru_maxrss`` first: Linux carries it over from the parent through fork and exec, so a
    child of a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def edgeloop_child(args: dict[str, Any]) -> dict[str, Any]:
    """One case in this (fresh) process: ``el.data.add`` of one file, timed; then, for
    information, ``profile_table`` alone on the file read again."""
    import edgeloop as el
    import edgeloop.data
    import edgeloop.datasets

    path, expected = Path(args["path"]), int(args["rows"])
    rss_imports = _peak_rss_mb()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    result = edgeloop.data.add("bench", [path], label_from="column:label")
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()  # before the information-only steps below
    cpu = _cpu_s() - cpu0
    version = result.version
    if not result.created or version.rows != expected or version.status != "ready":
        raise SystemExit(
            f"edgeloop stored {version.rows} rows as {version.status!r} "
            f"(created={result.created}); expected {expected} rows, 'ready'"
        )

    # Information only: profiling alone on the already-read table (the read is not timed).
    read = edgeloop.datasets.read_paths([path])
    t1 = time.perf_counter()
    edgeloop.datasets.profile_table(read.table, label="label")
    profile_s = time.perf_counter() - t1
    return {
        "tool": "edgeloop",
        "format": args["format"],
        "rows": expected,
        "columns": read.table.num_columns,
        "seconds": seconds,
        "rows_per_s": expected / seconds,
        "profile_only_s": profile_s,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "rss_after_imports_mb": rss_imports,
        "stored_mb": version.size / 2**20,
        "validation_ok": bool(version.validation.get("ok", True)),
        "versions": {
            "edgeloop": el.__version__,
            "pandas": _version("pandas"),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
    }


def _version(module: str) -> str | None:
    try:
        return str(__import__(module).__version__)
    except ImportError:
        return None


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.strip().startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def run_edgeloop(path: Path, fmt: str, rows: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """Run one edgeloop case in a fresh ``.venv`` process with its own workspace."""
    home = workdir / "home"
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["EDGELOOP_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), CHILD],
        input=json.dumps({"path": str(path), "format": fmt, "rows": rows}),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=workdir,  # no edgeloop.toml here
        timeout=timeout,
        check=False,
    )
    result = _last_json(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise RuntimeError(f"edgeloop {fmt} case exited with {proc.returncode}:\n{tail}")
    return result


def run_whylogs(path: Path, fmt: str, rows: int, csv_engine: str, timeout: float) -> dict[str, Any]:
    args = {"path": str(path), "format": fmt, "rows": rows, "csv_engine": csv_engine}
    return run_in_peer("whylogs", PEER_SCRIPTS / "whylogs_profile.py", args, timeout=timeout)


def _median_case(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over the repeats: the repeat with the median time, its rows/s taken from the
    median seconds and its peak RSS replaced by the median peak RSS (both vary from run to run:
    allocators and threads do not behave the same twice); every repeat's figures kept."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["seconds"] = statistics.median(r["seconds"] for r in results)
    chosen["rows_per_s"] = chosen["rows"] / chosen["seconds"]
    chosen["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in results)
    chosen["repeats"] = len(results)
    chosen["repeats_seconds"] = [r["seconds"] for r in results]
    chosen["repeats_peak_rss_mb"] = [r["peak_rss_mb"] for r in results]
    return chosen


# report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    case: str
    edgeloop_rows_per_s: float
    whylogs_rows_per_s: float
    speed_ratio: float
    edgeloop_peak_rss_mb: float
    whylogs_peak_rss_mb: float
    memory_ratio: float  # edgeloop / whylogs: <= 1 meets the target
    met: bool


def compare(fmt: str, ours: dict[str, Any], theirs: dict[str, Any]) -> Row:
    speed = ours["rows_per_s"] / theirs["rows_per_s"]
    memory = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
    return Row(
        case=fmt.upper() if fmt == "csv" else fmt.capitalize(),
        edgeloop_rows_per_s=ours["rows_per_s"],
        whylogs_rows_per_s=theirs["rows_per_s"],
        speed_ratio=speed,
        edgeloop_peak_rss_mb=ours["peak_rss_mb"],
        whylogs_peak_rss_mb=theirs["peak_rss_mb"],
        memory_ratio=memory,
        met=speed >= SPEED_TARGET and memory <= 1.0,
    )


def print_table(
    rows: list[Row], ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]], data: Any
) -> None:
    from rich.console import Console, JustifyMethod
    from rich.table import Table

    some_el, some_wl = next(iter(ours.values())), next(iter(theirs.values()))
    table = Table(
        title=f"edgeloop {some_el['versions']['edgeloop']} add vs whylogs "
        f"{some_wl['versions']['whylogs']} profile, {data.rows:,} rows x {data.columns} columns, "
        f"median of {some_el['repeats']}, {os.cpu_count()} cores"
    )
    columns: list[tuple[str, JustifyMethod]] = [
        ("case", "left"),
        ("edgeloop rows/s", "right"),
        ("whylogs rows/s", "right"),
        ("ratio", "right"),
        ("edgeloop peak RSS MB", "right"),
        ("whylogs peak RSS MB", "right"),
        ("memory ratio", "right"),
        ("target met", "center"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for r in rows:
        table.add_row(
            r.case,
            f"{r.edgeloop_rows_per_s:,.0f}",
            f"{r.whylogs_rows_per_s:,.0f}",
            f"{r.speed_ratio:.2f}x",
            f"{r.edgeloop_peak_rss_mb:,.0f}",
            f"{r.whylogs_peak_rss_mb:,.0f}",
            f"{r.memory_ratio:.2f}",
            "[green]yes[/]" if r.met else "[red]NO[/]",
        )
    out = Console(width=max(Console().width, 120))
    out.print(table)
    notes = [
        f"target: >= {SPEED_TARGET:g}x whylogs' rows/s AND edgeloop peak RSS <= whylogs' "
        "(memory ratio = edgeloop / whylogs <= 1)",
        f"data: CSV {data.csv_mb:,.0f} MB, Parquet {data.parquet_mb:,.0f} MB (snappy), "
        f"generated in {data.seconds:.1f} s",
        "edgeloop: el.data.add = read + normalise + infer schema + validate + profile + store "
        "(canonical Parquet, SQLite); whylogs: pandas read + why.log().view(), no validation, "
        "no storage",
    ]
    for fmt in ours:
        el, wl = ours[fmt], theirs[fmt]
        notes.append(
            f"{fmt}: edgeloop {el['seconds']:.2f} s (cpu {el['cpu_s']:.1f} s; profile_table alone "
            f"{el['profile_only_s']:.2f} s; imports {el['rss_after_imports_mb']:.0f} MB RSS); "
            f"whylogs {wl['seconds']:.2f} s = read {wl['read_s']:.2f} + profile "
            f"{wl['profile_s']:.2f} (cpu {wl['cpu_s']:.1f} s; imports "
            f"{wl['rss_after_imports_mb']:.0f} MB RSS)"
        )
    for note in notes:
        out.print(f"  {note}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fresh processes per case and tool; medians are reported (default 3)",
    )
    parser.add_argument(
        "--whylogs-csv-engine",
        choices=("c", "pyarrow"),
        default="c",
        help="pandas' CSV engine on the whylogs side (default: pandas' default, c)",
    )
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be positive")

    started = time.perf_counter()
    load_before = os.getloadavg()
    console.log(f"preparing peer venv {PEERS['whylogs'].requirements}")
    ensure_peer("whylogs")
    ours: dict[str, dict[str, Any]] = {}
    theirs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-data-") as tmp:
        root = Path(tmp)
        console.log(f"generating {args.rows:,} rows (seed {args.seed})")
        data = generate(root, args.rows, args.seed)
        console.log(
            f"CSV {data.csv_mb:,.0f} MB, Parquet {data.parquet_mb:,.0f} MB in {data.seconds:.1f} s"
        )
        for fmt in args.formats:
            path = data.csv if fmt == "csv" else data.parquet
            el_runs, wl_runs = [], []
            for rep in range(args.repeats):
                el_res = run_edgeloop(path, fmt, args.rows, root / f"el-{fmt}-{rep}", args.timeout)
                console.log(
                    f"edgeloop {fmt}: {el_res['rows_per_s']:,.0f} rows/s, "
                    f"peak RSS {el_res['peak_rss_mb']:,.0f} MB"
                )
                wl_res = run_whylogs(path, fmt, args.rows, args.whylogs_csv_engine, args.timeout)
                console.log(
                    f"whylogs {fmt}: {wl_res['rows_per_s']:,.0f} rows/s, "
                    f"peak RSS {wl_res['peak_rss_mb']:,.0f} MB"
                )
                el_runs.append(el_res)
                wl_runs.append(wl_res)
            ours[fmt], theirs[fmt] = _median_case(el_runs), _median_case(wl_runs)
    rows = [compare(fmt, ours[fmt], theirs[fmt]) for fmt in args.formats]
    print_table(rows, ours, theirs, data)
    report = {
        "benchmark": "data",
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
        "versions": {
            "edgeloop": next(iter(ours.values()))["versions"],
            "whylogs": next(iter(theirs.values()))["versions"],
        },
        "targets": {"speed_ratio_min": SPEED_TARGET, "memory_ratio_max": 1.0},
        "cases": [asdict(row) for row in rows],
        "edgeloop": ours,
        "whylogs": theirs,
        "all_targets_met": all(r.met for r in rows),
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 1 if args.check and not report["all_targets_met"] else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        print(json.dumps(edgeloop_child(json.load(sys.stdin))))
        sys.exit(0)
    sys.exit(main())
