"""Evidently side of ``benchmarks/monitoring.py``; runs in ``.peers/evidently`` (see ``_peers.py``).

Reads its arguments as JSON on standard input (``reference`` and ``current``: Parquet paths,
``rows``: the expected row count of each), prints the result as one JSON line on standard
output. One case per process, so that the peak RSS is this case's alone.

What is timed, as an Evidently 0.7 user would write it: ``pd.read_parquet`` of both files,
then ``Report([DataDriftPreset()]).run(current_data=..., reference_data=...)`` and
``snapshot.dict()`` to get the results: one ``DriftedColumnsCount`` (the dataset drift) and one
``ValueDrift`` per column, each with the method Evidently chose, its threshold and the drift
score. A column drifted when its score passes the threshold the way that method's stattest
decides it (``evidently/legacy/calculations/stattests``: p-value tests ``ks`` at
``p <= threshold``, ``chisquare``/``z`` at ``p < threshold``; distances at
``score >= threshold``). The peak RSS is this process's ``VmHWM`` at the end (imports
included).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from the peer

import evidently
import numpy as np
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

# display name of each stattest -> how its score is compared with the threshold
_P_LE = {"K-S p_value"}
_P_LT = {"chi-square p_value", "Z-test p_value"}


def log(message: str) -> None:
    print(f"[evidently] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` (reset by exec), else ``ru_maxrss``."""
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


def drifted(method: str, score: float, threshold: float) -> bool:
    if method in _P_LE:
        return bool(score <= threshold)
    if method in _P_LT:
        return bool(score < threshold)
    return bool(score >= threshold)


def main() -> None:
    args = json.load(sys.stdin)
    expected = int(args["rows"])
    rss_imports = peak_rss_mb()
    cpu0 = cpu_s()

    t0 = time.perf_counter()
    reference = pd.read_parquet(args["reference"], engine="pyarrow")
    current = pd.read_parquet(args["current"], engine="pyarrow")
    t1 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    result = snapshot.dict()
    t2 = time.perf_counter()
    peak = peak_rss_mb()
    cpu = cpu_s() - cpu0

    if len(reference) != expected or len(current) != expected:
        raise SystemExit(f"read {len(reference)} / {len(current)} rows; expected {expected}")
    columns: dict[str, dict[str, Any]] = {}
    dataset: dict[str, Any] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            method, threshold = str(config["method"]), float(config["threshold"])
            score = float(metric["value"])
            columns[config["column"]] = {
                "method": method,
                "threshold": threshold,
                "score": score,
                "drifted": drifted(method, score, threshold),
            }
        elif kind == "DriftedColumnsCount":
            dataset = {
                "count": metric["value"]["count"],
                "share": metric["value"]["share"],
                "drift_share": config["drift_share"],
            }
    drifted_columns = sorted(name for name, c in columns.items() if c["drifted"])
    if dataset and int(dataset["count"]) != len(drifted_columns):
        raise SystemExit(
            f"DriftedColumnsCount says {dataset['count']}, the ValueDrift metrics "
            f"{len(drifted_columns)}"
        )
    log(
        f"read {t1 - t0:.2f} s, report {t2 - t1:.2f} s, peak RSS {peak:,.0f} MB, "
        f"drifted {drifted_columns}"
    )
    out: dict[str, Any] = {
        "tool": "evidently",
        "rows": expected,
        "columns": len(columns),
        "seconds": t2 - t0,
        "read_s": t1 - t0,
        "report_s": t2 - t1,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "rss_after_imports_mb": rss_imports,
        "drifted": drifted_columns,
        "dataset": dataset,
        "per_column": columns,
        "versions": {
            "evidently": evidently.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
