"""Drift statistics on samples and counts: every one against scipy (which Evidently calls),
Evidently's default test choice and drift rules, dataset drift, edge cases, device purity."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

import edgeloop.errors as errors_module
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.drift import (
    TESTS,
    FeatureDrift,
    chi_square,
    choose_test,
    dataset_drift,
    drift_by_feature,
    feature_drift,
    jensen_shannon_distance,
    kolmogorov_smirnov,
    ks_p_value,
    normalized_wasserstein,
    population_stability_index,
    wasserstein_distance,
    z_test,
)

FAST = settings(max_examples=60, deadline=None)
samples = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=60
).map(lambda xs: np.array(xs))
small_ints = st.lists(st.integers(-3, 3), min_size=1, max_size=60).map(
    lambda xs: np.array(xs, dtype=np.float64)
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- KS


@pytest.mark.parametrize("n", [1, 2, 7, 50, 140, 141, 1000, 20_000, 100_001, 400_000])
def test_ks_p_value_is_kstwo_at_the_effective_size(n: int) -> None:
    """The asymptotic p-value: scipy's kstwo.sf(d, round(n1 n2 / (n1 + n2))), every regime of
    its algorithm (Ruben-Gambino, Durbin matrix, Pomeranz, Pelz-Good, 2 x Smirnov)."""
    scale = 1.0 / math.sqrt(n)
    grid = [0.3 * scale, 0.8 * scale, 1.2 * scale, 1.36 * scale, 1.6 * scale, 2.5 * scale]
    grid += [0.3, 0.55, 0.9] if n < 1000 else []
    for d in grid:
        d = min(d, 0.999)
        assert ks_p_value(d, 2 * n, 2 * n) == pytest.approx(stats.kstwo.sf(d, n), abs=1e-9)


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "decimals"),
    [(30, 20, 0.5, 9), (1000, 1000, 0.1, 9), (5000, 3000, 0.05, 1), (20_000, 15_000, 0.02, 9)],
)
def test_kolmogorov_smirnov_matches_ks_2samp_asymp(
    n1: int, n2: int, shift: float, decimals: int
) -> None:
    g = rng(n1)
    a = np.round(g.normal(0, 1, n1), decimals)  # decimals=1: many ties
    b = np.round(g.normal(shift, 1, n2), decimals)
    d, p = kolmogorov_smirnov(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, abs=1e-9)


@FAST
@given(samples, samples)
def test_kolmogorov_smirnov_property(a: np.ndarray, b: np.ndarray) -> None:
    assume(a.size + b.size > 2)  # 1 vs 1: scipy's effective size rounds to 0 (NaN); ours to 1
    d, p = kolmogorov_smirnov(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, abs=1e-9)


# --------------------------------------------------------------------------- Wasserstein


@FAST
@given(st.one_of(samples, small_ints), st.one_of(samples, small_ints))
def test_wasserstein_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    expected = stats.wasserstein_distance(a, b)
    assert wasserstein_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    norm = max(float(np.std(a)), 0.001)  # Evidently: W1 / max(np.std(reference), 0.001)
    assert normalized_wasserstein(a, b) == pytest.approx(expected / norm, rel=1e-9, abs=1e-9)


def test_wasserstein_on_large_samples() -> None:
    g = rng(1)
    a, b = g.lognormal(0, 1, 200_000), g.lognormal(0.1, 1.2, 150_000)
    assert wasserstein_distance(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


# --------------------------------------------------------------------------- chi-squared


@pytest.mark.parametrize("k", [2, 3, 10, 200, 5000])
def test_chi_square_matches_scipy(k: int) -> None:
    g = rng(k)
    shares = g.dirichlet(np.ones(k))
    ref = g.multinomial(100 * k, shares) + 1
    for tilt in (0.0, 0.02, 0.3):  # from no drift to p-values near 0
        cur = g.multinomial(60 * k, (1 - tilt) * shares + tilt * g.dirichlet(np.ones(k))) + 1
        stat, p = chi_square(ref, cur)
        want = stats.chisquare(cur, ref * cur.sum() / ref.sum())  # what Evidently computes
        assert stat == pytest.approx(want.statistic, rel=1e-12)
        assert p == pytest.approx(want.pvalue, rel=1e-8, abs=1e-300)


def test_chi_square_far_tail_and_edge_cases() -> None:
    stat, p = chi_square([1000, 1000, 1000], [10, 10, 2980])
    assert p == pytest.approx(stats.chi2.sf(stat, 2), rel=1e-9) or p == 0.0
    assert chi_square([5, 5], [5, 5]) == (0.0, 1.0)
    assert chi_square([7], [3]) == (0.0, 1.0)  # one category: no degrees of freedom
    assert chi_square([5, 0], [5, 1]) == (math.inf, 0.0)  # a value the reference never saw


def test_z_test_matches_evidentlys_formula() -> None:
    ref, cur = np.array([700, 300]), np.array([640, 360])
    n1, n2 = ref.sum(), cur.sum()
    p1, p2 = ref[1] / n1, cur[1] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    got_z, got_p = z_test(ref, cur)
    assert got_z == pytest.approx(z, rel=1e-12)
    assert got_p == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), rel=1e-9)
    assert z_test([10, 0], [4, 0]) == (0.0, 1.0)  # one value, the same on both sides
    with pytest.raises(ValidationFailed, match="2 categories"):
        z_test([1, 2, 3], [1, 2, 3])


# --------------------------------------------------------------------------- JS and PSI


@FAST
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=12).flatmap(
        lambda r: st.tuples(
            st.just(r), st.lists(st.integers(0, 50), min_size=len(r), max_size=len(r))
        )
    )
)
def test_jensen_shannon_matches_scipy(pair: tuple[list[int], list[int]]) -> None:
    r, c = np.array(pair[0]), np.array(pair[1])
    if r.sum() == 0 or c.sum() == 0:
        return
    assert jensen_shannon_distance(r, c, base=None) == pytest.approx(
        distance.jensenshannon(r, c), abs=1e-12
    )
    assert jensen_shannon_distance(r, c) == pytest.approx(
        distance.jensenshannon(r, c, base=2), abs=1e-12
    )


def test_psi_and_its_empty_bin_floor() -> None:
    r, c = np.array([50, 30, 20]), np.array([40, 30, 30])
    rs, cs = r / r.sum(), c / c.sum()
    assert population_stability_index(r, c) == pytest.approx(np.sum((cs - rs) * np.log(cs / rs)))
    assert math.isfinite(population_stability_index([10, 0], [0, 10]))


# --------------------------------------------------------------------------- test choice


@pytest.mark.parametrize(
    ("kind", "rows", "unique", "expected"),
    [
        ("numeric", 1000, None, "ks"),
        ("numeric", 1001, None, "wasserstein"),
        ("numeric", 1000, 5, "chisquare"),
        ("numeric", 1000, 2, "z"),
        ("numeric", 50_000, 5, "jensenshannon"),
        ("numeric", 50_000, 6, "wasserstein"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("categorical", 1000, None, "chisquare"),
        ("categorical", 1001, 2, "jensenshannon"),
    ],
)
def test_choose_test_follows_evidently(
    kind: str, rows: int, unique: int | None, expected: str
) -> None:
    assert choose_test(kind, rows, unique) == expected  # type: ignore[arg-type]


def test_defaults_follow_the_reference_row_count() -> None:
    g = rng(2)
    cur = g.normal(0, 1, 500)
    assert feature_drift(g.normal(0, 1, 1000), cur).test == "ks"
    assert feature_drift(g.normal(0, 1, 1001), cur).test == "wasserstein"
    assert feature_drift(g.integers(0, 4, 800), g.integers(0, 4, 800)).test == "chisquare"
    assert feature_drift(g.integers(0, 2, 800), g.integers(0, 2, 800)).test == "z"
    assert feature_drift(g.integers(0, 4, 5000), g.integers(0, 4, 800)).test == "jensenshannon"
    words = np.array(["a", "b", "c"])
    assert feature_drift(words[g.integers(0, 3, 900)], words[g.integers(0, 3, 90)]).test == (
        "chisquare"
    )
    assert feature_drift(words[g.integers(0, 3, 9000)], ["a", "b"]).test == "jensenshannon"


def test_thresholds_and_rules_match_evidently() -> None:
    assert {n: (t.default_threshold, t.drifted_when) for n, t in TESTS.items()} == {
        "ks": (0.05, "<="),
        "wasserstein": (0.1, ">="),
        "chisquare": (0.05, "<"),
        "z": (0.05, "<"),
        "jensenshannon": (0.1, ">="),
        "psi": (0.1, ">="),
    }
    assert TESTS["ks"].is_drift(0.05, 0.05) and not TESTS["chisquare"].is_drift(0.05, 0.05)
    assert TESTS["wasserstein"].is_drift(0.1, 0.1)


def test_overriding_test_and_threshold() -> None:
    g = rng(3)
    ref, cur = g.normal(0, 1, 5000), g.normal(0.15, 1, 5000)
    default = feature_drift(ref, cur)
    assert (default.test, default.drifted) == ("wasserstein", True)
    assert not feature_drift(ref, cur, threshold=0.2).drifted
    ks = feature_drift(ref, cur, test="ks", threshold=1e-30)
    assert ks.p_value is not None and ks.score == ks.p_value and ks.threshold == 1e-30
    assert ks.drifted == (ks.p_value <= 1e-30)
    js = feature_drift(ref, cur, test="jensenshannon")
    edges = np.histogram_bin_edges(np.concatenate((ref, cur)), bins="sturges")  # Evidently's bins
    want = distance.jensenshannon(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0])
    assert js.statistic == pytest.approx(want, abs=1e-12)
    psi = feature_drift(ref, cur, test="psi")
    assert psi.p_value is None and psi.drifted == (psi.statistic >= 0.1)
    with pytest.raises(ValidationFailed, match="unknown drift test"):
        feature_drift(ref, cur, test="anderson")
    with pytest.raises(ValidationFailed, match="does not apply to categorical"):
        feature_drift(["a", "b"], ["a"], test="ks")


# --------------------------------------------------------------------------- dataset drift


def _result(drifted: bool) -> FeatureDrift:
    return FeatureDrift("wasserstein", 0.2 if drifted else 0.0, 0.1, drifted, None, 10, 10)


def test_dataset_drift_share() -> None:
    results = {"a": _result(True), "b": _result(True), "c": _result(False), "d": _result(False)}
    out = dataset_drift(results)
    assert (out.drifted_features, out.share, out.drifted, out.n_features) == (
        ("a", "b"),
        0.5,
        True,
        4,
    )
    assert not dataset_drift(results, share=0.6).drifted
    assert dataset_drift({"a": _result(False)}, share=0.0).drifted
    with pytest.raises(ValidationFailed):
        dataset_drift({})
    with pytest.raises(ValidationFailed):
        dataset_drift(results, share=1.5)


def test_drift_by_feature_with_per_feature_overrides() -> None:
    g = rng(4)
    ref = {"x": g.normal(0, 1, 3000), "y": g.normal(0, 1, 3000)}
    cur = {"x": g.normal(1, 1, 3000), "y": g.normal(0, 1, 3000), "extra": [1.0]}
    out = drift_by_feature(ref, cur, tests={"y": "ks"}, thresholds={"x": 2.0})
    assert (out["x"].test, out["x"].drifted) == ("wasserstein", False)
    assert out["y"].test == "ks"
    with pytest.raises(ValidationFailed, match="lacks features"):
        drift_by_feature(ref, {"x": cur["x"]})
    with pytest.raises(ValidationFailed, match="not in the reference"):
        drift_by_feature(ref, cur, tests={"z": "ks"})


# --------------------------------------------------------------------------- edge cases


def test_empty_current_window_is_a_clear_error() -> None:
    with pytest.raises(ValidationFailed, match="current window holds no value"):
        feature_drift(np.arange(10.0), [])
    with pytest.raises(ValidationFailed, match="current window holds no value"):
        feature_drift(np.arange(10.0), [math.nan, math.inf])
    with pytest.raises(ValidationFailed, match="reference holds no value"):
        feature_drift([], [1.0])
    with pytest.raises(ValidationFailed, match="current window"):
        feature_drift(["a"], [None])


def test_constant_reference_divides_by_evidentlys_floor() -> None:
    """std 0: W1 is divided by 0.001 (feature units), as Evidently does. By default a constant
    feature has few values, so it gets Jensen-Shannon over its values instead."""
    ref = np.full(5000, 5.0)
    assert feature_drift(ref, np.full(3000, 5.0)).test == "jensenshannon"
    same = feature_drift(ref, np.full(3000, 5.0), test="wasserstein")
    assert (same.statistic, same.drifted) == (0.0, False)
    moved = feature_drift(ref, np.full(3000, 5.0002), test="wasserstein")  # W1 = 2e-4 units
    assert moved.statistic == pytest.approx(0.2) and moved.drifted
    tiny = feature_drift(ref, np.full(3000, 5.00005), test="wasserstein")
    assert tiny.statistic == pytest.approx(0.05) and not tiny.drifted
    assert feature_drift(ref, np.full(3000, 5.0002)).drifted  # Jensen-Shannon: a new value


def test_unseen_categories_are_drift() -> None:
    ref = ["a"] * 500 + ["b"] * 400 + [None] * 50
    cur = ["a"] * 300 + ["b"] * 300 + ["new"] * 10
    chi = feature_drift(ref, cur)
    assert (chi.test, chi.statistic, chi.p_value, chi.drifted) == ("chisquare", math.inf, 0.0, True)
    assert chi.reference_rows == 900  # None is left out
    js = feature_drift(ref, cur, test="jensenshannon")
    want = distance.jensenshannon([500, 400, 0], [300, 300, 10])
    assert js.statistic == pytest.approx(want, abs=1e-12)
    gone = feature_drift(ref, ["a"] * 100)  # a category disappearing is finite drift
    assert gone.drifted and math.isfinite(gone.statistic)


def test_kind_of_samples() -> None:
    with_none = feature_drift([1.0, None, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 2, None, 9])
    assert (with_none.test, with_none.reference_rows, with_none.current_rows) == ("ks", 6, 3)
    assert feature_drift([True, False] * 10, [True] * 5).test == "z"  # booleans: categories
    as_categories = feature_drift([1, 2, 3] * 10, [1, 2, 4] * 5, kind="categorical")
    assert as_categories.test == "chisquare" and as_categories.p_value == 0.0
    with pytest.raises(ValidationFailed, match="must be numbers"):
        feature_drift(["a", "b"], ["a"], kind="numeric")


def test_feature_drift_to_dict_is_json() -> None:
    out = feature_drift(["a", "b"] * 10, ["c"] * 5).to_dict()
    assert json.loads(json.dumps(out))["statistic"] == "inf"


def test_drift_imports_only_numpy_and_the_standard_library() -> None:
    """On a device: loading the drift module pulls in no scipy, pandas, pyarrow or server."""
    src = Path(errors_module.__file__).resolve().parent
    code = f"""
import sys, types
pkg = types.ModuleType("edgeloop"); pkg.__path__ = [{str(src)!r}]
sys.modules["edgeloop"] = pkg
import edgeloop.monitoring.drift
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               {{"pandas", "pyarrow", "sqlalchemy", "fastapi", "pydantic", "sklearn", "scipy"}})
print(heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
