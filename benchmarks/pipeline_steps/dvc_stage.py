"""Run one step of :mod:`pipeline_steps.steps` as a command that reads and writes files.

For ``dvc repro``: each stage of the benchmark's ``dvc.yaml`` is one call such as ::

    python -m pipeline_steps.dvc_stage train --in X=data/X.npy --in y=data/y.npy \\
        --param C=1.0 --out model=models/model.pkl

``--in NAME=PATH`` loads an input, ``--param NAME=VALUE`` passes a param (parsed as JSON when
it is JSON, text otherwise) and ``--out NAME=PATH`` writes the output of that name. The file
format follows the extension: ``.parquet`` (a pyarrow table), ``.npy`` (an array), ``.pkl``
(anything, pickled) and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline_steps import steps

__all__ = ["load", "main", "save"]

STEPS = ("ingest", "validate", "features", "train", "evaluate", "register")


def load(path: Path) -> Any:
    """The value stored at ``path``, by its extension."""
    suffix = path.suffix
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".pkl":
        with path.open("rb") as fh:
            return pickle.load(fh)
    if suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    raise ValueError(f"cannot read {path}: unknown extension")


def save(value: Any, path: Path) -> None:
    """Write ``value`` to ``path`` in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix == ".parquet":
        pq.write_table(value, path)
    elif suffix == ".npy":
        np.save(path, value, allow_pickle=False)
    elif suffix == ".pkl":
        path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    elif suffix == ".json":
        path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"cannot write {path}: unknown extension")


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{flag} {item!r} must be written NAME=VALUE")
        out[name] = value
    return out


def _param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--in", dest="inputs", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args(argv)
    kwargs = {name: load(Path(path)) for name, path in _pairs(args.inputs, "--in").items()}
    kwargs.update({k: _param(v) for k, v in _pairs(args.param, "--param").items()})
    result = getattr(steps, args.step)(**kwargs)
    wanted = _pairs(args.out, "--out")
    unknown = sorted(set(wanted) - set(result))
    if unknown:
        raise SystemExit(
            f"{args.step} has no output(s) {', '.join(unknown)}; it has {sorted(result)}"
        )
    for name, path in wanted.items():
        save(result[name], Path(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
