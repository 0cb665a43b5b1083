"""Mergeable sketches: merge == sketch of the union, associativity, commutativity, quantile
error bounds, ``add`` == ``update``, exact serialisation round-trips, device-side purity."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeloop.errors as errors_module
from edgeloop.errors import ValidationFailed
from edgeloop.monitoring.sketch import (
    DEFAULT_EDGES,
    CategoryCounter,
    FeatureSketch,
    Histogram,
    NumericSummary,
    PredictionSketch,
    QuantileSketch,
    edges_from_points,
    reference_edges,
)

FAST = settings(max_examples=60, deadline=None)
ALPHA = 0.01
EDGES = [-100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0]

# Values with negatives, exact zeros and magnitudes over 9 decades (the quantile sketch's
# default 2048 buckets per sign cover ~17 decades, so nothing folds).
magnitudes = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v))
arrays = st.lists(values, max_size=120).map(lambda xs: np.array(xs, dtype=np.float64))
with_nan = st.lists(st.one_of(values, st.just(math.nan)), max_size=120).map(
    lambda xs: np.array(xs, dtype=np.float64)
)
words = st.sampled_from([f"v{i}" for i in range(12)])


def lower_quantile(x: np.ndarray, q: float) -> float:
    """The documented definition: rank floor(q * (n - 1)) of the sorted values."""
    return float(np.sort(x)[math.floor(q * (x.size - 1))])


def roundtrip(obj: Any) -> tuple[Any, Any]:
    cls = type(obj)
    via_json = cls.from_dict(json.loads(json.dumps(obj.to_dict())))
    via_bytes = cls.from_bytes(obj.to_bytes())
    return via_json, via_bytes


# --------------------------------------------------------------------------- Histogram


def hist_of(x: np.ndarray, edges: list[float] = EDGES) -> Histogram:
    h = Histogram(edges)
    h.update(x)
    return h


@FAST
@given(with_nan, with_nan, with_nan)
def test_histogram_merge_is_the_union_associative_and_commutative(
    a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> None:
    ha, hb, hc = hist_of(a), hist_of(b), hist_of(c)
    assert ha.merge(hb) == hist_of(np.concatenate([a, b]))
    assert ha.merge(hb) == hb.merge(ha)
    assert ha.merge(hb).merge(hc) == ha.merge(hb.merge(hc))
    expected = np.bincount(
        np.searchsorted(EDGES, a[~np.isnan(a)], side="right"), minlength=len(EDGES) + 1
    )
    assert ha.counts.tolist() == expected.tolist()


@FAST
@given(with_nan)
def test_histogram_add_equals_update_and_roundtrips(x: np.ndarray) -> None:
    one = Histogram(EDGES)
    for v in x.tolist():
        one.add(v)
    assert one == hist_of(x)
    for back in roundtrip(one):
        assert back == one


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(1).normal(size=50_000),
        np.random.default_rng(2).lognormal(0, 2, 50_000),
        np.random.default_rng(3).pareto(0.5, 50_000),
        np.random.default_rng(4).integers(0, 5, 50_000).astype(float),
        np.concatenate([np.random.default_rng(5).normal(size=20_000), [np.inf, -np.inf]]),
    ],
    ids=["normal", "lognormal", "pareto", "integers", "infinities"],
)
def test_histogram_big_updates_bin_exactly_like_searchsorted(data: np.ndarray) -> None:
    finite = data[np.isfinite(data)]
    for edges in (reference_edges(finite), reference_edges(finite, 300), np.unique(finite[:40])):
        h = Histogram(edges)
        h.update(np.concatenate([data, edges, np.nextafter(edges, -np.inf)]))  # edge values too
        ref = np.concatenate([data, edges, np.nextafter(edges, -np.inf)])
        expected = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
        assert h.counts.tolist() == expected.tolist()


def test_histogram_bins_nan_and_infinities() -> None:
    h = hist_of(np.array([np.nan, -np.inf, np.inf, -100.0, 100.0, 0.0]))
    assert h.total == 5
    assert h.counts[0] == 1  # -inf
    assert h.counts[-1] == 2  # +inf and 100 (the last edge, bins are [a, b))
    assert h.counts[5] == 1  # 0.0 in [0, 0.1)


def test_histogram_merge_needs_identical_edges() -> None:
    with pytest.raises(ValidationFailed, match="index 2"):
        Histogram([0.0, 1.0, 2.0]).merge(Histogram([0.0, 1.0, 3.0]))
    with pytest.raises(ValidationFailed, match="3 edges vs 2"):
        Histogram([0.0, 1.0, 2.0]).merge(Histogram([0.0, 1.0]))


@pytest.mark.parametrize(
    "edges", [[1.0], [], [0.0, 0.0], [1.0, 0.0], [0.0, math.inf], [0.0, math.nan]]
)
def test_histogram_rejects_bad_edges(edges: list[float]) -> None:
    with pytest.raises(ValidationFailed):
        Histogram(edges)


def test_from_reference_edges() -> None:
    x = np.random.default_rng(0).normal(size=10_000)
    h = Histogram.from_reference(x, bins=10)
    assert h.edges.size == 11
    assert h.counts[0] == h.counts[-1] == 0  # the maximum falls in the last bin
    assert h.counts[1:-1].min() >= 990
    u = Histogram.from_reference(x, bins=4, strategy="uniform")
    assert np.allclose(np.diff(u.edges), np.diff(u.edges)[0])
    # constant, empty and NaN-only references give valid degenerate histograms
    assert Histogram.from_reference(np.full(5, 3.0)).edges.tolist() == [2.5, 3.5]
    assert Histogram.from_reference(np.array([])).edges.tolist() == list(DEFAULT_EDGES)
    assert Histogram.from_reference(np.array([np.nan])).total == 0
    # a heavy maximum gets a bin of its own: 0/1 data keeps its two values apart
    flags = Histogram.from_reference(np.array([0.0] * 70 + [1.0] * 30))
    assert flags.counts[1:-1].tolist() == [70, 30]
    with pytest.raises(ValidationFailed):
        Histogram.from_reference(x, strategy="log")  # type: ignore[arg-type]
    assert edges_from_points([5.0, 1.0, 3.0]).tolist()[:2] == [1.0, 3.0]


# --------------------------------------------------------------------------- QuantileSketch


def qs_of(x: np.ndarray, **kw: Any) -> QuantileSketch:
    s = QuantileSketch(**kw)
    s.update(x)
    return s


@FAST
@given(arrays.filter(lambda x: x.size > 0), st.lists(st.floats(0, 1), min_size=1, max_size=9))
def test_quantile_error_is_within_relative_accuracy(x: np.ndarray, qs: list[float]) -> None:
    s = qs_of(x)
    assert s.count == x.size
    est = s.quantiles(qs)
    for q, e in zip(qs, est.tolist(), strict=True):
        v = lower_quantile(x, q)
        assert v == float(np.quantile(x, q, method="lower"))
        assert abs(e - v) <= ALPHA * abs(v) * (1 + 1e-9), (q, e, v)


@FAST
@given(arrays, arrays, arrays)
def test_quantile_merge_is_exact_associative_and_commutative(
    a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> None:
    sa, sb, sc = qs_of(a), qs_of(b), qs_of(c)
    assert sa.merge(sb) == qs_of(np.concatenate([a, b]))
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))


@FAST
@given(with_nan)
def test_quantile_add_equals_update_and_roundtrips(x: np.ndarray) -> None:
    one = QuantileSketch()
    for v in x.tolist():
        one.add(v)
    assert one == qs_of(x)
    for back in roundtrip(one):
        assert back == one
        np.testing.assert_array_equal(back.quantiles([0.1, 0.9]), one.quantiles([0.1, 0.9]))


@FAST
@given(arrays, arrays, arrays)
def test_quantile_folding_stays_associative(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    kw: dict[str, Any] = {"relative_accuracy": 0.05, "max_buckets": 40}  # folds past ~2 decades
    sa, sb, sc = qs_of(a, **kw), qs_of(b, **kw), qs_of(c, **kw)
    whole = qs_of(np.concatenate([a, b, c]), **kw)
    assert sa.merge(sb).merge(sc) == whole == sc.merge(sa.merge(sb))
    one = QuantileSketch(**kw)
    for v in np.concatenate([a, b, c]).tolist():
        one.add(v)
    assert one == whole


def test_quantile_folding_keeps_the_upper_quantiles() -> None:
    x = np.random.default_rng(0).lognormal(0, 4, 20_000)  # ~14 decades
    s = qs_of(x, max_buckets=600)  # ~5.2 decades per store
    assert s.count == x.size
    assert s.nbytes() <= 600 * 8
    for q in (0.9, 0.99, 1.0):
        v = lower_quantile(x, q)
        assert abs(s.quantile(q) - v) <= ALPHA * v * (1 + 1e-9)
    assert s.quantile(0.01) > lower_quantile(x, 0.01)  # folded: no guarantee down there


def test_quantile_edge_cases() -> None:
    s = QuantileSketch()
    assert math.isnan(s.quantile(0.5))
    s.update(np.array([np.nan, np.inf, -np.inf, 0.0]))
    assert s.count == 1
    assert s.quantile(0.5) == 0.0
    with pytest.raises(ValidationFailed):
        s.quantile(1.5)
    with pytest.raises(ValidationFailed):
        QuantileSketch(relative_accuracy=0.0)
    with pytest.raises(ValidationFailed, match="relative_accuracy"):
        s.merge(QuantileSketch(relative_accuracy=0.02))
    with pytest.raises(ValidationFailed):
        QuantileSketch.from_bytes(b"nope")
    with pytest.raises(ValidationFailed):
        QuantileSketch.from_bytes(Histogram([0.0, 1.0]).to_bytes())
    with pytest.raises(ValidationFailed):
        QuantileSketch.from_bytes(s.to_bytes()[:-3])


# --------------------------------------------------------------------------- NumericSummary


def summary_of(x: np.ndarray) -> NumericSummary:
    s = NumericSummary()
    s.update(x)
    return s


def check_summary(s: NumericSummary, x: np.ndarray) -> None:
    finite = x[~np.isnan(x)]
    assert (s.count, s.nulls) == (finite.size, x.size - finite.size)
    if finite.size:
        assert (s.min, s.max) == (finite.min(), finite.max())
        scale = max(1.0, float(np.abs(finite).max()))
        assert s.mean == pytest.approx(finite.mean(), rel=1e-9, abs=1e-9 * scale)
        assert s.variance == pytest.approx(finite.var(), rel=1e-7, abs=1e-9 * scale * scale)
    else:
        assert math.isnan(s.variance)


@FAST
@given(with_nan, with_nan, with_nan)
def test_summary_merge_matches_the_union(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    sa, sb, sc = summary_of(a), summary_of(b), summary_of(c)
    check_summary(sa.merge(sb).merge(sc), np.concatenate([a, b, c]))
    assert sa.merge(sb) == sb.merge(sa)  # the symmetric formula commutes bit for bit
    assert sa.merge(sb).merge(sc).almost_equal(sa.merge(sb.merge(sc)))
    assert sa.merge(sb).almost_equal(summary_of(np.concatenate([a, b])))


@FAST
@given(with_nan)
def test_summary_add_equals_update_and_roundtrips(x: np.ndarray) -> None:
    one = NumericSummary()
    for v in x.tolist():
        one.add(v)
    check_summary(one, x)
    assert one.almost_equal(summary_of(x))
    for back in roundtrip(one):
        assert back == one


# --------------------------------------------------------------------------- CategoryCounter


def counter_of(xs: list[str], cap: int = 1000) -> CategoryCounter:
    c = CategoryCounter(cap)
    c.update(xs)
    return c


@FAST
@given(st.lists(words), st.lists(words), st.lists(words))
def test_category_counter_is_exact_under_the_cap(a: list[str], b: list[str], c: list[str]) -> None:
    ca, cb, cc = counter_of(a), counter_of(b), counter_of(c)
    union = counter_of(a + b)
    assert ca.merge(cb) == union
    assert union.counts == dict(Counter(a + b))
    assert union.exact
    assert ca.merge(cb) == cb.merge(ca)
    assert ca.merge(cb).merge(cc) == ca.merge(cb.merge(cc))
    one = CategoryCounter()
    for w in a:
        one.add(w)
    assert one == ca
    for back in roundtrip(ca):
        assert back == ca
    items, other = ca.top(3)
    assert sum(n for _, n in items) + other == len(a)
    assert items == sorted(Counter(a).items(), key=lambda kv: (-kv[1], kv[0]))[:3]


@FAST
@given(st.lists(st.lists(words, max_size=60), min_size=1, max_size=5), st.integers(1, 6))
def test_category_counter_bound_past_the_cap(parts: list[list[str]], cap: int) -> None:
    counters = [counter_of(p, cap) for p in parts]
    merged = counters[0]
    for c in counters[1:]:
        merged = merged.merge(c)
    truth = Counter(w for p in parts for w in p)
    assert merged.total == sum(truth.values())
    assert len(merged.counts) <= cap
    for word in truth.keys() | merged.counts.keys():
        est = merged.counts.get(word, 0)
        assert est <= truth[word] <= est + merged.error_bound
    if len(counters) == 2:
        assert counters[0].merge(counters[1]) == counters[1].merge(counters[0])
    for back in roundtrip(merged):
        assert back == merged


# --------------------------------------------------------------------------- FeatureSketch


def feature_of(x: np.ndarray) -> FeatureSketch:
    f = FeatureSketch(EDGES)
    f.update(x)
    return f


@FAST
@given(with_nan, with_nan, with_nan)
def test_feature_merge_matches_the_union(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    fa, fb, fc = feature_of(a), feature_of(b), feature_of(c)
    union = feature_of(np.concatenate([a, b, c]))
    merged = fa.merge(fb).merge(fc)
    assert merged.almost_equal(union)
    assert merged.almost_equal(fc.merge(fb.merge(fa)))
    assert (merged.histogram, merged.sketch) == (union.histogram, union.sketch)
    assert (merged.count, merged.nulls) == (union.count, union.nulls)


@FAST
@given(with_nan, st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_feature_add_equals_update_quantiles_and_roundtrip(x: np.ndarray, qs: list[float]) -> None:
    one = FeatureSketch(EDGES)
    for v in x.tolist():
        one.add(v)
    vec = feature_of(x)
    assert one.almost_equal(vec)
    finite = x[~np.isnan(x)]
    est = vec.quantiles(qs)
    for q, e in zip(qs, est.tolist(), strict=True):
        if finite.size == 0:
            assert math.isnan(e)
            continue
        v = lower_quantile(finite, q)
        assert abs(e - v) <= ALPHA * abs(v) * (1 + 1e-9)
        assert finite.min() <= e <= finite.max()
    for back in roundtrip(vec):
        assert back == vec
        assert back.to_bytes() == vec.to_bytes()


def test_feature_quantiles_use_the_histogram_for_offset_data() -> None:
    x = 101_325.0 + np.random.default_rng(0).normal(0.0, 30.0, 20_000)  # pressures in Pa
    f = FeatureSketch(reference_edges(x, 50))
    f.update(x)
    assert f.quantile(0.0) == x.min() and f.quantile(1.0) == x.max()
    for q in (0.1, 0.5, 0.9):
        assert abs(f.quantile(q) - lower_quantile(x, q)) < 10.0  # alpha * 1e5 alone is ~1000


def test_feature_sketch_memory_is_small() -> None:
    x = np.random.default_rng(0).lognormal(0, 1.5, 100_000)  # ~5 decades
    f = FeatureSketch(reference_edges(x))
    f.update(x)
    assert len(f.to_bytes()) < 2_500
    assert f.nbytes() < 8_000


# --------------------------------------------------------------------------- PredictionSketch


probabilities = st.integers(0, 40).flatmap(
    lambda n: st.lists(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=3, max_size=3),
        min_size=n,
        max_size=n,
    )
)


def predictions_of(p: list[list[float]]) -> PredictionSketch:
    s = PredictionSketch(3)
    s.update(np.array(p, dtype=np.float64).reshape(-1, 3))
    return s


@FAST
@given(probabilities, probabilities, probabilities)
def test_prediction_sketch_merges_and_roundtrips(
    a: list[list[float]], b: list[list[float]], c: list[list[float]]
) -> None:
    sa, sb, sc = predictions_of(a), predictions_of(b), predictions_of(c)
    union = predictions_of(a + b + c)
    assert sa.merge(sb).merge(sc).almost_equal(union)
    assert sa.merge(sb) == sb.merge(sa)
    one = PredictionSketch(3)
    for row in a:
        one.add(row)
    assert one.almost_equal(sa)
    if a:
        conf = np.array(a).max(axis=1)
        assert sa.mean_confidence == pytest.approx(conf.mean())
        assert sa.counts.tolist() == np.bincount(np.array(a).argmax(axis=1), minlength=3).tolist()
    for back in roundtrip(sa):
        assert back == sa


def test_prediction_sketch_validates() -> None:
    s = PredictionSketch(2)
    with pytest.raises(ValidationFailed):
        s.update(np.zeros((3, 4)))
    with pytest.raises(ValidationFailed):
        s.add_prediction(2, 0.5)
    with pytest.raises(ValidationFailed):
        s.update(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValidationFailed, match="n_classes"):
        s.merge(PredictionSketch(3))
    assert math.isnan(s.mean_confidence)


# --------------------------------------------------------------------------- serialisation


def test_from_dict_rejects_malformed_input() -> None:
    good = feature_of(np.array([1.0, 2.0])).to_dict()
    with pytest.raises(ValidationFailed):
        FeatureSketch.from_dict({**good, "type": "histogram"})
    with pytest.raises(ValidationFailed):
        FeatureSketch.from_dict({**good, "summary": {"type": "numeric_summary"}})
    with pytest.raises(ValidationFailed):
        CategoryCounter.from_dict({"type": "category_counter", "max_categories": 2, "total": 1,
                                   "counts": {"a": 1, "b": 1, "c": 1}})  # fmt: skip
    with pytest.raises(ValidationFailed):
        Histogram.from_dict({"type": "histogram", "edges": [0, 1], "counts": [1, 2]})


def test_sketch_imports_only_numpy_and_the_standard_library() -> None:
    """On a device: loading the sketch modules (and the drift statistics the package exports)
    pulls in no pandas, pyarrow, scipy or server code."""
    src = Path(errors_module.__file__).resolve().parent  # .../src/edgeloop
    code = f"""
import sys, types
pkg = types.ModuleType("edgeloop"); pkg.__path__ = [{str(src)!r}]
sys.modules["edgeloop"] = pkg  # skip edgeloop/__init__, which loads the whole client
import edgeloop.monitoring.sketch
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               {{"pandas", "pyarrow", "sqlalchemy", "fastapi", "pydantic", "sklearn", "scipy"}})
ours = sorted(m for m in sys.modules if m.startswith("edgeloop."))
print(heavy, ours)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    heavy, ours = out.strip().split("] [")
    assert heavy == "["
    allowed = {
        "edgeloop._lazy",  # the package's server-side names load lazily
        "edgeloop.errors",
        "edgeloop.monitoring",
        "edgeloop.monitoring.sketch",
        "edgeloop.monitoring.drift",
        "edgeloop.monitoring.reference",
        "edgeloop.monitoring.window",
    }
    for mod in ours.rstrip("]").replace("'", "").split(", "):
        assert mod in allowed or mod.startswith(
            ("edgeloop.monitoring._sketch_", "edgeloop.monitoring._drift_")
        ), mod
