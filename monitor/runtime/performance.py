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
from typing import Any

import pandas as pd

from monitor.core.config import Config, ModelConfig
from monitor.core.labelstore import PerformanceRow
from monitor.runtime.reference import load_reference
from monitor.runtime.state import ModelState, RuntimeState
from monitor.runtime.verdict import PerformanceVerdict
from monitor.windows import DueWindow

__all__ = ["PerformanceRuntime", "performance_profiles"]

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
            profiles[model.name] = PerformanceProfile.from_reference(load_reference(model), model.performance)
        except Exception as exc:
            errors[model.name] = f"{type(exc).__name__}: {exc}"
            log.error("performance_profile_failed model=%s error=%s detail=%s", model.name, type(exc).__name__, exc)
    return profiles, errors


class PerformanceRuntime:
    def __init__(self, state: RuntimeState, notify: Callable[[PerformanceVerdict], None]) -> None:
        self._state = state
        self._notify = notify

    def restore(self, model: ModelState) -> None:
        """The newest estimate and the newest judged result from the store (on the writer thread)."""
        perf = model.config.performance
        if perf is None:
            return
        rows = self._state.require_store().labels.history(model.config.name, limit=_STREAK_LOOKBACK)
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
        state, name = self._state, model.config.name
        try:
            rows = state.writer.submit(state.require_store().labels.window, name, window.first_rec, window.last_rec).result()
            result = profile.evaluate(frame, LabelledRecords.from_rows(rows, perf) if rows else None)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("performance_evaluation_failed model=%s last_rec=%d error=%s at=%s:%s", name, window.last_rec,
                      type(exc).__name__, where.filename, where.lineno)
            return None
        return PerformanceRow(name, window.first_rec, window.last_rec, window.start, window.end, window.point,
                              window.n_records, len(rows), result.to_dict(), evaluated_at, evaluated_at)

    def published(self, model: ModelState, row: PerformanceRow) -> None:
        """After the row is stored: the snapshot's newest estimate (and judged result) (hold the lock)."""
        from monitor.performance.profile import PerformanceResult

        result = PerformanceResult.from_dict(row.result)
        model.estimated = result
        perf = model.config.performance
        if perf is not None and row.n_labelled >= perf.min_labels and row.last_rec >= model.realized_last_rec:
            model.realized, model.realized_last_rec = result, row.last_rec

    def refresh(self) -> int:
        """Recompute the realized part of windows that gained labels (evaluator thread); how many."""
        done = 0
        for model in self._state.models.values():
            if model.performance_profile is not None:
                done += self._refresh_model(model)
        return done

    def _refresh_model(self, model: ModelState) -> int:
        from monitor.performance.profile import LabelledRecords, PerformanceResult

        state, name, perf = self._state, model.config.name, model.config.performance
        assert perf is not None
        store = state.require_store()
        stale = state.writer.submit(store.labels.stale, name, _REFRESH_BATCH).result()
        newest: PerformanceRow | None = None
        for row in stale:
            labelled = state.writer.submit(store.labels.window, name, row.first_rec, row.last_rec).result()
            try:
                previous = PerformanceResult.from_dict(row.result)
                result = _realize(model, previous, LabelledRecords.from_rows(labelled, perf) if labelled else None)
            except Exception as exc:
                log.error("performance_refresh_failed model=%s last_rec=%d error=%s detail=%s", name, row.last_rec, type(exc).__name__, exc)
                continue
            fresh = replace(row, n_labelled=len(labelled), result=result.to_dict(), updated_at=state.clock(), stale=False)
            state.writer.submit(store.put_performance, fresh).result()
            if fresh.n_labelled >= perf.min_labels and fresh.last_rec >= model.realized_last_rec:
                with state.lock:
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
        state = self._state
        rows = state.writer.submit(state.require_store().labels.history, model.config.name, _STREAK_LOOKBACK,
                                   newest.last_rec).result()
        streak, first = 0, None
        for row, result in _results(rows):
            if row.n_labelled < perf.min_labels:
                continue
            if not result.realized_degraded:
                break
            streak, first = streak + 1, row.point
        with state.lock:
            result = model.realized
        if result is None:
            return
        self._notify(PerformanceVerdict(model.config.name, newest.window_start, newest.window_end, newest.point, result,
                                        streak, first, newest.updated_at))


def _realize(model: ModelState, previous: Any, labelled: Any) -> Any:
    """`previous` with its realized part judged again on `labelled`; the estimate (which depends on
    the window's records, not on labels) is kept as it was computed."""
    perf = model.config.performance
    assert perf is not None
    if labelled is None:
        return replace(previous, n_labelled=0, coverage=0.0 if previous.n_records else None, realized=None, per_class=None,
                       threshold_realized=None, realized_degraded=None)
    frame = pd.DataFrame({perf.prediction: list(labelled.predictions)})
    if labelled.probabilities is not None:
        for i, column in enumerate(perf.probabilities.values()):
            frame[column] = labelled.probabilities[:, i]
    fresh = model.performance_profile.evaluate(frame, labelled)  # its estimate, of the labelled records, is dropped
    n = previous.n_records
    return replace(fresh, n_records=n, coverage=fresh.n_labelled / n if n else None, estimated=previous.estimated,
                   band=previous.band, threshold_estimated=previous.threshold_estimated,
                   estimated_degraded=previous.estimated_degraded)


def _results(rows: Sequence[PerformanceRow]) -> list[tuple[PerformanceRow, Any]]:
    from monitor.performance.profile import PerformanceResult

    out = []
    for row in rows:
        try:
            out.append((row, PerformanceResult.from_dict(row.result)))
        except (KeyError, TypeError, ValueError):  # a row an older version wrote differently: skipped, not fatal
            continue
    return out
