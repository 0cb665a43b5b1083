"""Data factories for dataset tests: tabular files and sensor recording folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    def factory(
        rows: int = 200, seed: int = 0, name: str = "data.csv", **overrides: object
    ) -> Path:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(
            {
                "id": [f"r{i:05d}" for i in range(rows)],
                "temp": rng.normal(20, 5, rows).round(3),
                "vibration": rng.gamma(2.0, 1.0, rows).round(4),
                "site": rng.choice(["north", "south"], rows),
                "label": rng.choice(["ok", "fault"], rows, p=[0.8, 0.2]),
            }
        )
        for column, value in overrides.items():
            frame[column] = value
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return factory


@pytest.fixture
def make_recordings(tmp_path: Path) -> Callable[..., Path]:
    """A folder per label of accelerometer CSV recordings at 100 Hz, like a phone export."""

    def factory(per_label: int = 3, seconds: float = 2.0, name: str = "recordings") -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(1)
        n = int(seconds * 100)
        t = np.arange(n) * 10  # ms
        for label, freq in (("idle", 1.0), ("shake", 8.0)):
            folder = root / label
            folder.mkdir(parents=True)
            for i in range(per_label):
                signal = np.sin(2 * np.pi * freq * t / 1000.0)
                frame = pd.DataFrame(
                    {
                        "timestamp": t,
                        "accX": signal + rng.normal(0, 0.05, n),
                        "accY": 0.5 * signal + rng.normal(0, 0.05, n),
                        "accZ": 9.81 + rng.normal(0, 0.05, n),
                    }
                )
                frame.to_csv(folder / f"{label}.{i}.csv", index=False)
        return root

    return factory
