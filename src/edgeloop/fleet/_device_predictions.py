"""Predictions and on-site labels carried by a device's telemetry window.

The agent records each prediction it makes (id ``<device id>/<ms>-<seq>``, the predicted
label, the top class probability and when; never the input) in its current telemetry window,
up to a bound per window, and the labels an operator gave on site (``POST /feedback`` on the
agent's local endpoint) by prediction id. :func:`record_telemetry
<edgeloop.fleet._telemetry.record_telemetry>` checks them with :func:`check_device_predictions`
before anything is written (a malformed record is refused, 400, naming the field, e.g.
``predictions[3].confidence``) and stores them with :func:`store_device_predictions` in the
telemetry's transaction, through the monitoring layer's :func:`store_predictions
<edgeloop.monitoring._labels.store_predictions>` (source ``device:<id>``, the model and
version of the reported release, the device's tags as slice tags) and :func:`store_labels
<edgeloop.monitoring._labels.store_labels>`. A window sent again was stored before, so
nothing is recorded twice.

A device may only record and label its own predictions: every id must start with
``<device id>/``. An id the device used before for a different prediction (its clock went
back) is skipped, not refused, so the window's health figures still arrive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._entities import TelemetryReport
from edgeloop.monitoring._labels import (
    PredictionIn,
    check_labels,
    check_predictions,
    store_labels,
    store_predictions,
)

__all__ = ["DevicePredictions", "check_device_predictions", "store_device_predictions"]

_SLICE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class DevicePredictions:
    """A telemetry window's checked predictions and labels, ready to be stored."""

    source: str
    model: str | None
    version: int | None
    predictions: list[PredictionIn] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    labels_dropped: int = 0


def slice_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The device's tags that can be prediction slice tags (a tag whose name or value the
    predictions table does not take is left out rather than refusing the window)."""
    return {k: v for k, v in tags.items() if _SLICE_KEY.match(k) and len(v) <= 256}


def _own(device_id: str, ids: Sequence[tuple[int, object]], field_name: str) -> None:
    prefix = f"{device_id}/"
    for i, value in ids:
        if not isinstance(value, str) or not value.startswith(prefix):
            raise ValidationFailed(
                f"{field_name.format(i)} {value!r} is not one of this device's prediction ids: "
                f"they start with {prefix!r}",
                details={"field": field_name.format(i)},
            )


def check_device_predictions(
    device_id: str,
    report: TelemetryReport,
    *,
    model: str | None,
    version: int | None,
    tags: Mapping[str, str],
) -> DevicePredictions | None:
    """The window's predictions and labels, checked (no database access); None when it
    carries neither. ``model``/``version`` are those of the reported release (required with
    predictions)."""
    predictions, labels = report.predictions or [], report.labels or []
    if not predictions and not labels and not report.predictions_dropped:
        return None
    source = f"device:{device_id}"
    items: list[PredictionIn] = []
    common: dict[str, str] = {}
    if predictions:
        if model is None or version is None:
            raise ValidationFailed(
                "telemetry predictions need the release that made them: send 'release'",
                details={"field": "release"},
            )
        items, common = check_predictions(version, source, predictions, slice_tags(tags))
        _own(device_id, [(i, p.id) for i, p in enumerate(items)], "predictions[{}].id")
    latest = check_labels(labels) if labels else {}
    if labels:
        _own(
            device_id,
            [(i, item.get("prediction_id")) for i, item in enumerate(labels)],
            "labels[{}].prediction_id",
        )
    return DevicePredictions(
        source=source,
        model=model,
        version=version,
        predictions=items,
        tags=common,
        labels=latest,
        dropped=report.predictions_dropped,
        labels_dropped=report.labels_dropped,
    )


def store_device_predictions(s: Session, checked: DevicePredictions, *, now: int) -> dict[str, Any]:
    """Store them inside the telemetry's write transaction (predictions first, so labels of
    this window's predictions find them); what happened, for the device's health record."""
    outcome: dict[str, Any] = {"dropped": checked.dropped}
    if checked.predictions and checked.model is not None and checked.version is not None:
        done = store_predictions(
            s,
            checked.model,
            checked.version,
            checked.source,
            checked.predictions,
            tags=checked.tags,
            now=now,
            skip_clashes=True,
        )
        outcome.update(stored=done.stored, duplicates=done.duplicates, clashes=len(done.clashes))
    if checked.labels:
        s.flush()
        result = store_labels(s, checked.labels, now=now)
        outcome["labels"] = {
            "updated": result.updated,
            "unchanged": result.unchanged,
            "unknown": len(result.unknown),
            "dropped": checked.labels_dropped,
        }
    return outcome
