"""Training helpers: feature blocks for sensor windows, a model zoo with hyperparameter search,
evaluation reports and SVG charts.

>>> from edgeloop.train import FeaturePipeline, FlattenBlock, SpectralBlock
>>> pipeline = FeaturePipeline(
...     blocks=(FlattenBlock(), SpectralBlock(sample_rate=100.0)), axes=("acc_x", "acc_y")
... )
>>> pipeline.feature_names()[:2]
['acc_x.mean', 'acc_x.min']
"""

from __future__ import annotations

from edgeloop.train._evaluate import (
    ClassificationReport,
    RegressionReport,
    evaluate_classifier,
    evaluate_regressor,
)
from edgeloop.train._folds import cv_splits
from edgeloop.train._optuna import open_storage
from edgeloop.train._plots import (
    bar_chart_svg,
    confusion_matrix_svg,
    feature_importance_svg,
    pr_curves_svg,
    roc_curves_svg,
)
from edgeloop.train._search import SearchResult, SearchSpec, TrialResult, search
from edgeloop.train._zoo import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    ZOO,
    ModelSpec,
    make_model,
)
from edgeloop.train.features import (
    FeaturePipeline,
    FlattenBlock,
    SpectralBlock,
    windows_from_table,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "ZOO",
    "ClassificationReport",
    "FeaturePipeline",
    "FlattenBlock",
    "ModelSpec",
    "RegressionReport",
    "SearchResult",
    "SearchSpec",
    "SpectralBlock",
    "TrialResult",
    "bar_chart_svg",
    "confusion_matrix_svg",
    "cv_splits",
    "evaluate_classifier",
    "evaluate_regressor",
    "feature_importance_svg",
    "make_model",
    "open_storage",
    "pr_curves_svg",
    "roc_curves_svg",
    "search",
    "windows_from_table",
]
