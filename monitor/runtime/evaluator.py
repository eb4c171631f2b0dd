"""The evaluator: profiles each reference at start-up, then evaluates every model's due windows.

With `profile_in_child` (`driftwatch serve`) the profiling runs in a child process and each model's
profile stays pickled until its first due window (`monitor.runtime.profiling`).

It runs on its own thread (the `Monitor`'s evaluator executor), so an evaluation (up to ~1 s)
never delays an acknowledgement. Each result is stored (on the writer thread) before it is
published in the snapshot and handed to the listeners as a `WindowVerdict`.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace

from monitor.core.store import EvaluationRow
from monitor.runtime import profiling
from monitor.runtime.performance import PerformanceRuntime
from monitor.runtime.recovery import restore_result
from monitor.runtime.snapshot import WindowInfo
from monitor.runtime.state import ModelState, RuntimeState
from monitor.runtime.tracks import VersionReference, reference_engine, track_key
from monitor.runtime.verdict import (
    PerformanceVerdict,
    VerdictListener,
    WindowVerdict,
    notify_performance,
)

__all__ = ["Evaluator"]

log = logging.getLogger("driftwatch.monitor")


class Evaluator:
    def __init__(self, state: RuntimeState, listeners: Sequence[VerdictListener] = (), *, profile_in_child: bool = False) -> None:
        self._state = state
        self.listeners = tuple(listeners)
        self._profile_in_child = profile_in_child
        self.profile_errors: dict[str, str] = {}
        """Models whose reference could not be profiled (they are never evaluated), with the error."""
        self.performance_errors: dict[str, str] = {}
        """Models whose performance could not be profiled (drift goes on without it), with the error."""
        self.performance = PerformanceRuntime(state, self._notify_performance)
        self.version_reference: VersionReference | None = None
        """A version's own reference (`ReferenceSwitch.version_engine`), for `tracks.reference_engine`."""

    def build_profiles(self) -> None:
        """Profile every reference; re-evaluate the last stored window so results survive restarts."""
        state = self._state
        configured = {name: model for name, model in state.models.items() if model.version is None}  # tracks: `_arm`
        made = (profiling.in_child if self._profile_in_child else profiling.in_process)(state.config, configured)
        self.profile_errors, self.performance_errors = made.profile_errors, made.performance_errors
        with state.lock:
            for name, model in configured.items():
                if name in made.engines:
                    model.profile, model.detector = made.engines[name]
                model.packed = made.packed.get(name)
                if name in made.restored:
                    model.result = model.result or made.restored[name]
                if name in made.performance:
                    model.performance_profile = made.performance[name]
                model.packed_performance = made.packed_performance.get(name)

    def evaluate_due(self) -> int:
        """Evaluate every model's newest due window (blocking; runs on the evaluator thread)."""
        state = self._state
        done = 0
        for name, model in state.states():
            base = state.models.get(model.config.key)
            if base is None or not base.profiled:
                continue
            with state.lock:
                window = model.take_due(state.clock())
            if window is None:
                continue
            started = time.perf_counter()
            try:
                from monitor.drift import evaluate  # the engine (pandas, scipy) loads with the first due window

                if not model.profiled:
                    self._arm(model, base)

                model.unpack(state.lock)  # the first window of a model profiled in the child
                frame = model.frame(window.records)
                result = model.detector.evaluate(frame) if model.detector is not None else evaluate(model.profile, frame)
            except Exception as exc:  # a window that cannot be evaluated must not block this model's next ones, or other models
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.error("window_evaluation_failed model=%s first_rec=%d last_rec=%d error=%s at=%s:%s", name,
                          window.first_rec, window.last_rec, type(exc).__name__, where.filename, where.lineno)
                with state.lock:
                    model.window.done(window)
                continue
            evaluated_at = state.clock()
            row = EvaluationRow(
                name, window.start, window.end, window.first_seq, window.last_seq, window.first_rec,
                window.last_rec, window.n_records, result.to_dict(), evaluated_at, window.point, model.reference_id,
            )
            performance = self.performance.evaluate(model, window, frame, evaluated_at)
            state.writer.submit(state.require_store().add_evaluation, row, performance).result()
            seconds = time.perf_counter() - started  # drift, performance and the stored result
            with state.lock:
                if performance is not None:
                    self.performance.published(model, performance)
                model.window.done(window)
                model.result = result
                model.evaluation_seconds.observe(seconds)
                model.info = WindowInfo(window.start, window.end, window.first_seq, window.last_seq, window.n_records,
                                        model.evaluation_seconds.copy())
                model.last_evaluation = evaluated_at
            log.info(
                "window_evaluated model=%s records=%d first_rec=%d last_rec=%d drift_share=%.3f seconds=%.3f",
                name, window.n_records, window.first_rec, window.last_rec, result.dataset.drift_share, seconds,
            )
            with state.lock:
                superseded = state.tracks.superseded(name, state.clock())
            self._notify(WindowVerdict(model.config.key, window.start, window.end, window.n_records, window.point, result,
                                       evaluated_at, model.estimated if performance is not None else None,
                                       model.reference_id, version=model.version, superseded=superseded))
            done += 1
        return done

    def _arm(self, track: ModelState, base: ModelState) -> None:
        """A version track's engine, from its model's (`tracks.reference_engine`), at its first due window;
        the result it had before a restart is restored from its stored window first."""
        engine = reference_engine(base, track.version, self._state.lock, self.version_reference)
        with self._state.lock:
            track.reference_id = engine.reference_id
        restored = restore_result(track, engine.profile, engine.detector)
        with self._state.lock:
            track.profile, track.detector = engine.profile, engine.detector
            track.performance_profile = engine.performance_profile
            track.result = track.result or restored

    def refresh_performance(self) -> int:
        """Recompute the windows new labels landed in (blocking; on the evaluator thread)."""
        return self.performance.refresh()

    def _notify_performance(self, verdict: PerformanceVerdict) -> None:
        state = self._state
        with state.lock:
            superseded = state.tracks.superseded(track_key(verdict.model, verdict.version), state.clock())
        notify_performance(self.listeners, replace(verdict, superseded=superseded))

    def _notify(self, verdict: WindowVerdict) -> None:
        """Hand the verdict to every listener; one that raises is logged and stops nothing."""
        for listener in self.listeners:
            try:
                listener.on_verdict(verdict)
            except Exception:
                log.exception("verdict_listener_error model=%s listener=%s", verdict.model, type(listener).__name__)
