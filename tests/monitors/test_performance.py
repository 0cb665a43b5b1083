"""Predictions, late labels and reviews; accuracy and macro F1 per window and per slice,
against scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from edgeloop import monitors
from edgeloop.errors import Conflict, NotFound, ValidationFailed
from edgeloop.monitors._performance import classification_scores, performance
from edgeloop.workspace import Workspace
from tests.monitors._monitors import HOUR, LABELS, T0


def test_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 500):
        y = rng.choice(LABELS, size=n).tolist()
        p = [t if rng.random() < 0.7 else str(rng.choice([*LABELS, "other"])) for t in y]
        got = classification_scores(y, p)
        assert got["accuracy"] == pytest.approx(accuracy_score(y, p))
        assert got["f1_macro"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert classification_scores([], []) == {"labeled": 0, "accuracy": None, "f1_macro": None}


def _predictions(
    rng: np.random.Generator, n: int, start: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    items, truth = [], {}
    for i in range(n):
        label = str(rng.choice(LABELS))
        predicted = label if rng.random() < 0.8 else str(rng.choice(LABELS))
        pid = f"p{start}-{i}"
        items.append(
            {
                "id": pid,
                "predicted": predicted,
                "confidence": float(rng.uniform(0.5, 1)),
                "at": start + int(rng.integers(0, HOUR)),
                "tags": {"site": f"s{i % 3}"},
            }
        )
        truth[pid] = label
    return items, truth


def test_performance_per_window_and_slice_with_late_labels(ws: Workspace) -> None:
    rng = np.random.default_rng(1)
    monitors.create_monitor(ws, "perf", model="pump", start=T0, now=T0)
    first, truth1 = _predictions(rng, 300, T0)
    second, _ = _predictions(rng, 200, T0 + HOUR)
    stored = monitors.record_predictions(ws, "pump", 1, "endpoint:api", first + second)
    assert (stored.stored, stored.duplicates) == (500, 0)
    again = monitors.record_predictions(ws, "pump", 1, "endpoint:api", first[:10])
    assert (again.stored, again.duplicates) == (0, 10)
    # only the first window's labels have arrived when the monitor runs
    result = monitors.post_labels(
        ws,
        [{"prediction_id": k, "label": v} for k, v in truth1.items()]
        + [{"prediction_id": "ghost-1", "label": "ok"}],
    )
    assert (result.updated, result.unchanged, result.unknown) == (300, 0, ["ghost-1"])
    w1, w2 = monitors.run_monitor(ws, "perf", now=T0 + 2 * HOUR)
    y = [truth1[p["id"]] for p in first]
    pred = [p["predicted"] for p in first]
    assert w1.status == "ok" and w1.metrics["labeled"] == 300
    assert w1.metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert w1.metrics["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert w1.metrics["drift_share"] is None and "no sketches" in w1.reason
    sites = w1.details["performance"]["slices"]["site"]
    assert sorted(sites) == ["s0", "s1", "s2"]
    for site, scores in sites.items():
        rows = [(truth1[p["id"]], p["predicted"]) for p in first if p["tags"]["site"] == site]
        t, q = zip(*rows, strict=True)
        assert scores["labeled"] == len(rows)
        assert scores["accuracy"] == pytest.approx(accuracy_score(t, q))
        assert scores["f1_macro"] == pytest.approx(f1_score(t, q, average="macro"))
    assert w2.status == "skipped" and w2.metrics["accuracy"] is None
    assert "no labeled predictions" in w2.reason


def test_reviews_set_and_withdraw_the_ground_truth(ws: Workspace) -> None:
    items = [
        {"id": "a", "predicted": "ok", "at": T0},
        {"id": "b", "predicted": "worn", "at": T0 + 1},
        {"id": "c", "predicted": 2, "at": T0 + 2},
    ]
    monitors.record_predictions(ws, "pump", 1, "device:d1", items, tags={"site": "x"})
    assert monitors.post_review(ws, "a", "confirm", reviewer="ann").label == "ok"
    corrected = monitors.post_review(ws, "b", "correct", "broken")
    assert (corrected.label, corrected.reviewer) == ("broken", "local:root")
    assert monitors.post_review(ws, "c", "reject").label is None
    monitors.create_monitor(ws, "r", model="pump", min_samples=1, start=T0, now=T0)
    (report,) = monitors.run_monitor(ws, "r", now=T0 + HOUR)
    assert report.metrics["labeled"] == 2 and report.metrics["accuracy"] == 0.5
    with pytest.raises(NotFound, match="prediction 'zzz' does not exist"):
        monitors.post_review(ws, "zzz", "confirm")
    with pytest.raises(ValidationFailed, match="'correct' review needs the right label"):
        monitors.post_review(ws, "a", "correct")
    with pytest.raises(ValidationFailed, match="use decision 'correct'"):
        monitors.post_review(ws, "a", "confirm", "worn")
    with pytest.raises(ValidationFailed, match="decision 'maybe' is not one of"):
        monitors.post_review(ws, "a", "maybe")


def test_bad_predictions_are_refused_whole(ws: Workspace) -> None:
    good = {"id": "a", "predicted": "ok", "at": T0}
    bad = [
        ([good, good], ValidationFailed, "appears twice"),
        ([{**good, "confidence": 1.5}], ValidationFailed, r"confidence must be in \[0, 1\]"),
        ([{**good, "id": "has space"}], ValidationFailed, "predictions\\[0\\].id"),
        ([{"id": "a", "at": T0}], ValidationFailed, "predictions\\[0\\].predicted"),
        ([{**good, "extra": 1}], ValidationFailed, "extra"),
    ]
    for items, error, message in bad:
        with pytest.raises(error, match=message):
            monitors.record_predictions(ws, "pump", 1, "device:d1", items)
    with pytest.raises(ValidationFailed, match="source 'd1' is not allowed"):
        monitors.record_predictions(ws, "pump", 1, "d1", [good])
    with pytest.raises(NotFound, match="has no version 7"):
        monitors.record_predictions(ws, "pump", 7, "device:d1", [good])
    monitors.record_predictions(ws, "pump", 1, "device:d1", [good])
    with pytest.raises(Conflict, match="already used by other predictions: a"):
        monitors.record_predictions(ws, "pump", 1, "device:d1", [{**good, "predicted": "worn"}])


def test_performance_helper_leaves_untagged_rows_out_of_slices() -> None:
    rows = [("ok", "ok", {"site": "a"}), ("ok", "worn", {}), ("worn", "worn", {"site": "a"})]
    out = performance(rows, ["site", "line"])
    assert out["overall"]["labeled"] == 3 and out["slices"]["site"]["a"]["accuracy"] == 1.0
    assert "line" not in out["slices"]
