"""Performance on labeled predictions: accuracy and macro F1, overall and per slice.

Macro F1 is scikit-learn's ``f1_score(average="macro")``: the mean over every label that
occurs among the true or the predicted labels of ``2 tp / (2 tp + fp + fn)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["classification_scores", "performance"]


def classification_scores(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """``{"labeled", "accuracy", "f1_macro"}`` (None for the scores without samples)."""
    n = len(y_true)
    if n == 0:
        return {"labeled": 0, "accuracy": None, "f1_macro": None}
    labels, codes = np.unique(np.asarray([*y_true, *y_pred], dtype=object), return_inverse=True)
    t, p = codes[:n], codes[n:]
    k = labels.size
    right = t == p
    tp = np.bincount(t[right], minlength=k)
    fp = np.bincount(p, minlength=k) - tp
    fn = np.bincount(t, minlength=k) - tp
    f1 = 2 * tp / (2 * tp + fp + fn)
    return {"labeled": n, "accuracy": float(right.mean()), "f1_macro": float(f1.mean())}


def performance(
    rows: Sequence[tuple[str, str, Mapping[str, str]]], slice_by: Sequence[str]
) -> dict[str, Any]:
    """Scores of ``(label, predicted, tags)`` rows overall and, for each tag in ``slice_by``,
    per value of that tag (rows without the tag are left out of its slices)."""
    overall = classification_scores([r[0] for r in rows], [r[1] for r in rows])
    slices: dict[str, dict[str, Any]] = {}
    for key in slice_by:
        groups: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        for label, predicted, tags in rows:
            value = tags.get(key)
            if value is not None:
                groups[value][0].append(label)
                groups[value][1].append(predicted)
        if groups:
            slices[key] = {
                value: classification_scores(truth, pred)
                for value, (truth, pred) in sorted(groups.items())
            }
    return {"overall": overall, "slices": slices}
