"""Drift statistics on samples and on aligned count vectors (pure numpy + standard library).

The definitions are Evidently's (``evidently.legacy.calculations.stattests``, 0.7.23), which
call scipy; the values agree with scipy to ~1e-12 (see ``tests/monitoring/test_drift*.py``):

- :func:`kolmogorov_smirnov` — ``scipy.stats.ks_2samp(ref, cur, method="asymp")``;
- :func:`wasserstein_distance` — ``scipy.stats.wasserstein_distance`` (W1 between the
  empirical distributions); :func:`normalized_wasserstein` divides it by
  ``max(np.std(reference), 0.001)`` as Evidently does;
- :func:`chi_square` — ``scipy.stats.chisquare(f_obs=current, f_exp=reference * n_cur/n_ref)``;
- :func:`z_test` — Evidently's two-proportion z-test for two categories;
- :func:`jensen_shannon_distance` — ``scipy.spatial.distance.jensenshannon(ref, cur, base)``;
- :func:`population_stability_index` — PSI over bin shares floored at 1e-4.
"""

from __future__ import annotations

import math

import numpy as np

from edgeloop.errors import ValidationFailed
from edgeloop.monitoring._drift_dist import chi2_sf, kstwo_sf, normal_two_sided_p

__all__ = [
    "chi_square",
    "jensen_shannon_distance",
    "kolmogorov_smirnov",
    "ks_p_value",
    "normalized_wasserstein",
    "population_stability_index",
    "wasserstein_distance",
    "z_test",
]

_EPS = 1e-4  # floor for empty bins in PSI, so that it stays finite
STD_FLOOR = 0.001  # Evidently's floor on the reference standard deviation (feature units)


def _sample(values: object, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValidationFailed(f"{name} holds no values")
    return x


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """The two-sided p-value of a two-sample KS statistic, as ``ks_2samp(method="asymp")``:
    ``kstwo.sf(d, round(n1 * n2 / (n1 + n2)))`` (the one-sample distribution at the
    effective sample size)."""
    if n_reference < 1 or n_current < 1:
        raise ValidationFailed("both samples need at least one value")
    m, n = float(max(n_reference, n_current)), float(min(n_reference, n_current))
    return kstwo_sf(statistic, max(1, round(m * n / (m + n))))


def _sorted_pair(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.sort(reference), np.sort(current)


def ks_statistic_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """``sup |F_a - F_b|`` for two sorted samples."""
    both = np.concatenate((a, b))
    diff = np.searchsorted(a, both, side="right") / a.size
    diff -= np.searchsorted(b, both, side="right") / b.size
    return float(np.max(np.abs(diff)))


def kolmogorov_smirnov(reference: object, current: object) -> tuple[float, float]:
    """Two-sample KS statistic ``D = sup |F_ref - F_cur|`` and its two-sided p-value.

    >>> d, p = kolmogorov_smirnov([1, 2, 3, 4], [3, 4, 5, 6])
    >>> d, round(p, 4)
    (0.5, 0.5)
    """
    a, b = _sorted_pair(_sample(reference, "reference"), _sample(current, "current"))
    d = ks_statistic_sorted(a, b)
    return d, ks_p_value(d, a.size, b.size)


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two sorted samples: ``∫ |F_a - F_b| dx``."""
    both = np.concatenate((a, b))
    both.sort(kind="mergesort")
    deltas = np.diff(both)
    fa = np.searchsorted(a, both[:-1], side="right") / a.size
    fb = np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * deltas))


def wasserstein_distance(reference: object, current: object) -> float:
    """The first Wasserstein (earth mover's) distance between two samples, in their units."""
    a, b = _sorted_pair(_sample(reference, "reference"), _sample(current, "current"))
    return wasserstein_sorted(a, b)


def normalized_wasserstein(reference: object, current: object) -> float:
    """W1 divided by ``max(std(reference), 0.001)`` (population std): Evidently's
    ``wasserstein`` statistic. A constant reference divides by 0.001 (feature units), so any
    shift of more than 1e-4 units reads as drift at the 0.1 threshold."""
    a, b = _sorted_pair(_sample(reference, "reference"), _sample(current, "current"))
    return wasserstein_sorted(a, b) / max(float(np.std(a)), STD_FLOOR)


def _counts(values: object, name: str) -> np.ndarray:
    c = np.asarray(values, dtype=np.float64).ravel()
    if c.size and (not np.all(np.isfinite(c)) or float(c.min()) < 0):
        raise ValidationFailed(f"{name} counts must be finite and >= 0")
    return c


def _aligned(reference: object, current: object) -> tuple[np.ndarray, np.ndarray]:
    r, c = _counts(reference, "reference"), _counts(current, "current")
    if r.shape != c.shape:
        raise ValidationFailed(f"bins differ: {r.shape} vs {c.shape}")
    if r.sum() <= 0 or c.sum() <= 0:
        raise ValidationFailed("both count vectors need a positive total")
    return r, c


def chi_square(reference: object, current: object) -> tuple[float, float]:
    """Pearson's chi-squared statistic of the current counts against the reference shares,
    and its p-value (``len - 1`` degrees of freedom).

    Expected counts are the reference counts scaled to the current total. A category the
    reference never saw but the current holds makes the statistic infinite (p-value 0):
    new categories are drift. One category alone gives ``(0.0, 1.0)``.
    """
    r, c = _aligned(reference, current)
    expected = r * (c.sum() / r.sum())
    seen = expected > 0
    if np.any(c[~seen] > 0):
        return math.inf, 0.0
    stat = float(np.sum((c[seen] - expected[seen]) ** 2 / expected[seen]))
    dof = int(np.count_nonzero(seen)) - 1
    return (stat, 1.0) if dof < 1 else (stat, chi2_sf(stat, dof))


def z_test(reference: object, current: object) -> tuple[float, float]:
    """Two-proportion z-test on two categories (counts ``[a, b]`` each): the statistic
    ``(p1 - p2) / sqrt(P (1 - P) (1/n1 + 1/n2))`` with ``p`` the share of the second category
    and its two-sided p-value. Both samples holding the same single category gives
    ``(0.0, 1.0)``, as in Evidently."""
    r, c = _aligned(reference, current)
    if r.size == 1:
        return 0.0, 1.0
    if r.size != 2:
        raise ValidationFailed(f"the z-test compares 2 categories, got {r.size}")
    n1, n2 = float(r.sum()), float(c.sum())
    p1, p2 = float(r[1]) / n1, float(c[1]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:  # one category only, the same in both
        return 0.0, 1.0
    z = (p1 - p2) / math.sqrt(var)
    return z, normal_two_sided_p(z)


def jensen_shannon_distance(reference: object, current: object, base: float | None = 2.0) -> float:
    """Jensen-Shannon distance between two count (or share) vectors over the same bins.

    ``sqrt((KL(p || m) + KL(q || m)) / 2)`` with ``m = (p + q) / 2`` and logarithms to
    ``base``: 2 (the default here) gives [0, 1]; ``None`` the natural log, as scipy's
    ``jensenshannon`` and hence Evidently's ``jensenshannon`` test use, in
    ``[0, sqrt(ln 2)] ≈ [0, 0.833]``.
    """
    r, c = _counts(reference, "reference"), _counts(current, "current")
    if r.shape != c.shape:
        raise ValidationFailed(f"bins differ: {r.shape} vs {c.shape}")
    p = r / r.sum() if r.sum() > 0 else r  # an empty side counts as all-zero shares
    q = c / c.sum() if c.sum() > 0 else c
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / m[mask])))

    js = 0.5 * kl(p) + 0.5 * kl(q)
    if base is not None:
        js /= math.log(base)
    return math.sqrt(max(0.0, js))


def _shares(counts: np.ndarray) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    total = arr.sum()
    if total <= 0:
        return np.full(arr.shape, 1.0 / max(arr.size, 1))
    shares: np.ndarray = np.clip(arr / total, _EPS, None)
    return shares


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = Σ (cᵢ - rᵢ)·ln(cᵢ / rᵢ) over bin shares; ≥ 0.1 is the usual drift threshold.

    Shares below 1e-4 count as 1e-4, so that empty bins keep PSI finite (Evidently replaces
    only exact zeros, by 1e-4, or by the smallest share / 1e6 when that is below 1e-4).
    """
    r, c = _shares(reference), _shares(current)
    if r.shape != c.shape:
        raise ValidationFailed(f"bins differ: {r.shape} vs {c.shape}")
    return float(np.sum((c - r) * np.log(c / r)))
