"""What the monitor services return; the same types travel over the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["MonitorInfo", "MonitorScope", "ReportInfo", "TestOverride"]

METRIC_KEYS = (
    "samples",
    "drift_share",
    "dataset_drift",
    "drifted_features",
    "prediction_drift",
    "prediction_drift_score",
    "class_balance_shift",
    "mean_confidence",
    "reference_confidence",
    "confidence_shift",
    "labeled",
    "accuracy",
    "f1_macro",
)
"""The keys of every report's ``metrics`` (None where a figure does not apply)."""


class MonitorScope(BaseModel):
    """Which data a monitor reads: every source (``all``), the devices of a device group
    (``group``), the sources whose tags match (``tags``), or named ``sources``."""

    kind: Literal["all", "group", "tags", "sources"] = "all"
    group: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "group":
            return f"group {self.group}"
        if self.kind == "tags":
            return " and ".join(f"{k}={v}" for k, v in sorted(self.tags.items()))
        if self.kind == "sources":
            return ", ".join(self.sources)
        return "all sources"


class TestOverride(BaseModel):
    """A feature's drift test and/or threshold instead of the defaults (``None``: default)."""

    __test__ = False  # not a pytest test class

    test: str | None = None
    threshold: float | None = None


class MonitorInfo(BaseModel):
    name: str
    model: str
    scope: MonitorScope
    window_ms: int
    delay_ms: int = 0
    tests: dict[str, TestOverride] = Field(default_factory=dict)
    """Per feature (``*``: every feature without its own entry)."""
    drift_share: float = 0.5
    min_samples: int
    slice_by: list[str] = Field(default_factory=list)
    start_at: int
    evaluated_until: int
    """The end of the last window evaluated: the next run starts there."""
    description: str = ""
    created_at: int
    created_by: str
    reports: int = 0


class ReportInfo(BaseModel):
    """A monitor's verdict on one window for one model version.

    ``status`` is ``ok`` or ``skipped`` (``reason`` says why: too few samples, no reference
    profile, no data). ``metrics`` holds every key of :data:`METRIC_KEYS` (None where it does
    not apply; ``dataset_drift`` and ``prediction_drift`` are 0/1). ``features`` maps each
    feature to its test, statistic, p-value, threshold, drifted flag, error bound, current
    rows and current histogram counts (on the reference's edges). ``details`` holds the
    prediction distribution (reference and current class shares) and performance per slice.
    """

    id: int
    monitor: str
    model: str
    model_version: int | None
    window_start: int
    window_end: int
    status: Literal["ok", "skipped"]
    reason: str = ""
    samples: int = 0
    sources: int = 0
    metrics: dict[str, float | None] = Field(default_factory=dict)
    features: dict[str, dict[str, Any]] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: int

    def drifted_features(self) -> list[str]:
        return [name for name, f in self.features.items() if f.get("drifted")]
