"""Pipeline steps for the predictive-maintenance example and the demo.

``vibration_features`` turns windowed accelerometer recordings (a dataset version made by
``edgeloop data window``) into flatten + spectral features, split by machine so the test set
holds machines the model never saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from edgeloop.datasets import SplitSpec, assign_split
from edgeloop.errors import ValidationFailed
from edgeloop.train import FeaturePipeline, FlattenBlock, SpectralBlock, windows_from_table

__all__ = ["machine_of", "vibration_features"]

AXES = ("acc_x", "acc_y", "acc_z")


def machine_of(sample_id: str) -> str:
    """The machine a recording came from: ``normal/machine-03-0007.csv`` → ``machine-03``
    (the folder layout ``edgeloop.sim.write_recordings`` produces), or the first part of a
    ``machine-03/normal/0007`` id."""
    name = sample_id.rsplit("/", 1)[-1]
    if name.endswith(".csv"):
        return name[: -len(".csv")].rsplit("-", 1)[0]
    return sample_id.split("/", 1)[0]


def vibration_features(
    table: pa.Table,
    sample_rate: float = 1000.0,
    fft_length: int = 256,
    n_bands: int = 8,
    test: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    """Features of every window, and a split that keeps each machine on one side; also the
    feature pipeline (``features``) and the raw window shape ``(n_samples, n_axes)`` that an
    edge export compiles into C."""
    axes = [a for a in AXES if a in table.column_names]
    if not axes or "label" not in table.column_names or "sample_id" not in table.column_names:
        raise ValidationFailed(
            "vibration_features needs sample_id, label and acc_x/acc_y/acc_z columns; got "
            f"{', '.join(table.column_names)}"
        )
    pipeline = FeaturePipeline(
        blocks=(
            FlattenBlock(),
            SpectralBlock(sample_rate=sample_rate, fft_length=fft_length, n_bands=n_bands),
        ),
        axes=tuple(axes),
    )
    windows = windows_from_table(table, axes)  # (n_windows, n_samples, n_axes)
    X = pipeline.transform(windows)
    y = np.asarray([str(v) for v in table.column("label").to_pylist()])
    machines = np.asarray([machine_of(str(s)) for s in table.column("sample_id").to_pylist()])
    side = assign_split(
        pa.table({"machine": machines}),
        SplitSpec(method="group", group="machine", test=test, seed=seed),
    )
    train, held = side == "train", side == "test"
    return {
        "X_train": X[train],
        "y_train": y[train],
        "groups_train": machines[train],
        "X_test": X[held],
        "y_test": y[held],
        "feature_names": pipeline.feature_names(),
        "features": pipeline.to_dict(),
        "window": [int(windows.shape[1]), int(windows.shape[2])],
    }
