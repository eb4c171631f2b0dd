"""What the runtime's parts share: the config, the clock, each model's state, the writer and the store.

One `RuntimeState` per `Monitor`. Its `writer` is the single thread that owns the SQLite connection
(every transaction runs there, so record ordinals follow commit order); `lock` guards the windows
and counters that the event loop, the writer and the evaluator all touch.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from monitor.capture import ModelSchema, Record
from monitor.core.config import Config, ModelConfig, ModelRouter, UnknownModel
from monitor.core.store import EventStore
from monitor.runtime.snapshot import Histogram, WindowInfo, evaluation_histogram, label_lag_histogram
from monitor.windows import DueWindow, SlidingWindow

__all__ = ["ModelState", "RuntimeState", "UnknownModel"]


@dataclass
class ModelState:
    config: ModelConfig
    schema: ModelSchema
    window: SlidingWindow
    ingested: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    result: Any = None
    info: WindowInfo | None = None
    last_evaluation: float | None = None
    profile: Any = None
    detector: Any = None
    """A CalibratedDetector when the model has a false_alarm_budget (it keeps CUSUM state across windows)."""
    restore: list[Record] | None = None
    """The last stored evaluation's records, re-evaluated at start-up to restore `result`."""
    cusum: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] = ({}, {})
    """The calibrated detector's CUSUM state before and after the last stored evaluation."""
    performance_profile: Any = None
    """A `monitor.performance.PerformanceProfile` when the model has a `performance` section."""
    estimated: Any = None
    """The newest window's `PerformanceResult` (its estimate before labels)."""
    realized: Any = None
    """The newest window's `PerformanceResult` judged on labels (at least `min_labels` of them)."""
    realized_last_rec: int = -1
    label_counts: Counter[str] = field(default_factory=Counter)
    """Labels received by outcome (monitor.runtime.labels.OUTCOMES), restored from the store."""
    label_lag: Histogram = field(default_factory=label_lag_histogram)
    """Prediction-to-label delays of the labels joined since start-up."""
    evaluation_seconds: Histogram = field(default_factory=evaluation_histogram)
    """Wall time of the window evaluations since start-up (published with each `WindowInfo`)."""

    def take_due(self, now: float) -> DueWindow | None:
        """The window due at `now` if it can be evaluated; one with too few records is marked done
        here and skipped (hold the runtime's lock)."""
        window = self.window.due(now)
        if window is not None and not self.window.evaluable(window):
            self.window.done(window)
            return None
        return window

    def frame(self, records: Sequence[Record]) -> pd.DataFrame:
        """Records as the frame the drift engine evaluates (one column per configured column)."""
        return pd.DataFrame.from_records(records, columns=[c.name for c in self.config.columns])


class RuntimeState:
    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-store")
        self.models = {
            m.key: ModelState(m, ModelSchema.from_config(m), SlidingWindow(m.window)) for m in config.models
        }
        self.router = ModelRouter(m.key for m in config.models)
        """Traffic's (model, namespace) to the key of `models` it belongs to."""
        self.store: EventStore | None = None
        self.unknown_model_events = 0
        self.on_commit: Callable[[], None] = _nothing
        """Called on the writer thread after each ingest commit (the size retention's check)."""

    def require_store(self) -> EventStore:
        if self.store is None:
            raise RuntimeError("the monitor is not started")
        return self.store


def _nothing() -> None:
    pass
