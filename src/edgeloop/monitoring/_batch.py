"""Sketch a batch (an array or a table) against a model version's reference: the same
windows devices send, for any other source (a REST endpoint's logged traffic, a batch job).

>>> window = sketch_batch(reference, table)              # doctest: +SKIP
>>> ingest_window(ws, SketchWindowIn("pump", 3, "batch:nightly", start, end,
...                                  window.to_dict()))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.reference import Reference
from edgeloop.monitoring.window import WindowSketch

__all__ = ["PROBA_PREFIX", "sketch_batch"]

PROBA_PREFIX = "proba_"
"""Table columns ``proba_<label>`` hold the class probabilities."""


def _column(data: Any, name: str) -> np.ndarray | None:
    """Column ``name`` of a pyarrow Table, a pandas DataFrame or a mapping, else None."""
    if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow.Table
        if name not in data.column_names:
            return None
        return np.asarray(data.column(name).to_numpy(zero_copy_only=False))
    if isinstance(data, Mapping) or hasattr(data, "columns"):  # a mapping or a DataFrame
        try:
            return np.asarray(data[name])
        except (KeyError, IndexError):
            return None
    return None


def _columns(data: Any) -> list[str]:
    if hasattr(data, "column_names"):
        return [str(c) for c in data.column_names]
    if isinstance(data, Mapping):
        return [str(c) for c in data]
    return [str(c) for c in data.columns]


def sketch_batch(
    reference: Reference,
    data: Any,
    *,
    proba: object | None = None,
    prediction_column: str = "prediction",
) -> WindowSketch:
    """A window of ``data`` binned like ``reference``.

    ``data`` is an array ``(n, features)`` (columns in the reference's order) or a table (a
    pyarrow Table, a pandas DataFrame or a mapping of column -> values) holding a column per
    reference feature (others are ignored). Class probabilities come from ``proba``
    ``(n, classes)``, else from the table's ``proba_<label>`` columns, else from its
    ``prediction_column`` of predicted labels (each with confidence 1); without any of them
    the window has feature sketches only.
    """
    names = reference.feature_names
    probabilities: np.ndarray | None = None
    if isinstance(data, np.ndarray | list | tuple):
        x = np.asarray(data, dtype=np.float64)
    else:
        present = set(_columns(data))
        missing = [n for n in names if n not in present]
        if missing:
            raise ValidationFailed(
                f"the data lacks the reference's features {missing[:10]}"
                + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""),
                details={"missing": missing},
            )
        cols = [_column(data, n) for n in names]
        x = np.column_stack([np.asarray(c, dtype=np.float64) for c in cols if c is not None])
        if proba is None and reference.prediction is not None:
            probabilities = _table_proba(data, present, reference, prediction_column)
    if proba is not None:
        probabilities = np.asarray(proba, dtype=np.float64)
    window = reference.new_window()
    if window.prediction is None:
        probabilities = None
    window.update(x, probabilities)
    return window


def _table_proba(
    data: Any, present: set[str], reference: Reference, prediction_column: str
) -> np.ndarray | None:
    labels = reference.labels
    proba_cols = [f"{PROBA_PREFIX}{label}" for label in labels]
    if all(c in present for c in proba_cols):
        return np.column_stack([np.asarray(_column(data, c), dtype=np.float64) for c in proba_cols])
    if prediction_column in present:
        predicted = [str(v) for v in np.asarray(_column(data, prediction_column)).tolist()]
        index = {label: i for i, label in enumerate(labels)}
        unknown = sorted({p for p in predicted if p not in index})
        if unknown:
            raise ValidationFailed(
                f"column {prediction_column!r} holds labels the model does not have: "
                f"{unknown[:10]} (labels: {labels})",
                details={"field": prediction_column},
            )
        out = np.zeros((len(predicted), len(labels)))
        out[np.arange(len(predicted)), [index[p] for p in predicted]] = 1.0
        return out
    return None
