"""Helpers for the monitor tests: a registered model version with a monitoring reference,
and sketch windows of that reference, with drift injected into chosen features.

Windows go through ``edgeloop.monitoring.ingest_window`` and come back through
``merged_windows``; a version's reference is read by ``edgeloop.edge.load_reference``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from edgeloop import registry, tracking
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference, build_reference
from edgeloop.workspace import Workspace

HOUR = 3_600_000
T0 = 1_764_000_000_000 // HOUR * HOUR
FEATURES = [f"f{i}" for i in range(8)]
LABELS = ["ok", "worn", "broken"]
_CLASS_SHARES = (0.6, 0.3, 0.1)


def proba_for(
    rng: np.random.Generator, n: int, shares: Sequence[float] = _CLASS_SHARES
) -> np.ndarray:
    """Class probabilities whose arg-max follows ``shares``, with confidence around 0.8."""
    classes = rng.choice(len(shares), size=n, p=np.asarray(shares) / np.sum(shares))
    top = rng.uniform(0.7, 0.9, size=n)
    p = np.tile(((1 - top) / (len(shares) - 1))[:, None], (1, len(shares)))
    p[np.arange(n), classes] = top
    return p


def make_reference(rows: int = 2000, seed: int = 0) -> Reference:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    return build_reference(x, FEATURES, labels=LABELS, proba=proba_for(rng, rows))


def register_version(ws: Workspace, name: str = "pump", *, reference: Reference | None) -> int:
    """A new version of ``name`` with ``reference`` as its monitoring reference."""
    run = tracking.create_run(ws, "monitor-tests")
    tracking.put_artifact(ws, run.id, "model/model.bin", io.BytesIO(b"weights"))
    version = registry.create_model_version(ws, name, run_id=run.id).version
    if reference is not None:
        registry.attach_files(ws, name, version, {REFERENCE_PATH: reference.to_json()})
    return version


def window_data(
    reference: Reference,
    rng: np.random.Generator,
    n: int,
    *,
    shift: Sequence[str] = (),
    by: float = 1.0,
    shares: Sequence[float] = _CLASS_SHARES,
) -> dict[str, object]:
    """``WindowSketch.to_dict()`` of ``n`` samples, features in ``shift`` moved by ``by``."""
    x = rng.normal(size=(n, len(FEATURES)))
    for name in shift:
        x[:, FEATURES.index(name)] += by
    return reference.window(x, proba_for(rng, n, shares)).to_dict()


def ingest(
    ws: Workspace,
    sketch: dict[str, object],
    *,
    model: str = "pump",
    version: int = 1,
    source: str = "device:d1",
    start: int = T0,
    length: int = HOUR,
    tags: dict[str, str] | None = None,
) -> None:
    from edgeloop.monitoring import SketchWindowIn, ingest_window

    ingest_window(
        ws,
        SketchWindowIn(
            model=model,
            model_version=version,
            source=source,
            window_start=start,
            window_end=start + length,
            sketch=sketch,
            tags=dict(tags or {}),
        ),
    )
