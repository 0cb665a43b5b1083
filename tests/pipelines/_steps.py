"""Step functions for the pipeline tests (importable by spawned workers).

Each call appends its step name to the file named by ``EDGELOOP_TEST_STEP_LOG`` so tests can
see which steps really ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import edgeloop


def _ran(name: str) -> None:
    log = os.environ.get("EDGELOOP_TEST_STEP_LOG")
    if log:
        with Path(log).open("a") as fh:
            fh.write(name + "\n")


@edgeloop.step(outputs=["table"])
def ingest(rows: int = 100, seed: int = 0) -> pa.Table:
    _ran("ingest")
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(size=rows), "y": rng.integers(0, 2, rows)})


@edgeloop.step(outputs=["table"])
def validate(table: pa.Table) -> pa.Table:
    _ran("validate")
    print(f"validated {table.num_rows} rows")
    return table


@edgeloop.step(outputs=["X", "y"])
def features(table: pa.Table, scale: float = 1.0) -> dict[str, Any]:
    _ran("features")
    x = np.asarray(table.column("x")) * scale
    return {"X": x.reshape(-1, 1), "y": np.asarray(table.column("y"))}


@edgeloop.step(outputs=["model"])
def train(X: np.ndarray, y: np.ndarray, C: float = 1.0) -> Any:
    _ran("train")
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C).fit(X, y)


@edgeloop.step(outputs=["metrics"])
def evaluate(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    _ran("evaluate")
    return {"accuracy": float((model.predict(X) == y).mean())}


@edgeloop.step(outputs=["summary"])
def register(metrics: dict[str, float]) -> str:
    _ran("register")
    return f"accuracy={metrics['accuracy']:.3f}"


@edgeloop.step(outputs=["rows"])
def count_rows(table: pa.Table) -> int:
    _ran("count_rows")
    return int(table.num_rows)


def flaky(table: pa.Table, marker: str) -> int:
    """Fails until the file ``marker`` exists."""
    _ran("flaky")
    if not Path(marker).exists():
        raise RuntimeError(f"{marker} is missing")
    return int(table.num_rows)


def double(n: int) -> int:
    _ran("double")
    return 2 * n


def make_blobs(rows: int = 300, seed: int = 0) -> dict[str, Any]:
    """A separable two-class problem, split into train and test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    X = rng.normal(size=(rows, 3)) + y[:, None] * 2.0
    cut = rows * 2 // 3
    return {"X_train": X[:cut], "y_train": y[:cut], "X_test": X[cut:], "y_test": y[cut:]}


def fit_and_log(X: np.ndarray, y: np.ndarray, shuffle_labels: bool = False) -> dict[str, Any]:
    """A minimal training step: fits, logs a run with the model, returns both."""
    import io

    from sklearn.linear_model import LogisticRegression

    from edgeloop import tracking
    from edgeloop.pipelines import current_context, step_workspace
    from edgeloop.registry import save_sklearn

    if shuffle_labels:
        y = np.random.default_rng(1).permutation(y)
    model = LogisticRegression().fit(X, y)
    ws = step_workspace()
    run = tracking.create_run(ws, "pipelines-test", lineage=current_context().lineage())
    for rel, data in save_sklearn(model, X[:3]).items():
        tracking.put_artifact(ws, run.id, f"model/{rel}", io.BytesIO(data))
    tracking.set_run_status(ws, run.id, "finished")
    return {"model": model, "run_id": run.id}


def make_linear(rows: int = 200, seed: int = 0) -> dict[str, Any]:
    """A noisy linear regression problem, split into train and test."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + rng.normal(0, 0.1, rows)
    cut = rows * 3 // 4
    return {"X_train": X[:cut], "y_train": y[:cut], "X_test": X[cut:], "y_test": y[cut:]}
