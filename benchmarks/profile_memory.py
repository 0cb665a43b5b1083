"""Profile memory benchmark: ``profile_parquet`` on a 10,000,000-row x 20-column Parquet file.

Target: peak RSS below 1 GB, whatever the number of rows (profiling streams batches into
mergeable sketches).

The file (generated once per run, seeded, in a temporary directory, streamed one row group at a
time so that generation is bounded too): 16 float64 columns ``f00..f15`` (normal, uniform,
log-normal, exponential, Student t, a large-magnitude one with a small spread, one with 1 %
missing values, ...) and 4 string columns ``c0..c3`` with 5, 20, 100 and 1,000 categories.

The profile runs in a subprocess: ``profile_parquet(path)`` with the defaults (a reference
profile: edges chosen from the data, two passes; ``--edges`` adds a second, one-pass run with
the reference's edges, as a device window or a production batch would be profiled). Peak RSS is
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of that subprocess, interpreter and imports
included. Linux hands a child the parent's high-water mark through fork and exec, so the child
is started from a small launcher process that never imports numpy or pyarrow, and the launcher
reads ``RUSAGE_CHILDREN``; the child also reports its own ``VmHWM`` as a cross-check.

Run::

    .venv/bin/python benchmarks/profile_memory.py                # 10,000,000 rows (~1 min)
    .venv/bin/python benchmarks/profile_memory.py --rows 500000  # a quick check
    .venv/bin/python benchmarks/profile_memory.py --check        # exit 1 if RSS >= 1 GB

Prints one JSON document (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = "_profile-child"
LAUNCHER = "_launcher"
RSS_TARGET_MB = 1024.0
CATEGORIES = (5, 20, 100, 1000)
FLOATS = 16
ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- data


def write_data(path: Path, rows: int, row_group: int, seed: int = 0) -> float:
    """Write the benchmark file one row group at a time; returns the seconds taken."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    fields = [pa.field(f"f{i:02d}", pa.float64()) for i in range(FLOATS)]
    fields += [pa.field(f"c{i}", pa.string()) for i in range(len(CATEGORIES))]
    schema = pa.schema(fields)
    dictionaries = [
        pa.array([f"{name}-{j}" for j in range(k)])
        for name, k in zip(("mode", "site", "device", "sku"), CATEGORIES, strict=True)
    ]
    t0 = time.perf_counter()
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        done = 0
        while done < rows:
            n = min(row_group, rows - done)
            cols: list[pa.Array] = [
                pa.array(rng.normal(0.0, 1.0, n)),
                pa.array(rng.uniform(-5.0, 5.0, n)),
                pa.array(rng.lognormal(0.0, 1.5, n)),
                pa.array(rng.exponential(2.0, n)),
                pa.array(rng.standard_t(3.0, n)),
                pa.array(101_325.0 + rng.normal(0.0, 30.0, n)),  # large magnitude, small spread
                pa.array(rng.gamma(2.0, 2.0, n)),
                pa.array(rng.beta(2.0, 5.0, n)),
                pa.array(np.where(rng.random(n) < 0.5, rng.normal(-3, 1, n), rng.normal(3, 1, n))),
                pa.array(rng.pareto(2.5, n)),
                pa.array(np.sin(np.arange(done, done + n) / 1000.0) + rng.normal(0, 0.1, n)),
                pa.array(rng.weibull(1.5, n)),
                pa.array(rng.chisquare(4.0, n)),
                pa.array(rng.laplace(0.0, 1.0, n)),
                pa.array(
                    np.where(rng.random(n) < 0.01, np.nan, rng.normal(10, 2, n)), from_pandas=True
                ),
                pa.array(rng.integers(0, 100, n).astype(np.float64)),
            ]
            for k, dictionary in zip(CATEGORIES, dictionaries, strict=True):
                idx = pa.array(rng.integers(0, k, n).astype(np.int32))
                cols.append(pa.DictionaryArray.from_arrays(idx, dictionary).cast(pa.string()))
            writer.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=n)
            done += n
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- child


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(args: dict[str, Any]) -> None:
    """Runs in the subprocess: profile the file, print the figures as one JSON line."""
    from edgeloop.datasets import profile_parquet

    path, rows = args["path"], int(args["rows"])
    rss_imports = _vm_hwm_mb()
    t0 = time.perf_counter()
    profile = profile_parquet(path, batch_rows=int(args["batch_rows"]))
    seconds = time.perf_counter() - t0
    if profile.rows != rows:
        raise SystemExit(f"profiled {profile.rows} rows, expected {rows}")
    out: dict[str, Any] = {
        "reference": {"seconds": seconds, "rows_per_s": rows / seconds},
        "columns": len(profile.columns),
        "profile_json_bytes": len(json.dumps(profile.to_dict(), separators=(",", ":"))),
    }
    if args.get("edges"):
        t0 = time.perf_counter()
        windowed = profile_parquet(path, batch_rows=int(args["batch_rows"]), edges=profile.edges())
        seconds = time.perf_counter() - t0
        assert windowed.edges() == profile.edges()
        out["with_edges"] = {"seconds": seconds, "rows_per_s": rows / seconds}
    out["rss_after_imports_mb"] = rss_imports
    out["vm_hwm_mb"] = _vm_hwm_mb()
    print(json.dumps(out))


def launcher(args: dict[str, Any]) -> None:
    """A small process (no numpy, no pyarrow) that runs the child and reads its peak RSS."""
    import resource

    cmd = [sys.executable, str(Path(__file__).resolve()), CHILD]
    proc = subprocess.run(cmd, input=json.dumps(args), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the profiling child failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--row-group", type=int, default=500_000)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--edges", action="store_true", help="also time a one-pass run")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the file here")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--check", action="store_true", help="exit 1 if peak RSS >= 1 GB")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edgeloop-profile-") as tmp:
        workdir = opts.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"profile-{opts.rows}.parquet"
        print(f"writing {opts.rows:,} rows x 20 columns to {path} ...", file=sys.stderr)
        gen_s = write_data(path, opts.rows, opts.row_group)
        size_mb = path.stat().st_size / 2**20
        print(f"  {gen_s:.1f} s, {size_mb:,.0f} MB; profiling ...", file=sys.stderr)
        args = {
            "path": str(path),
            "rows": opts.rows,
            "batch_rows": opts.batch_rows,
            "edges": opts.edges,
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), LAUNCHER]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, input=json.dumps(args), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(proc.returncode)
        child_result = json.loads(proc.stdout.strip().splitlines()[-1])

    import numpy as np
    import pyarrow as pa

    result = {
        "benchmark": "profile_memory",
        "rows": opts.rows,
        "columns": 20,
        "file_mb": round(size_mb, 1),
        "row_group_rows": opts.row_group,
        "batch_rows": opts.batch_rows,
        "generate_s": round(gen_s, 2),
        "subprocess_wall_s": round(wall, 2),
        **child_result,
        "rss_target_mb": RSS_TARGET_MB,
        "versions": {
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": sys.version.split()[0],
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if opts.out:
        opts.out.write_text(text + "\n", encoding="utf-8")
    ref = child_result["reference"]
    print(
        f"profile_parquet: {opts.rows:,} rows in {ref['seconds']:.1f} s = "
        f"{ref['rows_per_s']:,.0f} rows/s; peak RSS {child_result['peak_rss_mb']:,.0f} MB "
        f"(target < {RSS_TARGET_MB:,.0f} MB)",
        file=sys.stderr,
    )
    if opts.check and child_result["peak_rss_mb"] >= RSS_TARGET_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in (CHILD, LAUNCHER):
        sys.path.insert(0, str(ROOT / "src"))
        (child if sys.argv[1] == CHILD else launcher)(json.load(sys.stdin))
    else:
        main()
