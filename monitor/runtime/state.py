"""What the runtime's parts share: the config, the clock, each model's state, the writer and the store.

One `RuntimeState` per `Monitor`. Its `writer` is the single thread that owns the SQLite connection
(every transaction runs there, so record ordinals follow commit order); `lock` guards the windows
and counters that the event loop, the writer and the evaluator all touch.
"""

from __future__ import annotations

import pickle
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.capture import ModelSchema, Record
from monitor.core.config import Config, ModelConfig, ModelRouter, UnknownModel
from monitor.core.store import EventStore
from monitor.runtime.snapshot import Histogram, WindowInfo, evaluation_histogram, label_lag_histogram
from monitor.runtime.tracks import TrackBook, split_track
from monitor.windows import DueWindow, SlidingWindow

if TYPE_CHECKING:
    import pandas as pd

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
    packed: bytes | None = None
    """(profile, detector) as the profiling process pickled them (`monitor.runtime.profiling.in_child`),
    until `unpack()`: unpickling loads pandas and scipy, which the idle monitor does without."""
    packed_performance: bytes | None = None
    """`performance_profile`, pickled likewise."""
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
    reference_id: int | None = None
    """The stored reference judging this model now (`monitor.core.referencestore`); None: the config's."""
    reference_from: int = 0
    """The record ordinal that reference took over after: windows hold only records after it."""
    version: str | None = None
    """The model version this state judges (a version track, monitor.runtime.tracks); None: the
    model's unversioned traffic, which is all of it for a model whose traffic names no version."""
    key: str = ""
    """Its rows' key in the store: `config.key`, or the version track's (`tracks.track_key`)."""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.config.key

    @property
    def profiled(self) -> bool:
        """Its reference is profiled (the profile may still be packed)."""
        return self.profile is not None or self.packed is not None

    def unpack(self, lock: threading.Lock) -> None:
        """Unpickle what the profiling process packed (from the thread that evaluates: this loads the
        drift engine, pandas and scipy; `lock` is taken only to publish the objects)."""
        if self.packed is None and self.packed_performance is None:
            return
        engine = pickle.loads(self.packed) if self.packed is not None else None
        performance = pickle.loads(self.packed_performance) if self.packed_performance is not None else None
        with lock:
            if engine is not None:
                self.profile, self.detector = engine
            if performance is not None:
                self.performance_profile = performance
            self.packed = self.packed_performance = None

    def take_due(self, now: float) -> DueWindow | None:
        """The window due at `now` if it can be evaluated; one with too few records is marked done
        here and skipped (hold the runtime's lock)."""
        window = self.window.due(now)
        if window is not None and not self.window.evaluable(window):
            self.window.done(window)
            return None
        return window

    def frame(self, records: Sequence[Record], profile: Any = None) -> pd.DataFrame:
        """Records as the frame the drift engine evaluates (one column per `ModelConfig.columns`): text
        columns described against the text profiles of `profile` (default: the model's own)."""
        # at the first evaluation, not at start-up (docs/architecture.md, "The idle process")
        from monitor.text.columns import model_frame

        profile = self.profile if profile is None else profile
        return model_frame(self.config, records, getattr(profile, "text", {}))


class RuntimeState:
    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-store")
        self.models = {
            m.key: ModelState(m, ModelSchema.from_config(m), SlidingWindow(m.window)) for m in config.models
        }
        """Every configured model's state, and each version track's (keyed `tracks.track_key`)."""
        self.router = ModelRouter(m.key for m in config.models)
        """Traffic's (model, namespace) to the key of `models` it belongs to."""
        self.tracks = TrackBook(config)
        self.store: EventStore | None = None
        self.unknown_model_events = 0
        self.on_commit: Callable[[], None] = _nothing
        """Called on the writer thread after each ingest commit (the size retention's check)."""

    def track(self, key: str, now: float) -> ModelState:
        """The state of the track `key` (`tracks.track_key`), made now if it has none, when another
        version of its model may have to be retired for it (hold `lock`). A track that comes back
        resumes its ordinals where the store left them, so its windows never re-count old records."""
        state = self.models.get(key)
        if state is not None:
            return state
        model, version = split_track(key)
        base = self.models[model]
        assert version is not None, "a configured model always has its state"
        retired = self.tracks.admit(model, version, now)
        if retired is not None:
            self.models.pop(retired, None)
        total = self.store.record_total(key) if self.store is not None else 0
        state = ModelState(base.config, base.schema, SlidingWindow(base.config.window, last_rec=total, now=now),
                           version=version, key=key)
        self.models[key] = state
        return state

    def states(self) -> list[tuple[str, ModelState]]:
        """(key, state) of every model and track now (a copy: tracks come and go while it is walked)."""
        with self.lock:
            return list(self.models.items())

    def require_store(self) -> EventStore:
        if self.store is None:
            raise RuntimeError("the monitor is not started")
        return self.store


def _nothing() -> None:
    pass
