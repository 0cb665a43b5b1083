"""Data drift: per-feature statistical tests and dataset drift, as Evidently defines them.

Pure numpy and standard library (the same import contract as the sketches), so it runs on
devices too. A feature is compared **against the model version's reference profile**: the
reference and current sides are both samples, or both sketches binned with the reference's
edges (:class:`FeatureSketch`/:class:`Histogram`, :class:`CategoryCounter`,
:class:`PredictionSketch` for the prediction distribution).

Tests (``TESTS``), with Evidently 0.7.23's definitions, thresholds and drift rules
(``evidently/legacy/calculations/stattests/*.py``):

============== ============================================ ========= =================
name           statistic                                    threshold drifted when
============== ============================================ ========= =================
ks             two-sample Kolmogorov-Smirnov, p-value        0.05     p <= threshold
wasserstein    W1 / max(std(reference), 0.001)               0.1      stat >= threshold
chisquare      Pearson chi-squared vs reference shares, p    0.05     p < threshold
z              two-proportion z-test (2 categories), p       0.05     p < threshold
jensenshannon  Jensen-Shannon distance, natural log          0.1      stat >= threshold
psi            population stability index                    0.1      stat >= threshold
============== ============================================ ========= =================

Default choice (:func:`choose_test`, Evidently's ``_get_default_stattest``): with at most
1,000 reference rows, ``ks`` for numeric features (``chisquare`` when the reference and current
together hold 3-5 distinct values, ``z`` for 1-2), ``chisquare`` for categorical ones (``z``
for 1-2 values); above 1,000 rows, ``wasserstein`` for numeric features (``jensenshannon`` for
at most 5 values) and ``jensenshannon`` for categorical ones. Any test and threshold can be
given instead. The dataset drifts when the share of drifted features is >= 0.5
(:func:`dataset_drift`, Evidently's ``drift_share``).

On samples every statistic is exact (NaN and infinities are left out, as Evidently does;
the KS p-value is ``ks_2samp(method="asymp")``'s; numeric data for ``jensenshannon``/``psi``
is binned as Evidently does: Sturges bins over both samples' range when the reference has
more than 20 distinct values, one cell per value otherwise). On sketches KS and Wasserstein
come with an ``error_bound`` (see :mod:`edgeloop.monitoring._drift_sketch`), and the
categorical tests count over the reference's histogram bins (or quantile buckets, which stand
for values, when there are at most 20 of them).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref, cur = rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000)
>>> r = feature_drift(ref, cur)
>>> r.test, r.drifted, round(r.statistic, 2)
('wasserstein', True, 0.52)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._drift_pairs import FeatureKind, Pair, make_pair
from edgeloop.monitoring._drift_stats import (
    chi_square,
    jensen_shannon_distance,
    kolmogorov_smirnov,
    ks_p_value,
    normalized_wasserstein,
    population_stability_index,
    wasserstein_distance,
    z_test,
)

__all__ = [
    "TESTS",
    "DatasetDrift",
    "DriftTest",
    "FeatureDrift",
    "FeatureKind",
    "chi_square",
    "choose_test",
    "dataset_drift",
    "drift_by_feature",
    "feature_drift",
    "jensen_shannon_distance",
    "kolmogorov_smirnov",
    "ks_p_value",
    "normalized_wasserstein",
    "population_stability_index",
    "wasserstein_distance",
    "z_test",
]

SMALL_REFERENCE_ROWS = 1000  # at most this many reference rows: p-value tests
FEW_VALUES = 5  # numeric features with at most this many distinct values count as categories


@dataclass(frozen=True)
class DriftTest:
    """A drift test: what it scores, its default threshold and when it calls drift.

    ``score`` is ``"p_value"`` (drift when the p-value is below the threshold; ``ks`` also at
    equality) or ``"statistic"`` (drift when the statistic reaches the threshold).
    """

    name: str
    title: str
    score: Literal["p_value", "statistic"]
    default_threshold: float
    kinds: tuple[FeatureKind, ...]
    drifted_when: Literal["<=", "<", ">="]

    def is_drift(self, score: float, threshold: float) -> bool:
        """Whether ``score`` (p-value or statistic) means drift at ``threshold``."""
        if math.isnan(score):
            return False
        if self.drifted_when == "<=":
            return score <= threshold
        if self.drifted_when == "<":
            return score < threshold
        return score >= threshold


_BOTH: tuple[FeatureKind, ...] = ("numeric", "categorical")
TESTS: dict[str, DriftTest] = {
    t.name: t
    for t in (
        DriftTest("ks", "Kolmogorov-Smirnov p-value", "p_value", 0.05, ("numeric",), "<="),
        DriftTest(
            "wasserstein", "Wasserstein distance (normed)", "statistic", 0.1, ("numeric",), ">="
        ),
        DriftTest("chisquare", "chi-squared p-value", "p_value", 0.05, _BOTH, "<"),
        DriftTest("z", "z-test p-value", "p_value", 0.05, _BOTH, "<"),
        DriftTest("jensenshannon", "Jensen-Shannon distance", "statistic", 0.1, _BOTH, ">="),
        DriftTest("psi", "PSI", "statistic", 0.1, _BOTH, ">="),
    )
}
"""The drift tests by name."""


def choose_test(kind: FeatureKind, reference_rows: int, n_unique: int | None = None) -> str:
    """The default test for a feature, as Evidently chooses it.

    ``n_unique``: distinct values of the reference and current data together (``None``:
    many). ``choose_test("numeric", 5000)`` is ``"wasserstein"``.
    """
    if kind not in ("numeric", "categorical"):
        raise ValidationFailed(f"kind must be 'numeric' or 'categorical', got {kind!r}")
    few = n_unique is not None and n_unique <= FEW_VALUES
    binary = n_unique is not None and n_unique <= 2
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if kind == "numeric" and not few:
            return "ks"
        return "z" if binary else "chisquare"
    if kind == "numeric" and not few:
        return "wasserstein"
    return "jensenshannon"


@dataclass(frozen=True)
class FeatureDrift:
    """The outcome of one drift test on one feature.

    ``statistic`` is the test's statistic (D, normalised W1, chi-squared, z, distance, PSI);
    ``p_value`` is set for p-value tests, and it is then what ``threshold`` applies to.
    ``error_bound`` bounds ``|statistic - the same statistic on the raw samples|``: 0.0 on
    samples (exact), a number for KS and Wasserstein on sketches, ``None`` where a sketch
    statistic is defined on the sketch's bins and has no sample counterpart to bound.
    """

    test: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None
    reference_rows: int
    current_rows: int
    error_bound: float | None = 0.0

    @property
    def score(self) -> float:
        """What the threshold applies to (Evidently's ``drift_score``)."""
        return self.statistic if self.p_value is None else self.p_value

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (infinite values as strings ``"inf"``)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = str(value)
        return out


@dataclass(frozen=True)
class DatasetDrift:
    """Dataset drift: ``drifted`` when ``share`` (of drifted features) >= ``drift_share``."""

    drifted_features: tuple[str, ...]
    share: float
    drifted: bool
    n_features: int
    drift_share: float


def _run(pair: Pair, name: str) -> tuple[float, float | None, float | None]:
    """(statistic, p-value, error bound) of test ``name`` on ``pair``."""
    if name == "ks":
        d, bound = pair.ks()
        return d, ks_p_value(d, pair.n_reference, pair.n_current), bound
    if name == "wasserstein":
        w, bound = pair.wasserstein()
        return w, None, bound
    r, c, bound = pair.counts(binned=name in ("jensenshannon", "psi"))
    if name == "chisquare":
        stat, p = chi_square(r, c)
        return stat, p, bound
    if name == "z":
        if r.size > 2:
            raise ValidationFailed(f"the z-test compares 2 values; this feature has {r.size}")
        z, p = z_test(r, c)
        return z, p, bound
    if name == "jensenshannon":
        return jensen_shannon_distance(r, c, base=None), None, bound
    return population_stability_index(r, c), None, bound


def feature_drift(
    reference: object,
    current: object,
    *,
    test: str | None = None,
    threshold: float | None = None,
    kind: FeatureKind | None = None,
) -> FeatureDrift:
    """Test one feature (or the predictions) for drift between a reference and a current side.

    Both sides are samples (array-likes; numeric unless they hold strings, booleans or
    objects, or ``kind`` says otherwise), or two :class:`FeatureSketch`/:class:`Histogram`
    sharing their edges, two :class:`CategoryCounter`, two :class:`PredictionSketch` (their
    class counts), or two ``{value: count}`` mappings. ``test`` defaults to
    :func:`choose_test`'s choice and ``threshold`` to the test's default.

    Raises :class:`~edgeloop.errors.ValidationFailed` when either side holds no value.
    """
    pair = make_pair(reference, current, kind)
    if pair.n_current == 0:
        raise ValidationFailed(
            "the current window holds no value (NaN and infinities are left out)"
        )
    if pair.n_reference == 0:
        raise ValidationFailed("the reference holds no value (NaN and infinities are left out)")
    name = choose_test(pair.kind, pair.n_reference, pair.n_unique()) if test is None else test
    spec = TESTS.get(name)
    if spec is None:
        raise ValidationFailed(f"unknown drift test {name!r}; known: {', '.join(TESTS)}")
    if pair.kind not in spec.kinds:
        raise ValidationFailed(f"test {name!r} does not apply to {pair.kind} data")
    limit = spec.default_threshold if threshold is None else float(threshold)
    statistic, p_value, bound = _run(pair, name)
    score = statistic if p_value is None else p_value
    return FeatureDrift(
        test=name,
        statistic=statistic,
        threshold=limit,
        drifted=spec.is_drift(score, limit),
        p_value=p_value,
        reference_rows=pair.n_reference,
        current_rows=pair.n_current,
        error_bound=bound,
    )


def drift_by_feature(
    reference: Mapping[str, object],
    current: Mapping[str, object],
    *,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, FeatureDrift]:
    """:func:`feature_drift` for every feature of ``reference`` (all must be in ``current``),
    with per-feature ``tests`` and ``thresholds`` overriding the defaults."""
    missing = [name for name in reference if name not in current]
    if missing:
        raise ValidationFailed(f"the current window lacks features {missing}")
    tests, thresholds = dict(tests or {}), dict(thresholds or {})
    unknown = sorted((set(tests) | set(thresholds)) - set(reference))
    if unknown:
        raise ValidationFailed(f"tests/thresholds name features not in the reference: {unknown}")
    return {
        name: feature_drift(
            ref, current[name], test=tests.get(name), threshold=thresholds.get(name)
        )
        for name, ref in reference.items()
    }


def dataset_drift(results: Mapping[str, FeatureDrift], share: float = 0.5) -> DatasetDrift:
    """Dataset drift from per-feature results: drifted when at least ``share`` of the
    features drifted (Evidently's ``drift_share``, 0.5 by default)."""
    if not results:
        raise ValidationFailed("dataset drift needs at least one feature result")
    if not 0.0 <= share <= 1.0:
        raise ValidationFailed(f"share must be in [0, 1], got {share!r}")
    drifted = tuple(name for name, r in results.items() if r.drifted)
    observed = len(drifted) / len(results)
    return DatasetDrift(
        drifted_features=drifted,
        share=observed,
        drifted=observed >= share,
        n_features=len(results),
        drift_share=share,
    )
