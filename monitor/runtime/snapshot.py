"""Read-only views of the runtime's state, pulled by the Prometheus exporter and the JSON API.

The runtime owns the mutable state; the exporter only ever sees these frozen snapshots, so a scrape
never races an evaluation and never blocks ingestion.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.drift import DriftResult
    from monitor.performance.result import PerformanceResult

LABEL_LAG_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 14 * 86400.0, 30 * 86400.0)
"""Upper bounds (seconds) of the label-lag histogram: a minute to a month."""
EVALUATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Upper bounds (seconds) of the evaluation-duration histogram: 5 ms to two minutes."""


@dataclass(frozen=True)
class WindowInfo:
    """The records a drift result was computed on (unix seconds, store sequence numbers)."""

    start: float
    end: float
    first_seq: int
    last_seq: int
    n_records: int
    evaluation_seconds: Histogram | None = field(default=None, compare=False)
    """The model's window evaluations since start-up (wall time), as of this one: the exporter's
    `driftwatch_evaluation_duration_seconds` (None for a window restored from the store)."""


@dataclass(frozen=True)
class ModelSnapshot:
    model: str
    """The configured model's key (a version track's snapshot names its model here, its version below)."""
    version: str | None = None
    """The version track this is (monitor.runtime.tracks); None: the model's unversioned traffic."""
    result: DriftResult | None = None
    window: WindowInfo | None = None
    window_records: int = 0
    """Records currently in the model's sliding window (not only the last evaluated one)."""
    last_evaluation: float | None = None
    ingested: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Rejected records by reason (e.g. `invalid_json`, `schema_mismatch`, `unknown_model`)."""
    performance: PerformanceSnapshot | None = None
    """Models with a `performance` section only."""


@dataclass
class Histogram:
    """Plain per-bucket counts under fixed upper `bounds` (the exporter renders them cumulatively):
    an observation is a bisect and three additions, no lock, on the evaluator or writer thread."""

    bounds: tuple[float, ...]
    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * len(self.bounds)

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        i = bisect.bisect_left(self.bounds, seconds)
        if i < len(self.buckets):
            self.buckets[i] += 1
        self.count += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), +Inf last."""
        out, running = [], 0
        for bound, n in zip(self.bounds, self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return [*out, (float("inf"), self.count)]

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.buckets), self.count, self.total)


def label_lag_histogram() -> Histogram:
    """Prediction-to-label delays of joined labels."""
    return Histogram(LABEL_LAG_BUCKETS)


def evaluation_histogram() -> Histogram:
    """Wall time of a model's window evaluations."""
    return Histogram(EVALUATION_BUCKETS)


@dataclass(frozen=True)
class PerformanceSnapshot:
    """A model's performance as the exporter and the API show it."""

    estimated: PerformanceResult | None = None
    """The newest window's result (estimated before labels)."""
    realized: PerformanceResult | None = None
    """The newest window judged on at least `min_labels` labels."""
    labels: Mapping[str, int] = field(default_factory=dict)
    """Labels received by outcome."""
    lag: Histogram = field(default_factory=label_lag_histogram)
