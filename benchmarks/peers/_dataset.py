"""The seeded data both sides of a tracking benchmark log (standard library only).

Imported by ``benchmarks/tracking.py`` (in ``.venv``) and by the peer scripts next to this
file (in their own venvs), so that edgeloop and the peer store exactly the same runs.
"""

from __future__ import annotations

import random

__all__ = ["SEARCH_FILTER", "SEARCH_ORDER_KEY", "search_run", "series_value"]

# The search of case (c): about 1 run in 6 matches (m3 uniform in [0, 1), p1 one of 3 values),
# so 5,000 runs give about 830 matches: fewer than max_results=1000, hence the counts compare.
SEARCH_FILTER = "metrics.m3 > 0.5 and params.p1 = 'v1'"
SEARCH_ORDER_KEY = "m3"
PARAM_CHOICES = 3


def series_value(step: int) -> float:
    """The value logged at ``step`` in cases (a) and (b): a decaying loss."""
    return 1.0 / (1.0 + step) + (step % 7) * 1e-4


def search_run(
    seed: int, index: int, n_params: int, n_metrics: int
) -> tuple[str, dict[str, str], dict[str, float]]:
    """Run ``index`` of case (c): its name, params ``p0..`` and metrics ``m0..``.

    Seeded per run, so any slice of the runs can be generated on its own (parallel loaders).
    """
    rng = random.Random(f"{seed}:{index}")
    params = {f"p{j}": f"v{rng.randrange(PARAM_CHOICES)}" for j in range(n_params)}
    metrics = {f"m{j}": rng.random() for j in range(n_metrics)}
    return f"run-{index:06d}", params, metrics
