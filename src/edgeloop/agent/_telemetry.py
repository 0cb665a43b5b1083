"""Health telemetry: the current window's counts, and the bounded on-disk buffer of closed
windows waiting to be sent.

A window record is the protocol's ``POST /device/telemetry`` body. One inference is one call
of ``predict``/``scores`` (a batch counts once); ``latency_ms.counts`` has one bin more than
``edges``: ``counts[i]`` holds the calls with ``edges[i-1] < latency <= edges[i]`` (the first
from 0) and the last one those above ``edges[-1]``, so the counts add up to
``inference_count``. ``latency_p95_ms`` is interpolated within its bin (the overflow bin ends
at the largest latency seen).

The buffer (``telemetry.jsonl``, :mod:`edgeloop.agent._telemetry_buffer`) keeps at most
``capacity`` windows, compactly and append-only; when a new one would overflow it the oldest
is dropped and counted in ``dropped_windows`` of the window that becomes the oldest.

The window also records the predictions made in it (:meth:`TelemetryWindow.add_predictions`:
id, predicted label, confidence, time; never the inputs), at most ``max_predictions`` of them
(the rest counted in ``predictions_dropped``), and the labels given on site for earlier
predictions (:meth:`TelemetryWindow.add_label`, same bound, ``labels_dropped``): the closed
window carries them as ``predictions`` and ``labels`` when there are any.

With the active bundle's monitoring reference (:meth:`TelemetryWindow.set_reference`), the
window also keeps a :class:`~edgeloop.monitoring.window.WindowSketch` binned on it: every
inference adds its inputs (the feature vectors) and the class probabilities made from its
scores, and the closed window carries the sketch as ``sketches`` in the compact wire form
(``WindowSketch.to_packed()``: ``{"packed": base64 of to_bytes()}``; None without a reference
or without inferences), so it is buffered and resent with the rest.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from edgeloop.agent._predictions import DEFAULT_MAX_PREDICTIONS
from edgeloop.agent._telemetry_buffer import TelemetryBuffer
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.reference import Reference
from edgeloop.monitoring.window import WindowSketch

__all__ = ["LATENCY_EDGES_MS", "TelemetryBuffer", "TelemetryWindow", "percentile"]

log = logging.getLogger("edgeloop.agent")

LATENCY_EDGES_MS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def percentile(edges: Sequence[float], counts: Sequence[int], q: float, top: float) -> float:
    """The ``q`` quantile of a histogram (``len(counts) == len(edges) + 1``), linear within
    the bin; ``top`` closes the overflow bin."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = edges[i - 1] if i > 0 else 0.0
            high = edges[i] if i < len(edges) else max(top, low)
            return round(low + (high - low) * (rank - seen) / count, 4)
        seen += count
    return round(top, 4)


class TelemetryWindow:
    """Counts of the open window; safe to update from many threads."""

    def __init__(
        self,
        start_ms: int,
        edges: Sequence[float] = LATENCY_EDGES_MS,
        *,
        max_predictions: int = DEFAULT_MAX_PREDICTIONS,
    ) -> None:
        if max_predictions < 0:
            raise ValueError(f"max_predictions must be >= 0, got {max_predictions}")
        self._lock = threading.Lock()
        self.max_predictions = max_predictions
        self.edges = tuple(float(e) for e in edges)
        self._reference: Reference | None = None
        self._sketch: WindowSketch | None = None
        self._reset(start_ms)

    def set_reference(self, reference: Reference | None) -> None:
        """Sketch inferences on ``reference``'s bins from now on (None: stop sketching)."""
        with self._lock:
            self._reference = reference
            self._sketch = reference.new_window() if reference is not None else None

    @property
    def sketching(self) -> bool:
        return self._sketch is not None

    def observe(self, x: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        """Add one inference's inputs and scores to the window's sketch (never raises: a
        batch the sketch cannot take is logged and left out)."""
        with self._lock:
            sketch, reference = self._sketch, self._reference
            if sketch is None or reference is None:
                return
            try:
                proba = reference.probabilities(scores) if sketch.prediction is not None else None
                sketch.update(x, proba)
            except (ValidationFailed, ValueError) as exc:
                log.warning("monitoring: an inference was left out of the sketch: %s", exc)

    def _reset(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.inference_count = 0
        self.error_count = 0
        self.counts = [0] * (len(self.edges) + 1)
        self.max_ms = 0.0
        self.predictions: list[dict[str, Any]] = []
        self.predictions_dropped = 0
        self.labels: dict[str, str] = {}
        self.labels_dropped = 0

    def has_room(self) -> bool:
        """Whether the next prediction will be recorded (else only counted)."""
        return len(self.predictions) < self.max_predictions

    def add_predictions(
        self,
        ids: Sequence[str],
        predicted: Sequence[str],
        confidence: Sequence[float | None],
        at_ms: int,
    ) -> None:
        """Record one inference's predictions, up to the window's bound."""
        with self._lock:
            room = max(0, self.max_predictions - len(self.predictions))
            for pid, label, conf in list(zip(ids, predicted, confidence, strict=True))[:room]:
                self.predictions.append(
                    {"id": pid, "predicted": label, "confidence": conf, "at": at_ms}
                )
            self.predictions_dropped += max(0, len(ids) - room)

    def add_label(self, prediction_id: str, label: str) -> bool:
        """Queue a label for one of this device's predictions (the latest label of an id
        wins); False when the window's bound is reached (counted in ``labels_dropped``)."""
        with self._lock:
            if prediction_id in self.labels or len(self.labels) < self.max_predictions:
                self.labels[prediction_id] = label
                return True
            self.labels_dropped += 1
            return False

    def record(self, latency_ms: float, *, ok: bool) -> None:
        with self._lock:
            self.inference_count += 1
            if not ok:
                self.error_count += 1
            self.counts[bisect.bisect_left(self.edges, latency_ms)] += 1
            self.max_ms = max(self.max_ms, latency_ms)

    def close(
        self, end_ms: int, *, release: str | None, model_version: int | None
    ) -> dict[str, Any]:
        """The window as a telemetry record; a new window starts at ``end_ms``."""
        with self._lock:
            record: dict[str, Any] = {
                "window_start": self.start_ms,
                "window_end": end_ms,
                "release": release,
                "model_version": model_version,
                "inference_count": self.inference_count,
                "error_count": self.error_count,
                "latency_ms": {"edges": list(self.edges), "counts": list(self.counts)},
                "latency_p95_ms": percentile(self.edges, self.counts, 0.95, self.max_ms),
                "dropped_windows": 0,
                "sketches": None,
            }
            if self.predictions or self.predictions_dropped:
                record["predictions"] = self.predictions
                record["predictions_dropped"] = self.predictions_dropped
            if self.labels or self.labels_dropped:
                record["labels"] = [
                    {"prediction_id": pid, "label": label} for pid, label in self.labels.items()
                ]
                record["labels_dropped"] = self.labels_dropped
            sketch = self._sketch
            if sketch is not None and sketch.count:
                record["sketches"] = sketch.to_packed()
                self._sketch = sketch.empty_like()
            self._reset(end_ms)
        return record


def is_due(start_ms: int, now_ms: int, interval_s: float) -> bool:
    return now_ms - start_ms >= math.floor(interval_s * 1000)
