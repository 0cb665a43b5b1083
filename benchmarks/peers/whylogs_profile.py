"""whylogs side of ``benchmarks/data.py``; runs in ``.peers/whylogs`` (see ``_peers.py``).

Reads its arguments as JSON on standard input (``path``, ``format``: ``csv`` or ``parquet``,
``rows``: the expected row count, ``csv_engine``: pandas' CSV engine), prints the result as one
JSON line on standard output. One case per process, so that the peak RSS is this case's alone.

What is timed, as a whylogs user would write it: ``pd.read_csv(path)`` (or
``pd.read_parquet(path, engine="pyarrow")``), then ``why.log(pandas=df).view()``, which
materialises the profile (counts, types, KLL distribution, HyperLogLog cardinality and frequent
items per column). whylogs neither validates nor stores anything. The peak RSS is this
process's ``VmHWM`` at the end (its high-water mark, imports included; see ``peak_rss_mb``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

# No usage statistics or network from the peer: the benchmark measures local profiling only.
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

import numpy as np
import pandas as pd
import pyarrow as pa
import whylogs as why


def log(message: str) -> None:
    print(f"[whylogs] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
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


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    args = json.load(sys.stdin)
    path, fmt, expected = str(args["path"]), str(args["format"]), int(args["rows"])
    engine = str(args.get("csv_engine") or "c")
    rss_imports = peak_rss_mb()
    cpu0 = cpu_s()

    t0 = time.perf_counter()
    if fmt == "csv":
        df = pd.read_csv(path, engine=engine)  # type: ignore[call-overload]
    elif fmt == "parquet":
        df = pd.read_parquet(path, engine="pyarrow")
    else:
        raise SystemExit(f"unknown format {fmt!r}")
    t1 = time.perf_counter()
    view = why.log(pandas=df).view()
    t2 = time.perf_counter()
    peak = peak_rss_mb()
    cpu = cpu_s() - cpu0

    counted = view.get_column("label").get_metric("counts").n.value
    if len(df) != expected or counted != expected:
        raise SystemExit(f"read {len(df)} rows, profiled {counted}; expected {expected}")
    seconds = t2 - t0
    log(f"{fmt}: read {t1 - t0:.2f} s, profile {t2 - t1:.2f} s, peak RSS {peak:,.0f} MB")
    result: dict[str, Any] = {
        "tool": "whylogs",
        "format": fmt,
        "rows": expected,
        "columns": len(view.get_columns()),
        "seconds": seconds,
        "rows_per_s": expected / seconds,
        "read_s": t1 - t0,
        "profile_s": t2 - t1,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "rss_after_imports_mb": rss_imports,
        "csv_engine": engine if fmt == "csv" else None,
        "versions": {
            "whylogs": why.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": sys.version.split()[0],
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
