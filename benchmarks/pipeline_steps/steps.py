"""ingest -> validate -> features -> train -> evaluate -> register, on generated data.

Real but small work: ``ingest`` generates ``rows`` x 10 seeded features and a binary label (a
noisy logistic function of some of them); ``validate`` checks types, missing values, ranges and
the label; ``features`` standardises the features and adds a few numpy features; ``train``
fits a scikit-learn ``LogisticRegression`` on the first 80 % of the rows; ``evaluate`` scores
the last 20 % (accuracy, F1); ``register`` writes the model and its metrics to a directory.

Each function takes its inputs and params as keyword arguments and returns a dict with one
entry per output, which is what an edgeloop step returns.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

__all__ = [
    "FEATURES",
    "TEST_FRACTION",
    "evaluate",
    "features",
    "ingest",
    "register",
    "train",
    "validate",
]

FEATURES = tuple(f"f{i}" for i in range(10))
TEST_FRACTION = 0.2
# What validate accepts for each raw feature: (low, high), inclusive.
RANGES: dict[str, tuple[float, float]] = {
    "f0": (-10.0, 10.0),
    "f1": (-10.0, 10.0),
    "f2": (0.0, 1.0),
    "f3": (0.0, 1e4),
    "f4": (0.0, 100.0),
    "f5": (-50.0, 50.0),
    "f6": (0.0, 1.0),
    "f7": (0.0, 200.0),
    "f8": (-1.5, 1.5),
    "f9": (0.0, 1.0),
}


def ingest(rows: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """``rows`` x 10 seeded features of varied distributions and a 0/1 ``label``."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    cols: dict[str, np.ndarray] = {
        "f0": np.clip(rng.normal(0.0, 1.0, rows), -10, 10),
        "f1": np.clip(rng.normal(1.0, 2.0, rows), -10, 10),
        "f2": rng.uniform(0.0, 1.0, rows),
        "f3": np.minimum(rng.lognormal(1.0, 1.0, rows), 1e4),
        "f4": np.minimum(rng.exponential(3.0, rows), 100.0),
        "f5": np.clip(rng.standard_t(4, rows), -50, 50),
        "f6": rng.beta(2.0, 5.0, rows),
        "f7": np.minimum(rng.gamma(2.0, 2.0, rows), 200.0),
        "f8": np.sin(t / 50.0) + rng.normal(0.0, 0.1, rows).clip(-0.5, 0.5),
        "f9": rng.integers(0, 2, rows).astype(np.float64),
    }
    logit = (
        1.2 * cols["f0"]
        - 0.8 * cols["f1"]
        + 2.0 * cols["f2"]
        + 0.5 * np.log1p(cols["f3"])
        - 0.3 * cols["f4"]
        + 1.5 * cols["f8"] * cols["f9"]
        + rng.normal(0.0, 1.0, rows)
    )
    label = (logit > np.median(logit)).astype(np.int64)
    return {"table": pa.table({**cols, "label": label})}


def validate(table: pa.Table) -> dict[str, Any]:
    """The same table, once its columns, types, missing values, ranges and label are checked."""
    missing = [c for c in (*FEATURES, "label") if c not in table.column_names]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    if table.num_rows < 100:
        raise ValueError(f"only {table.num_rows} rows")
    problems: list[str] = []
    for name in FEATURES:
        column = table.column(name)
        if not pa.types.is_floating(column.type):
            problems.append(f"{name} is {column.type}, not a float")
            continue
        values = column.to_numpy()
        if not np.isfinite(values).all():
            problems.append(f"{name} has missing or infinite values")
            continue
        low, high = RANGES[name]
        if values.min() < low or values.max() > high:
            problems.append(
                f"{name} leaves [{low}, {high}]: {values.min():.3g}..{values.max():.3g}"
            )
    labels = np.unique(table.column("label").to_numpy())
    if not set(labels.tolist()) <= {0, 1} or len(labels) != 2:
        problems.append(f"label has values {labels.tolist()}, not 0 and 1")
    if problems:
        raise ValueError("invalid table: " + "; ".join(problems))
    print(f"validated {table.num_rows} rows x {len(FEATURES)} features")
    return {"table": table}


def features(table: pa.Table) -> dict[str, Any]:
    """X: the standardised features, log1p of the skewed ones, pairwise products of the first
    four, and each row's mean and standard deviation; y: the label."""
    raw = np.column_stack([table.column(name).to_numpy() for name in FEATURES])
    z = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    logs = np.log1p(np.abs(raw[:, [3, 4, 7]]))
    first = z[:, :4]
    i, j = np.triu_indices(4, k=1)
    products = first[:, i] * first[:, j]
    stats = np.column_stack([z.mean(axis=1), z.std(axis=1)])
    X = np.ascontiguousarray(np.hstack([z, logs, products, stats]))
    y = table.column("label").to_numpy().astype(np.int64)
    return {"X": X, "y": y}


def _split(n: int) -> int:
    return int(n * (1.0 - TEST_FRACTION))


def train(X: np.ndarray, y: np.ndarray, C: float = 1.0, max_iter: int = 500) -> dict[str, Any]:
    """A logistic regression on the first 80 % of the rows."""
    cut = _split(len(y))
    model = LogisticRegression(C=float(C), max_iter=int(max_iter))
    model.fit(X[:cut], y[:cut])
    return {"model": model}


def evaluate(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy and F1 on the last 20 % of the rows."""
    cut = _split(len(y))
    predicted = model.predict(X[cut:])
    metrics = {
        "accuracy": float(accuracy_score(y[cut:], predicted)),
        "f1": float(f1_score(y[cut:], predicted)),
        "test_rows": len(y) - cut,
    }
    return {"metrics": metrics}


def register(model: Any, metrics: dict[str, Any], registry: str = "registry") -> dict[str, Any]:
    """Write ``model.pkl`` and ``metrics.json`` to ``registry``; a summary of what was written."""
    where = Path(registry)
    where.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    (where / "model.pkl").write_bytes(blob)
    (where / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    summary = {
        "model_sha256": hashlib.sha256(blob).hexdigest(),
        "model_bytes": len(blob),
        "metrics": metrics,
    }
    return {"summary": summary}
