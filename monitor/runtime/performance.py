"""Model performance in the running monitor: profiles at start-up, each window's result, refreshes.

The evaluator computes a window's performance beside its drift (the estimate from the window's
probabilities, realized from the labels already joined) and stores both in one transaction. Labels
landing later mark the windows they belong to stale (`monitor.runtime.labels`); `refresh` recomputes
those windows' realized part, oldest first, keeps their estimate, and tells the listeners when the
model's newest judged window changed. The statistics are `monitor.performance`'s.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from monitor.core.config import Config, ModelConfig
from monitor.core.labelstore import PerformanceRow
from monitor.runtime.reference import load_reference
from monitor.runtime.state import ModelState, RuntimeState
from monitor.runtime.verdict import PerformanceVerdict
from monitor.windows import DueWindow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PerformanceRuntime", "PerformanceStore", "WindowPerformance", "performance_profiles"]

log = logging.getLogger("driftwatch.monitor")

_REFRESH_BATCH = 50
"""Stale windows recomputed per model per evaluator turn (more wait for the next turn)."""
_STREAK_LOOKBACK = 200


def performance_profiles(config: Config, models: Sequence[ModelConfig]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each model's `PerformanceProfile` (models with a `performance` section), and the errors of
    those whose reference cannot be profiled: they still get drift, never a wrong performance."""
    from monitor.performance.profile import PerformanceProfile

    profiles, errors = {}, {}
    for model in models:
        if model.performance is None:
            continue
        try:
            profiles[model.key] = PerformanceProfile.from_reference(load_reference(model, config), model.performance)
        except Exception as exc:
            errors[model.key] = f"{type(exc).__name__}: {exc}"
            log.error("performance_profile_failed model=%s error=%s detail=%s", model.key, type(exc).__name__, exc)
    return profiles, errors


class PerformanceStore(Protocol):
    """Where windows' performance and their labelled records live: the embedded SQLite tables (on
    the writer thread) or fleet mode's PostgreSQL (`monitor.core.pgstore.PgStore`)."""

    def labelled(self, model: str, first_rec: int, last_rec: int) -> list[dict[str, Any]]: ...
    def stale(self, model: str, limit: int) -> list[PerformanceRow]: ...
    def put(self, row: PerformanceRow) -> None: ...
    def history(self, model: str, limit: int, up_to: int | None = None) -> list[PerformanceRow]: ...


class WindowPerformance:
    """Each window's performance over a `PerformanceStore`: computed at evaluation, restored when a
    model is (re)loaded, and refreshed when labels land in evaluated windows. The embedded monitor and
    every fleet replica run this same code; only the store differs."""

    def __init__(self, store: PerformanceStore, lock: Any, clock: Callable[[], float],
                 notify: Callable[[PerformanceVerdict], None], *, transient: tuple[type[Exception], ...] = ()) -> None:
        self._store = store
        self._transient = transient
        """The store's "unreachable, try again later" errors: raised, never taken for a failed window."""
        self._lock = lock
        self._clock = clock
        self._notify = notify

    def restore(self, model: ModelState) -> None:
        """The newest estimate and the newest judged result from the store."""
        if model.config.performance is not None:
            self.restore_from(model, self._store.history(model.key, _STREAK_LOOKBACK))

    def restore_from(self, model: ModelState, rows: Sequence[PerformanceRow]) -> None:
        """The newest estimate and the newest judged result of these rows (newest first)."""
        perf = model.config.performance
        if perf is None:
            return
        results = _results(rows)
        if results:
            model.estimated = results[0][1]
        judged = next(((row, r) for row, r in results if row.n_labelled >= perf.min_labels), None)
        if judged is not None:
            model.realized, model.realized_last_rec = judged[1], judged[0].last_rec

    def evaluate(self, model: ModelState, window: DueWindow, frame: pd.DataFrame, evaluated_at: float) -> PerformanceRow | None:
        """The window's performance row (None without a profile, or when it fails: drift goes on)."""
        from monitor.performance.profile import LabelledRecords

        profile, perf = model.performance_profile, model.config.performance
        if profile is None or perf is None:
            return None
        name = model.key
        try:
            rows = self._store.labelled(name, window.first_rec, window.last_rec)
            result = profile.evaluate(frame, LabelledRecords.from_rows(rows, perf) if rows else None)
        except self._transient:
            raise
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("performance_evaluation_failed model=%s last_rec=%d error=%s at=%s:%s", name, window.last_rec,
                      type(exc).__name__, where.filename, where.lineno)
            return None
        return PerformanceRow(name, window.first_rec, window.last_rec, window.start, window.end, window.point,
                              window.n_records, len(rows), result.to_dict(), evaluated_at, evaluated_at)

    def published(self, model: ModelState, row: PerformanceRow) -> None:
        """After the row is stored: the snapshot's newest estimate (and judged result) (hold the lock)."""
        from monitor.performance.result import PerformanceResult

        result = PerformanceResult.from_dict(row.result)
        model.estimated = result
        perf = model.config.performance
        if perf is not None and row.n_labelled >= perf.min_labels and row.last_rec >= model.realized_last_rec:
            model.realized, model.realized_last_rec = result, row.last_rec

    def refresh_model(self, model: ModelState) -> int:
        """Recompute the realized part of the model's windows that gained labels, oldest first; how many."""
        name, perf = model.key, model.config.performance
        if (model.performance_profile is None and model.packed_performance is None) or perf is None:
            return 0
        store = self._store
        stale = store.stale(name, _REFRESH_BATCH)
        if not stale:  # the idle monitor's every turn: nothing to load monitor.performance (pandas) for
            return 0
        from monitor.performance.profile import LabelledRecords, PerformanceResult

        model.unpack(self._lock)  # when profiled in the child, labels may land before a first evaluation
        newest: PerformanceRow | None = None
        for row in stale:
            labelled = store.labelled(name, row.first_rec, row.last_rec)
            try:
                previous = PerformanceResult.from_dict(row.result)
                result = model.performance_profile.realize(previous, LabelledRecords.from_rows(labelled, perf) if labelled else None)
            except Exception as exc:
                log.error("performance_refresh_failed model=%s last_rec=%d error=%s detail=%s", name, row.last_rec, type(exc).__name__, exc)
                continue
            fresh = replace(row, n_labelled=len(labelled), result=result.to_dict(), updated_at=self._clock(), stale=False)
            store.put(fresh)
            if fresh.n_labelled >= perf.min_labels and fresh.last_rec >= model.realized_last_rec:
                with self._lock:
                    model.realized, model.realized_last_rec = result, fresh.last_rec
                newest = fresh
        if newest is not None:
            self._announce(model, newest)
        if stale:
            log.info("performance_refreshed model=%s windows=%d", name, len(stale))
        return len(stale)

    def _announce(self, model: ModelState, newest: PerformanceRow) -> None:
        """Tell the listeners the newest judged window and how many judged windows degraded in a row."""
        perf = model.config.performance
        assert perf is not None
        rows = self._store.history(model.key, _STREAK_LOOKBACK, newest.last_rec)
        streak, first = 0, None
        for row, result in _results(rows):
            if row.n_labelled < perf.min_labels:
                continue
            if not result.realized_degraded:
                break
            streak, first = streak + 1, row.point
        with self._lock:
            result = model.realized
        if result is None:
            return
        self._notify(PerformanceVerdict(model.config.key, newest.window_start, newest.window_end, newest.point, result,
                                        streak, first, newest.updated_at, version=model.version))


class _EmbeddedStore:
    """The embedded monitor's SQLite tables, every call on its writer thread."""

    def __init__(self, state: RuntimeState) -> None:
        self._state = state

    def _call(self, work: Callable[..., Any], *args: Any) -> Any:
        return self._state.writer.submit(work, *args).result()

    def labelled(self, model: str, first_rec: int, last_rec: int) -> list[dict[str, Any]]:
        return self._call(self._state.require_store().labels.window, model, first_rec, last_rec)  # type: ignore[no-any-return]

    def stale(self, model: str, limit: int) -> list[PerformanceRow]:
        return self._call(self._state.require_store().labels.stale, model, limit)  # type: ignore[no-any-return]

    def put(self, row: PerformanceRow) -> None:
        self._call(self._state.require_store().put_performance, row)

    def history(self, model: str, limit: int, up_to: int | None = None) -> list[PerformanceRow]:
        return self._call(self._state.require_store().labels.history, model, limit, up_to)  # type: ignore[no-any-return]


class PerformanceRuntime(WindowPerformance):
    """The embedded monitor's: `WindowPerformance` over the SQLite store, refreshing every model."""

    def __init__(self, state: RuntimeState, notify: Callable[[PerformanceVerdict], None]) -> None:
        super().__init__(_EmbeddedStore(state), state.lock, state.clock, notify)
        self._state = state

    def restore(self, model: ModelState) -> None:
        """At start-up, on the writer thread itself (so the store is read directly)."""
        if model.config.performance is not None:
            self.restore_from(model, self._state.require_store().labels.history(model.key, limit=_STREAK_LOOKBACK))

    def refresh(self) -> int:
        """Recompute the realized part of windows that gained labels (evaluator thread); how many."""
        return sum(self.refresh_model(model) for _, model in self._state.states())  # a copy: tracks come and go


def _results(rows: Sequence[PerformanceRow]) -> list[tuple[PerformanceRow, Any]]:
    from monitor.performance.result import PerformanceResult

    out = []
    for row in rows:
        try:
            out.append((row, PerformanceResult.from_dict(row.result)))
        except (KeyError, TypeError, ValueError):  # a row an older version wrote differently: skipped, not fatal
            continue
    return out
