"""Steps of the construction schedule-adherence pipeline (see edgeloop.yaml here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from edgeloop.datasets import SplitSpec, assign_split

CATEGORICAL = ("project_type", "activity", "region")
DROP = ("activity_id", "project_id", "status")


def prepare(table: pa.Table, test: float = 0.2, seed: int = 0) -> dict[str, Any]:
    """One-hot the categories, keep every numeric column (informative or not: the model has to
    tell), and split stratified by status."""
    frame = table.to_pandas()
    y = frame["status"].to_numpy()
    features = frame.drop(columns=list(DROP))
    dummies = pd.get_dummies(features[list(CATEGORICAL)], dtype=float)
    features = features.join(dummies).drop(columns=list(CATEGORICAL))
    side = assign_split(table, SplitSpec(method="stratified", test=test, seed=seed, label="status"))
    X = features.to_numpy(dtype=np.float64)
    return {
        "X_train": X[side == "train"],
        "y_train": y[side == "train"],
        "X_test": X[side == "test"],
        "y_test": y[side == "test"],
        "feature_names": list(features.columns),
    }
