"""Drift from sketches: binned KS and sketch Wasserstein stay within their stated error
bounds of the exact statistics, close to them on fine bins; categorical counters and
prediction sketches; the same default choice as on samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.drift import feature_drift, kolmogorov_smirnov, normalized_wasserstein
from edgeloop.monitoring.sketch import (
    CategoryCounter,
    FeatureSketch,
    Histogram,
    PredictionSketch,
    reference_edges,
)

FAST = settings(max_examples=40, deadline=None)
magnitudes = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v))
arrays = st.lists(values, min_size=1, max_size=80).map(lambda xs: np.array(xs))


def sketches(
    ref: np.ndarray, cur: np.ndarray, bins: int = 20
) -> tuple[FeatureSketch, FeatureSketch]:
    edges = reference_edges(ref, bins)
    a, b = FeatureSketch(edges), FeatureSketch(edges)
    a.update(ref)
    b.update(cur)
    return a, b


@FAST
@given(arrays, arrays, st.sampled_from([1, 5, 20]))
def test_sketch_ks_brackets_the_exact_statistic(
    ref: np.ndarray, cur: np.ndarray, bins: int
) -> None:
    a, b = sketches(ref, cur, bins)
    out = feature_drift(a, b, test="ks")
    exact, _ = kolmogorov_smirnov(ref, cur)
    assert out.error_bound is not None
    assert out.statistic - 1e-12 <= exact <= out.statistic + out.error_bound + 1e-12


@FAST
@given(arrays, arrays, st.sampled_from([1, 5, 20]))
def test_sketch_wasserstein_is_within_its_bound(
    ref: np.ndarray, cur: np.ndarray, bins: int
) -> None:
    a, b = sketches(ref, cur, bins)
    out = feature_drift(a, b, test="wasserstein")
    exact = normalized_wasserstein(ref, cur)
    assert out.error_bound is not None
    assert abs(out.statistic - exact) <= out.error_bound * (1 + 1e-9) + 1e-9 * max(1.0, exact)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("normal", lambda g, s: g.normal(s, 1, 200_000)),
        ("lognormal", lambda g, s: g.lognormal(s, 1, 200_000)),
        ("large magnitude", lambda g, s: g.normal(1e6 + s * 1e5, 1e5, 200_000)),
    ],
)
def test_sketch_wasserstein_is_close_on_real_sizes(name: str, make: object) -> None:
    g = np.random.default_rng(7)
    for shift in (0.0, 0.3):
        ref, cur = make(g, 0.0), make(g, shift)  # type: ignore[operator]
        a, b = sketches(ref, cur)
        out = feature_drift(a, b)
        exact = normalized_wasserstein(ref, cur)
        assert out.test == "wasserstein"
        assert abs(out.statistic - exact) < 0.01, name  # the bound itself is looser (~0.2 max)
        assert out.drifted == (exact >= 0.1)


def test_binned_ks_on_fine_bins_is_close_to_exact() -> None:
    g = np.random.default_rng(8)
    ref, cur = g.normal(0, 1, 50_000), g.normal(0.03, 1, 40_000)
    edges = np.linspace(-6, 6, 2001)
    a, b = Histogram(edges), Histogram(edges)
    a.update(ref)
    b.update(cur)
    out = feature_drift(a, b, test="ks")
    exact, p = kolmogorov_smirnov(ref, cur)
    assert out.error_bound is not None and out.error_bound < 0.01
    assert out.statistic <= exact <= out.statistic + out.error_bound
    assert abs(out.statistic - exact) < 0.003
    assert out.p_value is not None and out.p_value == pytest.approx(p, rel=0.5)


def test_histogram_wasserstein_on_fine_bins() -> None:
    g = np.random.default_rng(9)
    ref, cur = g.uniform(0, 1, 100_000), g.uniform(0.05, 1.05, 100_000)
    edges = np.linspace(-0.5, 1.5, 4001)  # nothing in the outer bins: a finite bound
    a, b = Histogram(edges), Histogram(edges)
    a.update(ref)
    b.update(cur)
    out = feature_drift(a, b, test="wasserstein")
    exact = normalized_wasserstein(ref, cur)
    assert out.error_bound is not None and math.isfinite(out.error_bound)
    assert abs(out.statistic - exact) < 0.003
    b.update([100.0])  # mass in the overflow bin: no bound any more
    assert feature_drift(a, b, test="wasserstein").error_bound == math.inf


def test_sketch_defaults_follow_the_row_count() -> None:
    g = np.random.default_rng(10)
    assert feature_drift(*sketches(g.normal(0, 1, 1000), g.normal(0, 1, 300))).test == "ks"
    assert feature_drift(*sketches(g.normal(0, 1, 1001), g.normal(0, 1, 300))).test == (
        "wasserstein"
    )


@pytest.mark.parametrize("rows", [800, 5000])
def test_few_valued_numeric_sketch_compares_values_like_samples(rows: int) -> None:
    g = np.random.default_rng(11)
    ref = g.choice([0.0, 1.0, 2.0], rows, p=[0.5, 0.3, 0.2])
    cur = g.choice([0.0, 1.0, 2.0], 600, p=[0.4, 0.3, 0.3])
    on_sketch, on_samples = feature_drift(*sketches(ref, cur)), feature_drift(ref, cur)
    assert on_sketch.test == on_samples.test == ("chisquare" if rows <= 1000 else "jensenshannon")
    assert on_sketch.statistic == pytest.approx(on_samples.statistic, rel=1e-12)
    assert on_sketch.drifted == on_samples.drifted


def test_merged_device_windows_give_the_same_drift() -> None:
    g = np.random.default_rng(12)
    ref, cur = g.normal(0, 1, 20_000), g.normal(0.2, 1, 9_000)
    a, whole = sketches(ref, cur)
    parts = [FeatureSketch(a.edges) for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(cur, 3), strict=True):
        part.update(chunk)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert feature_drift(a, merged) == feature_drift(a, whole)


def test_category_counters_match_samples() -> None:
    g = np.random.default_rng(13)
    words = np.array(["red", "green", "blue", "grey"])
    ref, cur = words[g.integers(0, 4, 700)], words[g.choice(4, 900, p=[0.4, 0.3, 0.2, 0.1])]
    a, b = CategoryCounter(), CategoryCounter()
    a.update(ref)
    b.update(cur)
    for test in ("chisquare", "jensenshannon", "psi"):
        on_counts, on_samples = feature_drift(a, b, test=test), feature_drift(ref, cur, test=test)
        assert on_counts.statistic == pytest.approx(on_samples.statistic, rel=1e-12)
        assert on_counts.error_bound == 0.0
    assert feature_drift(a, b).test == "chisquare"
    small_a, small_b = CategoryCounter(max_categories=2), CategoryCounter(max_categories=2)
    small_a.update(ref)
    small_b.update(cur)
    assert feature_drift(small_a, small_b).error_bound is None  # approximate counts
    with pytest.raises(ValidationFailed, match="does not apply"):
        feature_drift(a, b, test="wasserstein")


def test_prediction_distribution_drift() -> None:
    g = np.random.default_rng(14)
    a, b = PredictionSketch(3), PredictionSketch(3)
    a.update(g.dirichlet([5, 3, 2], 4000))
    b.update(g.dirichlet([2, 3, 5], 4000))
    out = feature_drift(a, b)
    assert (out.test, out.drifted) == ("jensenshannon", True)
    same = PredictionSketch(3)
    same.update(g.dirichlet([5, 3, 2], 4000))
    assert not feature_drift(a, same).drifted
    with pytest.raises(ValidationFailed, match="n_classes"):
        feature_drift(a, PredictionSketch(2))


def test_sketch_edge_cases() -> None:
    g = np.random.default_rng(15)
    a, _ = sketches(g.normal(0, 1, 2000), g.normal(0, 1, 2000))
    with pytest.raises(ValidationFailed, match="current window holds no value"):
        feature_drift(a, FeatureSketch(a.edges))
    with pytest.raises(ValidationFailed, match="share their edges"):
        feature_drift(a, FeatureSketch([0.0, 1.0]))
    with pytest.raises(ValidationFailed, match="same form"):
        feature_drift(a, np.zeros(3))
    nan_only = FeatureSketch(a.edges)
    nan_only.update([math.nan] * 10)
    with pytest.raises(ValidationFailed, match="current window"):
        feature_drift(a, nan_only)
    const = FeatureSketch(reference_edges(np.full(3000, 2.0)))
    const.update(np.full(3000, 2.0))
    other = FeatureSketch(const.edges)
    other.update(np.full(500, 2.0))
    out = feature_drift(const, other, test="wasserstein")
    assert (out.statistic, out.drifted) == (0.0, False)
