"""Distribution distances between a reference and a current histogram (pure numpy).

Counts are aligned bins (the same fixed edges, or the same categories in the same order).
"""

from __future__ import annotations

import numpy as np

__all__ = ["jensen_shannon_distance", "population_stability_index"]

_EPS = 1e-4  # floor for empty bins, as Evidently does, so PSI stays finite


def _shares(counts: np.ndarray) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    total = arr.sum()
    if total <= 0:
        return np.full(arr.shape, 1.0 / max(arr.size, 1))
    shares: np.ndarray = np.clip(arr / total, _EPS, None)
    return shares


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = Σ (cᵢ - rᵢ)·ln(cᵢ / rᵢ) over bin shares; ≥ 0.1 is the usual drift threshold."""
    r, c = _shares(reference), _shares(current)
    if r.shape != c.shape:
        raise ValueError(f"bins differ: {r.shape} vs {c.shape}")
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    r = r / r.sum() if r.sum() > 0 else r
    c = c / c.sum() if c.sum() > 0 else c
    m = 0.5 * (r + c)

    def kl(p: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))

    return float(np.sqrt(max(0.0, 0.5 * kl(r) + 0.5 * kl(c))))
