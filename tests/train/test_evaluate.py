"""Evaluation reports against sklearn, calibration, slices, flat metrics, and the SVG charts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn import metrics as skm

from edgeloop.errors import ValidationFailed
from edgeloop.train import (
    bar_chart_svg,
    confusion_matrix_svg,
    evaluate_classifier,
    evaluate_regressor,
    feature_importance_svg,
    pr_curves_svg,
    roc_curves_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["idle", "walk", "run"]


def _predictions(n: int = 300, seed: int = 0) -> tuple[list[str], list[str], npt.NDArray[Any]]:
    """A noisy classifier: true labels, its predictions (argmax) and probabilities."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), codes] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = [LABELS[i] for i in proba.argmax(axis=1)]
    return [LABELS[i] for i in codes], pred, proba


def test_classification_metrics_match_sklearn() -> None:
    y, pred, proba = _predictions()
    report = evaluate_classifier(y, pred, proba, labels=LABELS)
    assert report.labels == LABELS and report.n == 300
    assert report.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert report.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for average in ("precision", "recall", "f1"):
        scorer = getattr(skm, f"{average}_score")
        expected = scorer(y, pred, average="macro", labels=LABELS)
        assert getattr(report, f"{average}_macro") == pytest.approx(expected)
        per_class = scorer(y, pred, average=None, labels=LABELS)
        assert [report.per_class[c][average] for c in LABELS] == pytest.approx(per_class)
    assert report.confusion == skm.confusion_matrix(y, pred, labels=LABELS).tolist()
    assert [report.per_class[c]["support"] for c in LABELS] == [y.count(c) for c in LABELS]
    codes = [LABELS.index(v) for v in y]
    assert report.roc_auc == pytest.approx(skm.roc_auc_score(codes, proba, multi_class="ovr"))
    assert report.log_loss == pytest.approx(skm.log_loss(codes, proba))


def test_binary_integer_labels_and_missing_probabilities() -> None:
    y, pred = [0, 1, 1, 0, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1, 1, 1]
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]] * 2)
    report = evaluate_classifier(y, pred, proba)
    assert report.labels == ["0", "1"]
    assert report.roc_auc == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    plain = evaluate_classifier(np.array(y), np.array(pred))
    assert plain.roc_auc is None and plain.log_loss is None
    assert plain.calibration == {"ece": None, "n_bins": 10, "curve": []}
    assert plain.f1_macro == pytest.approx(skm.f1_score(y, pred, average="macro"))


def test_absent_classes_give_no_auc_and_do_not_drag_the_macro_average() -> None:
    y, pred = ["a", "a", "b", "b"], ["a", "b", "b", "b"]
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    report = evaluate_classifier(y, pred, proba, labels=["a", "b", "c"])
    assert report.roc_auc is None  # "c" has no sample: one-vs-rest is undefined
    assert report.log_loss == pytest.approx(skm.log_loss([0, 0, 1, 1], proba, labels=[0, 1, 2]))
    assert report.per_class["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report.f1_macro == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert report.confusion[2] == [0, 0, 0]


def test_calibration_bins_and_expected_calibration_error() -> None:
    # 10 samples at confidence 0.9, half right; 10 at 0.6, 6 right.
    proba = np.array([[0.9, 0.1]] * 10 + [[0.4, 0.6]] * 10)
    y = [0] * 5 + [1] * 5 + [1] * 6 + [0] * 4
    pred = [0] * 10 + [1] * 10
    calibration = evaluate_classifier(y, pred, proba).calibration
    assert calibration["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.0)
    expected = [
        {"lower": 0.6, "upper": 0.7, "count": 10, "confidence": 0.6, "accuracy": 0.6},
        {"lower": 0.9, "upper": 1.0, "count": 10, "confidence": 0.9, "accuracy": 0.5},
    ]
    assert len(calibration["curve"]) == 2
    for got, want in zip(calibration["curve"], expected, strict=True):
        assert got == pytest.approx(want)
    certain = evaluate_classifier([0, 1], [0, 1], [[1.0, 0.0], [0.0, 1.0]]).calibration
    assert certain["ece"] == 0.0 and certain["curve"][0]["upper"] == 1.0


def test_slices_repeat_the_metrics_on_each_subset() -> None:
    y, pred, proba = _predictions(n=200, seed=4)
    device = ["nrf52" if i % 3 else "esp32" for i in range(200)]
    subject = list(np.arange(200) % 2)
    report = evaluate_classifier(
        y, pred, proba, LABELS, slices={"device": device, "group": subject}
    )
    assert set(report.slices) == {"device", "group"}
    assert set(report.slices["device"]) == {"esp32", "nrf52"} and set(report.slices["group"]) == {
        "0",
        "1",
    }
    keep = [i for i, d in enumerate(device) if d == "esp32"]
    direct = evaluate_classifier([y[i] for i in keep], [pred[i] for i in keep], proba[keep], LABELS)
    assert report.slices["device"]["esp32"] == {
        k: v for k, v in direct.to_dict().items() if k != "slices"
    }
    metrics = report.to_metrics()
    assert metrics["slice.device=esp32.f1_macro"] == pytest.approx(direct.f1_macro)
    assert metrics["slice.group=1.n"] == 100
    assert json.loads(json.dumps(report.to_dict()))["slices"]["device"]["esp32"]["n"] == len(keep)


def test_to_metrics_is_flat_floats() -> None:
    y, pred, proba = _predictions(n=60)
    metrics = evaluate_classifier(y, pred, proba, LABELS, slices={"s": ["a"] * 60}).to_metrics()
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items())
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "ece", "n"):
        assert key in metrics
    assert {"f1.walk", "precision.run", "recall.idle", "support.idle", "slice.s=a.accuracy"} <= set(
        metrics
    )
    assert "roc_auc" not in evaluate_classifier(y, pred).to_metrics()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate_classifier([], []), "at least one"),
        (lambda: evaluate_classifier(["a", "b"], ["a"]), "y_pred"),
        (lambda: evaluate_classifier(["a"], ["z"], labels=["a", "b"]), "'z'"),
        (
            lambda: evaluate_classifier(["a", "b"], ["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
            "labels=",
        ),
        (lambda: evaluate_classifier(["a", "b"], ["a", "b"], [[0.5, 0.2], [0.0, 1.0]]), "sum to 1"),
        (
            lambda: evaluate_classifier(["a", "b"], ["a", "b"], [[1.5, -0.5], [0.0, 1.0]]),
            r"\[0, 1\]",
        ),
        (lambda: evaluate_classifier(["a"], ["a"], labels=["a", "a"]), "distinct"),
        (lambda: evaluate_classifier(["a", "b"], ["a", "b"], [0.5, 0.5]), r"shape \(2, n_labels\)"),
        (lambda: evaluate_classifier(["a"], ["a"], slices={"d": [1, 2]}), "slices\\['d'\\]"),
        (lambda: evaluate_regressor([1.0, 2.0], [1.0]), "1-D"),
        (lambda: evaluate_regressor([1.0, np.nan], [1.0, 2.0]), "finite"),
    ],
)
def test_bad_inputs_are_rejected(call: Any, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        call()


def test_regression_metrics_match_sklearn_and_slice() -> None:
    rng = np.random.default_rng(1)
    y = rng.uniform(1, 10, 100)
    pred = y + rng.normal(0, 0.5, 100)
    site = ["north"] * 40 + ["south"] * 60
    report = evaluate_regressor(y, pred, slices={"site": site})
    assert report.mae == pytest.approx(skm.mean_absolute_error(y, pred))
    assert report.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert report.r2 == pytest.approx(skm.r2_score(y, pred))
    assert report.mape == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    south = report.slices["site"]["south"]
    assert south["mae"] == pytest.approx(skm.mean_absolute_error(y[40:], pred[40:]))
    assert south["n"] == 60 and "slices" not in south
    metrics = report.to_metrics()
    assert metrics["slice.site=north.rmse"] == pytest.approx(report.slices["site"]["north"]["rmse"])
    assert set(metrics) >= {"mae", "rmse", "r2", "mape", "n"}


def test_regression_undefined_metrics_are_none() -> None:
    report = evaluate_regressor([0.0, 2.0, 2.0], [0.5, 2.0, 1.0], slices={"g": ["a", "b", "b"]})
    assert report.mape is None and report.r2 is not None
    assert report.slices["g"]["a"]["r2"] is None  # a single sample
    assert report.slices["g"]["b"]["r2"] is None  # a constant truth
    assert report.slices["g"]["b"]["mape"] == pytest.approx(0.25)
    assert "mape" not in report.to_metrics() and "slice.g=a.r2" not in report.to_metrics()
    missing = evaluate_regressor(
        [1.0, 2.0, 3.0], [1.0, 2.0, 2.0], slices={"g": [np.nan, "x", None]}
    )
    assert sorted(missing.slices["g"]) == ["None", "x"]
    assert missing.slices["g"]["None"]["n"] == 2


# --- charts ------------------------------------------------------------------------------


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg.encode())
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    width, height = root.get("width"), root.get("height")
    assert root.get("viewBox") == f"0 0 {width} {height}"
    assert root.find(f"{SVG}title") is not None
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def _tips(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.iter(f"{SVG}title")]


def test_confusion_matrix_svg_shows_labels_and_counts() -> None:
    root = _parse(confusion_matrix_svg([[5, 1, 0], [2, 7, 1], [0, 0, 12]], LABELS))
    texts = _texts(root)
    assert {"idle", "walk", "run", "Predicted", "True", "12", "7"} <= set(texts)
    assert texts.count("0") == 3
    assert len(list(root.iter(f"{SVG}rect"))) == 1 + 9


def test_text_is_escaped() -> None:
    nasty = 'a<b&c>"d"'
    for svg in (
        confusion_matrix_svg([[1, 0], [0, 1]], [nasty, "ok"], title=f"title {nasty}"),
        bar_chart_svg({nasty: 0.5, "b": 0.7}, title=nasty, ylabel=nasty),
        feature_importance_svg({nasty: 0.3}, title=nasty),
        roc_curves_svg([nasty, "ok", nasty], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [nasty, "ok"]),
    ):
        root = _parse(svg)
        assert "<b&c>" not in svg
        assert any(nasty in text for text in _texts(root))


def test_long_labels_are_shortened_with_the_full_text_as_tooltip() -> None:
    name = "accelerometer_x.spectral_band_energy_number_7"
    root = _parse(feature_importance_svg({name: 1.0, "short": 0.5}))
    assert name not in _texts(root) and name in _tips(root)[1]
    assert any(text.endswith("…") for text in _texts(root))


def test_bar_chart_svg_shows_every_bar_and_value() -> None:
    values = {"logreg": 0.91, "random_forest": 0.953, "cnn-int8": 0.948, "baseline": -0.05}
    root = _parse(bar_chart_svg(values, title="F1 by model", ylabel="F1 (macro)"))
    texts = _texts(root)
    assert set(values) <= set(texts) and {"0.91", "0.953", "0.948", "-0.05"} <= set(texts)
    assert {"F1 by model", "F1 (macro)"} <= set(texts)
    tilted = _parse(bar_chart_svg({f"model_{i}": i / 10 for i in range(12)}, "many", "score"))
    assert "model_11" in _texts(tilted)


def test_feature_importance_svg_sorts_and_keeps_the_top() -> None:
    importances = {f"acc_x.band_{i}": float(i) for i in range(30)} | {"acc_y.rms": -2.0}
    root = _parse(feature_importance_svg(importances, top=5))
    names = [text for text in _texts(root) if text.startswith("acc_")]
    assert names == [f"acc_x.band_{i}" for i in (29, 28, 27, 26, 25)]
    assert "top 5 of 31 features" in _texts(root)
    assert "acc_y.rms" in _texts(_parse(feature_importance_svg(importances, top=40)))


def test_roc_and_pr_curves_have_one_curve_per_class_with_its_area() -> None:
    y, _, proba = _predictions(n=150, seed=2)
    roc, pr = _parse(roc_curves_svg(y, proba, LABELS)), _parse(pr_curves_svg(y, proba, LABELS))
    assert len(list(roc.iter(f"{SVG}polyline"))) == len(list(pr.iter(f"{SVG}polyline"))) == 3
    for i, label in enumerate(LABELS):
        positive = np.array([v == label for v in y])
        auc = skm.roc_auc_score(positive, proba[:, i])
        ap = skm.average_precision_score(positive, proba[:, i])
        assert f"{label} (AUC {auc:.3f})" in _texts(roc)
        assert f"{label} (AP {ap:.3f})" in _texts(pr)
    for line in roc.iter(f"{SVG}polyline"):
        points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
        assert all(70 <= x <= 450 and 50 <= y <= 430 for x, y in points)


def test_curves_list_a_class_without_samples_in_the_legend() -> None:
    proba = [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1]]
    root = _parse(roc_curves_svg(["idle", "walk", "idle"], proba, LABELS))
    assert "run (no samples)" in _texts(root)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    with pytest.raises(ValidationFailed, match="labels="):
        pr_curves_svg(["idle"], [[0.5, 0.5]], LABELS)


def test_chart_inputs_are_validated() -> None:
    with pytest.raises(ValidationFailed, match="2 x 2"):
        confusion_matrix_svg([[1, 2, 3]], ["a", "b"])
    with pytest.raises(ValidationFailed, match="at least one"):
        bar_chart_svg({}, "t", "y")
    with pytest.raises(ValidationFailed, match="at least one"):
        feature_importance_svg({})
    with pytest.raises(ValidationFailed, match="finite"):
        bar_chart_svg({"a": float("nan")}, "t", "y")
    with pytest.raises(ValidationFailed, match="finite"):
        feature_importance_svg({"a": float("inf")})
