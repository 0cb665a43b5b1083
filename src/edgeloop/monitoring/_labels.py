"""Predictions in the field and their ground truth, which arrives late.

A source (a device's agent, a serving endpoint, a batch job) records what it predicted with
:func:`record_predictions`, each prediction under the source's own id; the ground truth comes
later, by id, through :func:`post_labels` (an upstream system) or :func:`post_review` (a
person's decision). Monitors measure accuracy and F1 per window and per slice on the
predictions whose label is known. Ids that are not known are reported back, never dropped.

Each call is one transaction. :func:`check_predictions` / :func:`store_predictions` and
:func:`check_labels` / :func:`store_labels` are the same two steps (validation without the
database, then the writes inside the caller's transaction) for a caller that records
predictions together with other rows: a device's telemetry window carries its predictions and
the labels given on site, stored in the telemetry's transaction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, ValidationFailed
from edgeloop.store import ModelStore, Prediction, PredictionReview, PredictionStore
from edgeloop.workspace import Workspace, now_ms

__all__ = [
    "MAX_BATCH",
    "REVIEW_DECISIONS",
    "LabelIn",
    "LabelsResult",
    "PredictionIn",
    "PredictionsRecorded",
    "ReviewInfo",
    "StoredPredictions",
    "check_labels",
    "check_predictions",
    "check_source",
    "check_tags",
    "post_labels",
    "post_review",
    "record_predictions",
    "store_labels",
    "store_predictions",
]

MAX_BATCH = 10_000
"""Most predictions or labels in one call."""
Decision = Literal["confirm", "correct", "reject"]
REVIEW_DECISIONS: tuple[Decision, ...] = ("confirm", "correct", "reject")
MAX_ID_LENGTH = 200
"""Prediction ids are 1-200 characters (a device's are ``<device id>/<ms>-<seq>``)."""
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,199}$")
_SOURCE = re.compile(r"^(device|endpoint|batch):[A-Za-z0-9_.:/@+=\-]{1,200}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictionIn(_In):
    """One prediction: the source's ``id`` for it, the predicted label, its confidence (the
    top class probability, if known), when it was made (epoch ms) and its slice tags."""

    id: str
    predicted: str | int
    confidence: float | None = None
    at: int
    tags: dict[str, str] = Field(default_factory=dict)


class LabelIn(_In):
    """The ground truth of one prediction, by its id."""

    prediction_id: str
    label: str | int


class PredictionsRecorded(BaseModel):
    stored: int
    """New predictions stored."""
    duplicates: int
    """Predictions stored before with the same content (a resent window), left as they are."""


class LabelsResult(BaseModel):
    updated: int
    """Predictions whose label was set or changed."""
    unchanged: int
    """Predictions that already had this label."""
    unknown: list[str] = Field(default_factory=list)
    """Prediction ids that were never recorded: nothing was stored for them."""


class ReviewInfo(BaseModel):
    prediction_id: str
    decision: Decision
    predicted: str
    label: str | None
    reviewer: str
    at: int


def _check_id(value: str, field: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValidationFailed(
            f"{field} {value!r} is not allowed: use 1-{MAX_ID_LENGTH} letters, digits, '_', '.', "
            "':', '/' or '-', starting with a letter or digit",
            details={"field": field, "value": str(value)},
        )
    return value


def _check_label(value: str | int, field: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.strip() or len(text) > 256:
        raise ValidationFailed(
            f"{field} must be a label name (1-256 characters) or a class index, got {value!r}",
            details={"field": field},
        )
    return text


def check_source(source: str) -> str:
    """``device:<id>``, ``endpoint:<name>`` or ``batch:<name>``."""
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ValidationFailed(
            f"source {source!r} is not allowed: write device:<id>, endpoint:<name> or batch:<name>",
            details={"field": "source"},
        )
    return source


def check_tags(tags: Mapping[str, Any], field: str = "tags") -> dict[str, str]:
    """Slice tags: names of letters, digits, '_', '.', '-' (1-64) to strings (at most 256)."""
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not _TAG_KEY.match(str(key)) or not isinstance(value, str) or len(value) > 256:
            raise ValidationFailed(
                f"{field} must map tag names (letters, digits, '_', '.', '-') to strings of "
                f"at most 256 characters; {key!r}: {value!r} is not allowed",
                details={"field": field},
            )
        out[str(key)] = value
    return out


def _parse(kind: type[BaseModel], items: Sequence[Any], field: str) -> list[Any]:
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            f"{field} holds {len(items)} items; send at most {MAX_BATCH} per call",
            details={"field": field},
        )
    out = []
    for i, item in enumerate(items):
        if isinstance(item, kind):
            out.append(item)
            continue
        try:
            out.append(kind.model_validate(item))
        except PydanticValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem.get("loc", ()))
            raise ValidationFailed(
                f"{field}[{i}].{where}: {problem.get('msg', 'invalid')}",
                details={"field": f"{field}[{i}].{where}"},
            ) from exc
    return out


def _check_prediction(p: PredictionIn, i: int) -> None:
    _check_id(p.id, f"predictions[{i}].id")
    _check_label(p.predicted, f"predictions[{i}].predicted")
    if p.confidence is not None and not (math.isfinite(p.confidence) and 0 <= p.confidence <= 1):
        raise ValidationFailed(
            f"predictions[{i}].confidence must be in [0, 1], got {p.confidence!r}",
            details={"field": f"predictions[{i}].confidence"},
        )
    if p.at < 0:
        raise ValidationFailed(
            f"predictions[{i}].at must be epoch milliseconds >= 0, got {p.at}",
            details={"field": f"predictions[{i}].at"},
        )


@dataclass(frozen=True)
class StoredPredictions:
    """What :func:`store_predictions` did: ``stored`` new rows, ``duplicates`` sent before
    with the same content, and ``clashes``: ids already used by another prediction (nothing
    stored for them)."""

    stored: int
    duplicates: int
    clashes: list[str]


def check_predictions(
    version: int,
    source: str,
    predictions: Sequence[PredictionIn | Mapping[str, Any]],
    tags: Mapping[str, str] | None = None,
) -> tuple[list[PredictionIn], dict[str, str]]:
    """Validate a batch (no database access): the predictions and the common tags, or
    :class:`~edgeloop.errors.ValidationFailed` naming the field (``predictions[3].id``)."""
    check_source(source)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationFailed(
            f"version must be a version number >= 1, got {version!r}", details={"field": "version"}
        )
    items: list[PredictionIn] = _parse(PredictionIn, predictions, "predictions")
    common = check_tags(tags or {}, "tags")
    seen: set[str] = set()
    for i, p in enumerate(items):
        _check_prediction(p, i)
        check_tags(p.tags, f"predictions[{i}].tags")
        if p.id in seen:
            raise ValidationFailed(
                f"prediction id {p.id!r} appears twice in the batch",
                details={"field": "predictions", "id": p.id},
            )
        seen.add(p.id)
    return items, common


def store_predictions(
    s: Session,
    model: str,
    version: int,
    source: str,
    items: Sequence[PredictionIn],
    *,
    tags: Mapping[str, str],
    now: int,
    skip_clashes: bool = False,
) -> StoredPredictions:
    """Store checked predictions inside the caller's write transaction (the model version
    must exist: :class:`~edgeloop.errors.NotFound`). Ids already used by a different
    prediction are returned in ``clashes`` and stored nothing for; the others are stored
    only if there are no clashes, unless ``skip_clashes``."""
    models = ModelStore(s)
    models.version(models.get(model), version)
    store = PredictionStore(s)
    existing = store.existing([p.id for p in items])
    clashes: list[str] = []
    rows: list[Prediction] = []
    for p in items:
        row = existing.get(p.id)
        predicted = str(p.predicted)
        if row is not None:
            same = (row.model, row.model_version, row.source, row.predicted, row.at) == (
                model,
                version,
                source,
                predicted,
                p.at,
            )
            if not same:
                clashes.append(p.id)
            continue
        rows.append(
            Prediction(
                id=p.id,
                model=model,
                model_version=version,
                source=source,
                predicted=predicted,
                confidence=p.confidence,
                at=p.at,
                tags={**tags, **p.tags},
                received_at=now,
            )
        )
    if skip_clashes or not clashes:
        store.add(rows)
    return StoredPredictions(len(rows), len(items) - len(rows) - len(clashes), clashes)


def record_predictions(
    ws: Workspace,
    model: str,
    version: int,
    source: str,
    predictions: Sequence[PredictionIn | Mapping[str, Any]],
    *,
    tags: Mapping[str, str] | None = None,
    now: int | None = None,
) -> PredictionsRecorded:
    """Store predictions of ``model`` version ``version`` made by ``source``.

    ``tags`` (e.g. the device's site, target and groups) apply to every prediction, under its
    own tags. Idempotent: a prediction sent again with the same content is counted as a
    duplicate; an id already used for a different prediction raises
    :class:`~edgeloop.errors.Conflict` and stores nothing.
    """
    items, common = check_predictions(version, source, predictions, tags)
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        done = store_predictions(s, model, version, source, items, tags=common, now=at)
        if done.clashes:
            raise Conflict(
                f"{len(done.clashes)} prediction ids are already used by other predictions: "
                f"{', '.join(done.clashes[:5])}; prediction ids must be unique",
                details={"ids": done.clashes[:100]},
            )
    return PredictionsRecorded(stored=done.stored, duplicates=done.duplicates)


def check_labels(labels: Sequence[LabelIn | Mapping[str, Any]]) -> dict[str, str]:
    """Validate labels (no database access): prediction id -> label, the last one of an id
    winning; :class:`~edgeloop.errors.ValidationFailed` naming the field (``labels[2].label``).
    """
    items: list[LabelIn] = _parse(LabelIn, labels, "labels")
    for i, item in enumerate(items):
        _check_id(item.prediction_id, f"labels[{i}].prediction_id")
        _check_label(item.label, f"labels[{i}].label")
    return {item.prediction_id: str(item.label) for item in items}


def store_labels(s: Session, latest: Mapping[str, str], *, now: int) -> LabelsResult:
    """Set checked labels inside the caller's write transaction (see :func:`post_labels`)."""
    existing = PredictionStore(s).existing(list(latest))
    updated = unchanged = 0
    for prediction_id, label in latest.items():
        row = existing.get(prediction_id)
        if row is None:
            continue
        if row.label == label and row.label_source == "label":
            unchanged += 1
            continue
        row.label, row.label_source, row.labeled_at = label, "label", now
        updated += 1
    s.flush()
    unknown = [i for i in latest if i not in existing]
    return LabelsResult(updated=updated, unchanged=unchanged, unknown=unknown)


def post_labels(
    ws: Workspace,
    labels: Sequence[LabelIn | Mapping[str, Any]],
    *,
    now: int | None = None,
) -> LabelsResult:
    """Set the ground truth of recorded predictions by id; a later label replaces an earlier
    one. Ids never recorded are returned in ``unknown`` (nothing is stored for them)."""
    latest = check_labels(labels)
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        return store_labels(s, latest, now=at)


def post_review(
    ws: Workspace,
    prediction_id: str,
    decision: str,
    label: str | int | None = None,
    reviewer: str | None = None,
    *,
    now: int | None = None,
) -> ReviewInfo:
    """Record a person's decision on a prediction and set its ground truth accordingly.

    ``confirm``: the prediction was right (its label becomes the predicted one);
    ``correct``: it was wrong and ``label`` is the right answer; ``reject``: the sample is
    not usable (no ground truth: the prediction leaves the performance figures).
    """
    _check_id(prediction_id, "prediction_id")
    if decision not in REVIEW_DECISIONS:
        raise ValidationFailed(
            f"decision {decision!r} is not one of {', '.join(REVIEW_DECISIONS)}",
            details={"field": "decision"},
        )
    truth = None if label is None else _check_label(label, "label")
    if decision == "correct" and truth is None:
        raise ValidationFailed(
            "a 'correct' review needs the right label", details={"field": "label"}
        )
    if decision == "reject" and truth is not None:
        raise ValidationFailed(
            "a 'reject' review takes no label: it says the sample has no usable ground truth",
            details={"field": "label"},
        )
    who = reviewer or ws.principal.name
    at = now if now is not None else now_ms()
    with ws.db.write() as s:
        store = PredictionStore(s)
        row = store.get(prediction_id)
        if decision == "confirm":
            if truth is not None and truth != row.predicted:
                raise ValidationFailed(
                    f"confirm means the prediction {row.predicted!r} was right, but label is "
                    f"{truth!r}: use decision 'correct'",
                    details={"field": "label"},
                )
            truth = row.predicted
        row.label = truth
        row.label_source = None if truth is None else "review"
        row.labeled_at = at
        store.add_review(
            PredictionReview(
                prediction_id=prediction_id, decision=decision, label=truth, reviewer=who, at=at
            )
        )
        return ReviewInfo(
            prediction_id=prediction_id,
            decision=decision,
            predicted=row.predicted,
            label=truth,
            reviewer=who,
            at=at,
        )
