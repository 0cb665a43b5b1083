"""Monitoring windows and references: merge is associative and commutative, serialisation
round-trips, the buffered update equals the batch update, memory per feature is bounded,
and both modules stay device-safe."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring import Reference, WindowSketch, build_reference, probabilities
from edgeloop.monitoring.window import feature_matrix

FAST = settings(max_examples=40, deadline=None)
F, C = 3, 3
RNG = np.random.default_rng(0)
REFERENCE = build_reference(
    RNG.normal(size=(800, F)) * [1.0, 10.0, 0.01],
    ["rms", "peak", "kurtosis"],
    labels=["ok", "worn", "broken"],
    proba=RNG.dirichlet([2, 1, 1], 800),
)

magnitudes = st.floats(min_value=1e-4, max_value=1e5, allow_nan=False)
values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v), st.just(np.nan))
rows = st.lists(st.lists(values, min_size=F, max_size=F), max_size=40)
weights = st.lists(st.floats(min_value=0.01, max_value=10.0), min_size=C, max_size=C)


@st.composite
def windows(draw: st.DrawFn) -> WindowSketch:
    x = np.array(draw(rows), dtype=np.float64).reshape(-1, F)
    p = np.array([draw(weights) for _ in range(x.shape[0])], dtype=np.float64).reshape(-1, C)
    w = REFERENCE.new_window()
    w.update(x, p / p.sum(axis=1, keepdims=True) if p.size else p)
    return w


@FAST
@given(windows(), windows(), windows())
def test_merge_is_associative_and_commutative(
    a: WindowSketch, b: WindowSketch, c: WindowSketch
) -> None:
    assert a.merge(b).almost_equal(b.merge(a))
    assert a.merge(b).merge(c).almost_equal(a.merge(b.merge(c)))
    # exact for everything but float sums: counts, histograms, quantile buckets
    left, right = a.merge(b).merge(c), c.merge(a).merge(b)
    for name in REFERENCE.feature_names:
        assert left.features[name].histogram == right.features[name].histogram
        assert left.features[name].sketch == right.features[name].sketch
    assert left.count == a.count + b.count + c.count


@FAST
@given(windows())
def test_serialisation_round_trips(w: WindowSketch) -> None:
    assert WindowSketch.from_dict(json.loads(json.dumps(w.to_dict()))) == w
    assert WindowSketch.from_bytes(w.to_bytes()) == w


@FAST
@given(rows, st.integers(min_value=1, max_value=7))
def test_buffered_updates_equal_one_batch(data: list[list[float]], step: int) -> None:
    x = np.array(data, dtype=np.float64).reshape(-1, F)
    p = probabilities(np.arange(x.shape[0] * C, dtype=np.float64).reshape(-1, C) % 5)
    whole = REFERENCE.window(x, p)
    pieces = REFERENCE.new_window()
    for i in range(0, x.shape[0], step):
        pieces.update(x[i : i + step], p[i : i + step])
    assert pieces.almost_equal(whole)
    assert pieces.count == x.shape[0]


def test_merge_equals_the_window_of_the_union() -> None:
    x = RNG.normal(size=(1000, F))
    p = RNG.dirichlet([1, 1, 1], 1000)
    parts = [REFERENCE.window(x[i : i + 100], p[i : i + 100]) for i in range(0, 1000, 100)]
    merged = functools.reduce(WindowSketch.merge, parts)
    assert merged.almost_equal(REFERENCE.window(x, p))
    assert merged.prediction is not None and merged.prediction.count == 1000


def test_memory_per_feature_is_bounded_whatever_the_data() -> None:
    """At most 2 * 256 quantile buckets, 21 edges, 22 counts and 64 buffered rows per
    feature: 4,096 + 168 + 176 + 512 = 4,952 bytes of numpy arrays, here with values over
    600 decades of both signs (the worst case for the quantile sketch)."""
    w = REFERENCE.new_window()
    extreme = np.concatenate(
        [10.0 ** RNG.uniform(-300, 300, 20_000), -(10.0 ** RNG.uniform(-300, 300, 20_000))]
    )
    w.update(np.column_stack([extreme] * F))
    for _ in range(100):  # and through the row buffer
        w.update(RNG.normal(size=(3, F)))
    per_feature = (w.nbytes() - w.prediction.counts.nbytes * 2 - w._pred.nbytes * 2) / F
    assert per_feature <= 4952
    assert all(fs.sketch.nbytes() <= 4096 for fs in w.features.values())


def test_python_memory_of_a_window_stays_a_few_kb_per_feature() -> None:
    ref = build_reference(RNG.normal(size=(2000, 20)), None, labels=["a", "b"])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        w = ref.new_window()
        for i in range(2000):
            w.update(RNG.normal(size=(1, 20)) * (1 + i % 7))
        w.flush()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used / 20 < 7 * 1024, used / 20  # measured: 6.3-6.5 KB with both stores full


def test_windows_of_a_window_model() -> None:
    """A 1-D CNN's input (n, length, axes), flat or not, gives one feature per axis."""
    ref = build_reference(RNG.normal(size=(50, 16, 2)), ["x", "y"], labels=["a", "b"])
    flat = RNG.normal(size=(4, 32))
    w = ref.new_window()
    w.update(flat)
    assert w.count == 4 and w.features["x"].count == 64
    assert feature_matrix(flat, 2).shape == (64, 2)
    with pytest.raises(ValidationFailed, match=r"shape \(n, 2\)"):
        w.update(RNG.normal(size=(4, 3)))


def test_probabilities_from_scores() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    p = probabilities(logits, "logits")
    assert np.allclose(p.sum(axis=1), 1.0) and p[0].argmax() == 0
    assert np.allclose(probabilities(np.array([[0.2, 0.8]]), "auto"), [[0.2, 0.8]])
    binary = probabilities(np.array([[0.0], [50.0], [-50.0]]))
    assert np.allclose(binary, [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])


def test_refuses_malformed_and_mismatched_input() -> None:
    w = REFERENCE.new_window()
    with pytest.raises(ValidationFailed, match=r"proba must have shape \(2, 3\)"):
        w.update(np.zeros((2, F)), np.zeros((2, 2)))
    plain = build_reference(np.zeros((5, 1)), ["a"], labels=["x"]).new_window()
    with pytest.raises(ValidationFailed, match="no prediction sketch"):
        plain.update(np.zeros((1, 1)), np.ones((1, 1)))
    with pytest.raises(ValidationFailed, match="differ"):
        w.merge(plain)
    other = build_reference(
        RNG.normal(size=(50, F)),
        REFERENCE.feature_names,
        labels=["a", "b", "c"],
        proba=RNG.dirichlet([1, 1, 1], 50),
    )
    with pytest.raises(ValidationFailed, match="edges differ"):
        w.merge(other.new_window())
    bad = w.to_dict()
    bad["features"]["rms"]["histogram"]["counts"] = [1]
    with pytest.raises(ValidationFailed, match="feature 'rms'"):
        WindowSketch.from_dict(bad)
    big = {"type": "window_sketch", "count": 0, "features": {f"f{i}": {} for i in range(1025)}}
    with pytest.raises(ValidationFailed, match="at most 1024"):
        WindowSketch.from_dict(big)


def test_reference_round_trips_and_makes_matching_windows() -> None:
    again = Reference.from_json(REFERENCE.to_json())
    assert again == REFERENCE
    w = again.new_window()
    for name, fs in w.features.items():
        assert np.array_equal(fs.edges, REFERENCE.features[name].edges)
    assert w.prediction is not None and w.prediction.n_classes == 3
    with pytest.raises(ValidationFailed, match="format"):
        Reference.from_dict({**REFERENCE.to_dict(), "format": "other/9"})
    with pytest.raises(ValidationFailed, match="feature_names"):
        build_reference(np.zeros((3, 2)), ["a"], labels=["x"])


def test_device_modules_import_only_numpy() -> None:
    code = (
        "import sys, edgeloop.monitoring.window, edgeloop.monitoring.reference;"
        "bad = [m for m in ('sqlalchemy', 'pandas', 'pyarrow', 'scipy', 'pydantic') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
