"""emlearn side of ``benchmarks/edge.py``; runs in ``.peers/emlearn`` (see ``_peers.py``).

Reads its arguments as JSON on standard input, prints the result as one JSON line on standard
output. ``workdir`` is a scratch directory: emlearn's Python wrapper compiles its C into
``tmp/`` under the current directory, so the script changes to ``workdir/emlearn`` first.
``conversions`` is a list of ``{"key", "model", "convert", "name", "file", "X"}``:

* ``model``: a joblib pickle that ``edge.py`` wrote in ``.venv`` (the same scikit-learn and
  numpy pins here, so it loads unchanged). A ``Pipeline`` is reduced to its final estimator:
  emlearn converts the MLP only, and ``edge.py`` puts the ``StandardScaler`` in front of it in
  C (see there);
* ``convert``: keyword arguments of ``emlearn.convert`` (``method``, ``dtype``, ``leaf_bits``);
* ``name`` and ``file``: ``cmodel.save(name=name, file=file)`` writes the C header there;
* ``X``: a ``.npy`` file of test inputs, raw (the pipeline's scaler is applied here in
  float64): emlearn's own Python wrapper (its C, compiled by emlearn) predicts them, so that
  ``edge.py`` can check that its harness computes what emlearn computes.

Conversion and the wrapper's predictions are timed for information only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import emlearn
import joblib
import numpy as np


def log(message: str) -> None:
    print(f"[emlearn] {message}", file=sys.stderr, flush=True)


def convert_one(item: dict[str, Any]) -> dict[str, Any]:
    model = joblib.load(item["model"])
    x = np.load(item["X"]).astype(np.float64)
    stripped: list[str] = []
    estimator = model
    if hasattr(model, "steps"):  # a Pipeline: the scaler runs in front of emlearn's C
        *front, (_, estimator) = model.steps
        stripped = [type(step).__name__ for _, step in front]
        for _, step in front:
            x = step.transform(x)
    t0 = time.perf_counter()
    cmodel = emlearn.convert(estimator, **item["convert"])
    code = cmodel.save(name=item["name"], file=item["file"])
    convert_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    predicted = np.asarray(cmodel.predict(x)).astype(np.int64).reshape(-1)
    wrapper_s = time.perf_counter() - t1
    log(f"{item['key']}: {type(estimator).__name__} {item['convert']} -> {len(code):,} chars of C")
    return {
        "key": item["key"],
        "estimator": type(estimator).__name__,
        "stripped": stripped,
        "convert": item["convert"],
        "file": item["file"],
        "c_chars": len(code),
        "convert_s": convert_s,
        "wrapper_predictions": predicted.tolist(),
        "wrapper_s": wrapper_s,
    }


def main() -> None:
    args = json.load(sys.stdin)
    scratch = Path(args["workdir"]) / "emlearn"
    scratch.mkdir(parents=True, exist_ok=True)
    os.chdir(scratch)  # the wrapper writes and compiles its C in ./tmp
    for item in args["conversions"]:
        Path(item["file"]).parent.mkdir(parents=True, exist_ok=True)
    results = [convert_one(item) for item in args["conversions"]]
    versions = {
        name: metadata.version(name) for name in ("emlearn", "scikit-learn", "numpy", "joblib")
    }
    print(
        json.dumps(
            {
                "versions": versions,
                "includedir": str(emlearn.includedir),
                "python": sys.version.split()[0],
                "conversions": results,
            }
        )
    )


if __name__ == "__main__":
    main()
