"""Tree ensembles to int16 comparisons and C: the quantized trees agree with scikit-learn,
the generated C is bit-exact with the numpy reference, and bad input is refused."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from edgeloop.edge._ctrees import export_trees_c
from edgeloop.edge.trees import QuantizedTrees, quantize_trees
from edgeloop.errors import ValidationFailed

Split = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[Any], npt.NDArray[Any]]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
CFLAGS = [*STRICT, "-O2"]
HEAP = ("malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign", "sbrk")
# a label that needs every C string escape: quote, backslash, trigraph, non-ASCII
ODD_LABEL = 'ré"\\??=x'


@functools.cache
def digits() -> Split:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    return X_train, X_test, y_train, y_test


@functools.cache
def tabular(n_classes: int) -> Split:
    """Continuous features on very different scales and offsets, string labels."""
    X, y = make_classification(
        n_samples=1500,
        n_features=10,
        n_informative=6,
        n_classes=n_classes,
        random_state=1,
    )
    X = X * np.array([1, 10, 100, 0.01, 1e3, 1, 1, 5, 5, 0.5]) + np.array(
        [0, 1000, 0, 5, 0, -3, 0, -50, 0, 1e4]
    )
    names = np.array(["low", "mid", ODD_LABEL][:n_classes])
    X_train, X_test, y_train, y_test = train_test_split(X, names[y], test_size=0.3, random_state=0)
    return X_train, X_test, y_train, y_test


DATASETS = {"digits": digits, "tabular3": lambda: tabular(3), "tabular2": lambda: tabular(2)}
MODELS = {
    "tree": lambda: DecisionTreeClassifier(random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    "extra": lambda: ExtraTreesClassifier(n_estimators=25, random_state=0),
    "boosting": lambda: GradientBoostingClassifier(n_estimators=15, random_state=0),
    "scaled_forest": lambda: make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=15, random_state=0)
    ),
}


@functools.cache
def fitted(model: str, dataset: str) -> tuple[Any, QuantizedTrees]:
    X_train, _, y_train, _ = DATASETS[dataset]()
    estimator = MODELS[model]().fit(X_train, y_train)
    return estimator, quantize_trees(estimator, X_train)


CASES = [(m, d) for d in DATASETS for m in MODELS]


@pytest.mark.parametrize(("model", "dataset"), CASES)
def test_quantized_trees_agree_with_sklearn(model: str, dataset: str) -> None:
    estimator, trees = fitted(model, dataset)
    _, X_test, _, y_test = DATASETS[dataset]()
    expected = np.array([str(c) for c in estimator.predict(X_test)])
    got = np.array(trees.predict(X_test))
    truth = np.array([str(c) for c in y_test])
    assert np.mean(got == expected) >= 0.99
    assert abs(np.mean(got == truth) - np.mean(expected == truth)) <= 0.01


@pytest.mark.parametrize(("model", "dataset"), [("forest", "digits"), ("boosting", "tabular3")])
def test_scores_track_sklearn(model: str, dataset: str) -> None:
    """Forest scores are the mean probabilities, boosting scores the decision function."""
    estimator, trees = fitted(model, dataset)
    _, X_test, _, _ = DATASETS[dataset]()
    if model == "forest":
        np.testing.assert_allclose(trees.scores(X_test), estimator.predict_proba(X_test), atol=0.01)
    else:
        decision = estimator.decision_function(X_test).reshape(len(X_test), -1)
        same = np.isclose(trees.scores(X_test), decision, atol=1e-4).all(axis=1)
        assert same.mean() >= 0.99  # the rest took another branch within one step


def test_binary_boosting_has_one_logit() -> None:
    estimator, trees = fitted("boosting", "tabular2")
    _, X_test, _, _ = tabular(2)
    assert trees.n_outputs == 1
    assert trees.int_scores(X_test).shape == (len(X_test), 1)
    logit = trees.scores(X_test)[:, 0]
    assert np.mean((logit >= 0) == (estimator.decision_function(X_test) >= 0)) >= 0.99


def test_pipeline_scaler_is_folded_into_raw_thresholds() -> None:
    estimator, trees = fitted("scaled_forest", "tabular3")
    X_train, _, _, _ = tabular(3)
    assert trees.meta["source"] == "standard_scaler+random_forest"
    # every calibration sample takes scikit-learn's branches
    assert trees.predict(X_train) == [str(c) for c in estimator.predict(X_train)]


def test_operations_and_sizes() -> None:
    estimator, trees = fitted("forest", "digits")
    ops = trees.operations()
    assert ops["compare"] == sum(e.get_depth() for e in estimator.estimators_)
    assert ops["add"] == 25 * 10
    assert ops["quantize"] == 64
    assert trees.weight_bytes() == trees.node_bytes() + trees.leaf_bytes() + 8 * 64
    assert trees.leaf_bytes() == sum(e.get_n_leaves() for e in estimator.estimators_) * 10 * 2
    assert trees.arena_bytes() == 2 * 64 + 4 * 10
    boosting, btrees = fitted("boosting", "digits")
    assert btrees.operations()["add"] == 15 * 10
    assert btrees.operations()["compare"] == sum(
        e.get_depth() for e in boosting.estimators_.ravel()
    )


@pytest.mark.parametrize("model", list(MODELS))
def test_bytes_roundtrip(model: str) -> None:
    _, trees = fitted(model, "tabular3")
    again = QuantizedTrees.from_bytes(trees.to_bytes())
    _, X_test, _, _ = tabular(3)
    assert again.labels == trees.labels
    assert again.kind == trees.kind and again.score_scale == trees.score_scale
    for name in QuantizedTrees._ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(trees, name))
        assert getattr(again, name).dtype == getattr(trees, name).dtype
    np.testing.assert_array_equal(again.int_scores(X_test), trees.int_scores(X_test))


def test_from_bytes_refuses_other_formats() -> None:
    with pytest.raises(ValueError, match="format"):
        QuantizedTrees.from_bytes(_npz_with_header(b'{"format": "edgeloop-int8/1"}'))


def _npz_with_header(header: bytes) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(header, np.uint8))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        HistGradientBoostingClassifier(max_iter=3),
        make_pipeline(PCA(2), DecisionTreeClassifier()),
    ],
    ids=["logistic", "hist_gradient_boosting", "pca_pipeline"],
)
def test_unsupported_estimators_are_refused(estimator: Any) -> None:
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    estimator.fit(X, y)
    with pytest.raises(ValidationFailed, match="cannot convert"):
        quantize_trees(estimator, X)


def test_bad_calibration_and_labels_are_refused() -> None:
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValidationFailed, match="NaN") as info:
        quantize_trees(model, bad)
    assert info.value.details["field"] == "X_calib"
    with pytest.raises(ValidationFailed, match="shape"):
        quantize_trees(model, X[:, :3])
    with pytest.raises(ValidationFailed, match="labels"):
        quantize_trees(model, X, labels=["a", "b", "c"])
    with pytest.raises(ValidationFailed, match="not fitted"):
        quantize_trees(RandomForestClassifier(), X)
    trees = quantize_trees(model, X, labels=["no", "yes"])
    assert set(trees.predict(X)) <= {"no", "yes"}
    with pytest.raises(ValueError, match="NaN"):
        trees.predict(bad)


def test_bad_prefix_is_refused() -> None:
    _, trees = fitted("tree", "tabular2")
    with pytest.raises(ValidationFailed, match="prefix"):
        export_trees_c(trees, prefix="9lives")


# ---- the generated C --------------------------------------------------------------------------

HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include "model.h"

/* Reads float32 samples from argv[1]; writes per sample the class, the int32 scores, the
   float scores and the int16 input to argv[2]; then the labels, one per line, to stdout. */
int main(int argc, char **argv)
{
    float x[EDGELOOP_MODEL_INPUT_SIZE];
    float scores[EDGELOOP_MODEL_OUTPUTS];
    int32_t ints[EDGELOOP_MODEL_OUTPUTS];
    int16_t q[EDGELOOP_MODEL_INPUT_SIZE];
    FILE *in;
    FILE *out;
    int i;
    if (argc != 3 || edgeloop_model_init() != EDGELOOP_OK) {
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        return 2;
    }
    while (fread(x, sizeof x[0], EDGELOOP_MODEL_INPUT_SIZE, in) == EDGELOOP_MODEL_INPUT_SIZE) {
        int32_t label = edgeloop_model_predict_class(x);
        if (label < 0 || edgeloop_model_predict(x, scores) != EDGELOOP_OK
            || edgeloop_model_predict_int(x, ints) != EDGELOOP_OK
            || edgeloop_model_quantize_input(x, q) != EDGELOOP_OK) {
            return 3;
        }
        fwrite(&label, sizeof label, 1, out);
        fwrite(ints, sizeof ints[0], EDGELOOP_MODEL_OUTPUTS, out);
        fwrite(scores, sizeof scores[0], EDGELOOP_MODEL_OUTPUTS, out);
        fwrite(q, sizeof q[0], EDGELOOP_MODEL_INPUT_SIZE, out);
    }
    fclose(in);
    fclose(out);
    x[0] = NAN;
    if (edgeloop_model_predict_class(x) != EDGELOOP_ERR_INPUT
        || edgeloop_model_predict(x, scores) != EDGELOOP_ERR_INPUT
        || edgeloop_model_predict(NULL, scores) != EDGELOOP_ERR_NULL
        || edgeloop_model_predict(x, NULL) != EDGELOOP_ERR_NULL
        || edgeloop_model_label(-1) != NULL
        || edgeloop_model_label(EDGELOOP_MODEL_CLASSES) != NULL) {
        return 4;
    }
    for (i = 0; i < EDGELOOP_MODEL_CLASSES; ++i) {
        printf("%s\n", edgeloop_model_label(i));
    }
    return 0;
}
"""


def _probe_inputs(trees: QuantizedTrees, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Test samples, then inputs at the edges of the quantization: infinities, huge values,
    each feature's offset and the float32 neighbours of thresholds."""
    n = trees.n_features
    rng = np.random.default_rng(0)
    extremes = np.array([np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0], dtype=np.float32)
    edges = [np.tile(v, (1, n)) for v in extremes]
    edges.append(trees.feature_offset[None, :])
    steps = trees.feature_offset + trees.feature_scale * rng.integers(-33000, 33000, (50, n))
    near = steps.astype(np.float32)
    near[::2] = np.nextafter(near[::2], np.float32(np.inf))
    return np.concatenate([X.astype(np.float32), *edges, near]).astype(np.float32)


def _run_harness(
    trees: QuantizedTrees, X: npt.NDArray[np.float32], build: Path
) -> tuple[npt.NDArray[Any], list[str]]:
    for name, data in export_trees_c(trees).items():
        (build / name).write_bytes(data)
    (build / "harness.c").write_text(HARNESS)
    subprocess.run(
        ["gcc", *CFLAGS, "-c", "-o", str(build / "model.o"), str(build / "model.c")],
        check=True,
        capture_output=True,
        text=True,
    )
    symbols = subprocess.run(
        ["nm", "-u", str(build / "model.o")], check=True, capture_output=True, text=True
    ).stdout
    assert not [s for s in symbols.split() if s in HEAP], symbols
    objects = [str(build / "harness.c"), str(build / "model.o"), "-lm"]
    subprocess.run(["gcc", *CFLAGS, "-o", str(build / "harness"), *objects], check=True)
    X.tofile(build / "in.bin")
    run = subprocess.run(
        [str(build / "harness"), str(build / "in.bin"), str(build / "out.bin")],
        check=True,
        capture_output=True,
    )
    record = np.dtype(
        [
            ("label", "<i4"),
            ("ints", "<i4", (trees.n_outputs,)),
            ("scores", "<f4", (trees.n_outputs,)),
            ("q", "<i2", (trees.n_features,)),
        ]
    )
    out = np.frombuffer((build / "out.bin").read_bytes(), record)
    return out, run.stdout.decode("utf-8").splitlines()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler")
@pytest.mark.parametrize(("model", "dataset"), CASES)
def test_c_is_bit_exact_with_the_reference(model: str, dataset: str, tmp_path: Path) -> None:
    _, trees = fitted(model, dataset)
    _, X_test, _, _ = DATASETS[dataset]()
    X = _probe_inputs(trees, X_test)
    out, labels = _run_harness(trees, X, tmp_path)
    assert len(out) == len(X)
    np.testing.assert_array_equal(out["q"], trees.quantize_input(X))
    np.testing.assert_array_equal(out["label"], trees.predict_index(X))
    np.testing.assert_array_equal(out["ints"], trees.int_scores(X))
    np.testing.assert_array_equal(out["scores"].view(np.uint32), trees.scores(X).view(np.uint32))
    assert labels == list(trees.labels)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("model", ["forest", "boosting"])
def test_c_builds_for_cortex_m4(model: str, tmp_path: Path) -> None:
    _, trees = fitted(model, "tabular3")
    for name, data in export_trees_c(trees, prefix="board").items():
        (tmp_path / name).write_bytes(data)
    files = ["-o", str(tmp_path / "model.o"), str(tmp_path / "model.c")]
    result = subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-Os", *STRICT, "-c", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    header = (tmp_path / "model.h").read_text()
    assert "int board_model_predict(const float *input, float *scores);" in header
    assert "#define BOARD_MODEL_INPUT_SIZE 10" in header


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler")
@pytest.mark.parametrize(
    "estimator",
    [DecisionTreeClassifier(), GradientBoostingClassifier(n_estimators=3)],
    ids=["tree", "boosting"],
)
def test_single_leaf_trees(estimator: Any, tmp_path: Path) -> None:
    """Constant features give trees without a node; a zero logit is class 1, as sklearn."""
    X = np.full((10, 3), 2.5)
    estimator.fit(X, np.array(["a", "b"] * 5))
    trees = quantize_trees(estimator, X)
    assert trees.feature.size == 0 and trees.operations()["compare"] == 0
    assert trees.predict(X) == list(estimator.predict(X))
    out, labels = _run_harness(trees, X.astype(np.float32), tmp_path)
    np.testing.assert_array_equal(out["label"], trees.predict_index(X))
    np.testing.assert_array_equal(out["ints"], trees.int_scores(X))
    assert labels == ["a", "b"]
