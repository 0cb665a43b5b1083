"""The model the agent serves, loaded from a slot by the manifest's ``runtime``:

- ``int8``: ``model.int8.npz``, :class:`~edgeloop.edge.runtime.QuantizedModel`;
- ``trees``: ``model.trees.npz``, :class:`~edgeloop.edge.trees.QuantizedTrees`;
- ``onnx``: ``model.onnx``, run by onnxruntime (imported only for such a bundle): input
  ``input``, output ``scores``; one output unit is a binary logit.

A bundle may hold the model version's monitoring reference (``monitoring/reference.json``):
the agent then keeps a monitoring window binned on it (see :mod:`edgeloop.agent._telemetry`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgeloop.agent._errors import UpdateFailed
from edgeloop.edge.runtime import QuantizedModel
from edgeloop.edge.trees import QuantizedTrees
from edgeloop.errors import ValidationFailed
from edgeloop.fleet.bundle import MODEL_FILES, BundleRejected
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference

__all__ = ["LoadedModel", "load_model", "smoke_test"]

log = logging.getLogger("edgeloop.agent")

F32 = npt.NDArray[np.float32]


class _Scorer(Protocol):
    def scores(self, x: npt.ArrayLike) -> F32: ...

    def predict(self, x: npt.ArrayLike) -> list[str]: ...


class _Onnx:
    def __init__(self, data: bytes, labels: tuple[str, ...]) -> None:
        self.labels = labels
        ort: Any = importlib.import_module("onnxruntime")  # ships no type information
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._input = str(self._session.get_inputs()[0].name)

    def scores(self, x: npt.ArrayLike) -> F32:
        feed = {self._input: np.asarray(x, dtype=np.float32)}
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)

    def predict(self, x: npt.ArrayLike) -> list[str]:
        s = self.scores(x)
        index = (s[:, 0] > 0).astype(np.int64) if s.shape[1] == 1 else np.argmax(s, axis=1)
        return [self.labels[int(i)] for i in index]


@dataclass(frozen=True)
class LoadedModel:
    """The model of one slot, ready to run. ``predict`` gives labels, ``scores`` float32
    scores ``(batch, units)`` (for a single unit: a binary logit)."""

    slot: str
    release: str
    model_version: int
    runtime: str
    labels: tuple[str, ...]
    scorer: _Scorer
    reference: Reference | None = None

    def scores(self, x: npt.ArrayLike) -> F32:
        return self.scorer.scores(self._batch(x))

    def predict_scores(self, x: npt.ArrayLike) -> tuple[list[str], F32]:
        """Labels and scores from one run of the model (labels exactly as :meth:`predict`)."""
        batch = self._batch(x)
        if isinstance(self.scorer, QuantizedTrees):  # its classes come from integer scores
            ints = self.scorer.int_scores(batch)
            index = (ints[:, 0] >= 0) if ints.shape[1] == 1 else np.argmax(ints, axis=1)
            scores: F32 = ints.astype(np.float32) * np.float32(self.scorer.score_scale)
        else:
            scores = self.scorer.scores(batch)
            index = (scores[:, 0] > 0) if scores.shape[1] == 1 else np.argmax(scores, axis=1)
        labels = [str(x) for x in getattr(self.scorer, "labels", ())] or list(self.labels)
        return [labels[int(i)] for i in index], scores

    def predict(self, x: npt.ArrayLike) -> list[str]:
        return [str(label) for label in self.scorer.predict(self._batch(x))]

    def _batch(self, x: npt.ArrayLike) -> F32:
        """A float32 batch; flat feature vectors are reshaped to a multi-axis input shape
        (a window of ``(length, channels)``), as the self-test inputs are."""
        array = np.asarray(x, dtype=np.float32)
        if array.ndim < 2:
            raise ValueError(f"inputs must be a batch of samples, got shape {array.shape}")
        shape = getattr(self.scorer, "input_shape", None)
        if (
            isinstance(shape, tuple)
            and len(shape) > 1
            and array.ndim == 2
            and array.shape[1] == int(np.prod(shape))
        ):
            array = array.reshape(array.shape[0], *shape)
        return array


def load_model(
    manifest: Mapping[str, Any], files: Mapping[str, bytes], *, slot: str
) -> LoadedModel:
    """Load the model of a verified bundle: :class:`BundleRejected` (``format``) for a
    bundle with no model this agent runs, :class:`UpdateFailed` (``inference``) for a model
    file that does not load."""
    runtime = str(manifest.get("runtime", ""))
    name = MODEL_FILES.get(runtime)
    if name is None:
        raise BundleRejected(
            f"this agent runs int8, trees and onnx bundles, not runtime {runtime!r}",
            reason="format",
        )
    data = files.get(name)
    if data is None:
        raise BundleRejected(f"a {runtime} bundle must hold {name}", reason="format")
    labels = tuple(str(label) for label in manifest.get("labels", ()))
    scorer: _Scorer
    try:
        if runtime == "int8":
            scorer = QuantizedModel.from_bytes(data)
        elif runtime == "trees":
            scorer = QuantizedTrees.from_bytes(data)
        else:
            scorer = _Onnx(data, labels)
    except Exception as exc:  # any loader error means the same thing here
        raise UpdateFailed("inference", f"cannot load {name}: {exc}") from exc
    inner = getattr(scorer, "labels", None)
    if not labels and inner is not None:
        labels = tuple(str(label) for label in inner)
    reference = None
    if REFERENCE_PATH in files:
        try:
            reference = Reference.from_json(files[REFERENCE_PATH])
        except ValidationFailed as exc:  # monitoring is optional: serve without it
            log.warning("the bundle's %s is not usable: %s", REFERENCE_PATH, exc)
    return LoadedModel(
        slot=slot,
        release=str(manifest.get("release", "")),
        model_version=int(manifest.get("model_version", 0)),
        runtime=runtime,
        labels=labels,
        scorer=scorer,
        reference=reference,
    )


def smoke_test(model: LoadedModel, manifest: Mapping[str, Any]) -> None:
    """Run the loaded model once on the self-test inputs: every sample gets a label and
    finite scores. :class:`UpdateFailed` (``inference``) otherwise."""
    inputs: Sequence[Any] = [case["input"] for case in manifest.get("self_test") or ()]
    try:
        if not inputs:
            raise ValueError("the bundle has no self-test inputs to run")
        scores = model.scores(inputs)
        labels = model.predict(inputs)
    except UpdateFailed:
        raise
    except Exception as exc:
        raise UpdateFailed("inference", f"smoke inference failed: {exc}") from exc
    if scores.shape[0] != len(inputs) or len(labels) != len(inputs):
        raise UpdateFailed("inference", "smoke inference returned the wrong number of outputs")
    if not np.isfinite(scores).all():
        raise UpdateFailed("inference", "smoke inference returned non-finite scores")
