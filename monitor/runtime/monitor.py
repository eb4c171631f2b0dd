"""The `Monitor` facade: lifecycle and the background loop, composing the runtime's parts.

Threads and why:
- one *writer* thread owns the SQLite connection (`RuntimeState.writer`): every transaction
  (ingest, CloudEvent halves, evaluations, retention) is serialized there, so record ordinals
  follow commit order and the event loop never blocks on an fsync (`ingest.GroupCommit`);
- one *evaluator* thread runs the drift engine (`evaluator.Evaluator`), so an evaluation never
  delays an acknowledgement;
- the asyncio loop parses each batch on arrival and awaits the writer. `RuntimeState.lock`
  guards the windows and counters they share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from monitor.capture import CapturedEvent
from monitor.capture.cloudevents import Half
from monitor.capture.labels import LabelBatch
from monitor.core.config import Config, ModelConfig
from monitor.core.referencestore import Current
from monitor.core.store import EventStore, StoreFull
from monitor.core.storelock import StoreLock
from monitor.runtime.evaluator import Evaluator
from monitor.runtime.ingest import GroupCommit, IngestResult
from monitor.runtime.joining import CloudEventOutcome, HalfJoiner
from monitor.runtime.labels import LabelIngest, LabelResult
from monitor.runtime.recovery import rebuild
from monitor.runtime.reference_switch import ReferenceSwitch, SetResult
from monitor.runtime.retention import RETENTION_INTERVAL, Retention
from monitor.runtime.snapshot import ModelSnapshot, PerformanceSnapshot
from monitor.runtime.state import RuntimeState
from monitor.runtime.tracks import SEPARATOR
from monitor.runtime.verdict import VerdictListener

__all__ = ["RETENTION_INTERVAL", "Monitor"]

log = logging.getLogger("driftwatch.monitor")


class Monitor:
    """State, ingest and evaluation of all configured models; `start()` before use, `stop()` after.

    `listeners` hear every evaluated window as a `WindowVerdict` (see monitor.runtime.verdict).
    `profile_in_child` profiles the references in a child process, keeping pandas and scipy out of
    this one until the first evaluation (`driftwatch serve`; see monitor.runtime.profiling)."""

    def __init__(
        self,
        config: Config,
        *,
        listeners: Sequence[VerdictListener] = (),
        clock: Callable[[], float] = time.time,
        profile_in_child: bool = False,
    ) -> None:
        self.config = config
        self._state = RuntimeState(config, clock)
        self._retention = Retention(self._state)
        self._state.on_commit = self._retention.after_commit
        self._ingest = GroupCommit(self._state)
        self._joiner = HalfJoiner(self._state)
        self._labels = LabelIngest(self._state)
        self._evaluation = Evaluator(self._state, listeners, profile_in_child=profile_in_child)
        self._evaluator = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-eval")
        self._references = ReferenceSwitch(self._state, self._evaluator)
        self._evaluation.version_reference = self._references.version_engine
        self._store_lock: StoreLock | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_retention = 0.0

    # -- views --------------------------------------------------------------------------------------

    @property
    def store(self) -> EventStore | None:
        """The event store while the monitor runs (use it on the writer thread only)."""
        return self._state.store

    @property
    def listeners(self) -> tuple[VerdictListener, ...]:
        return self._evaluation.listeners

    @property
    def unknown_model_events(self) -> int:
        return self._state.unknown_model_events

    @property
    def profile_errors(self) -> Mapping[str, str]:
        """Models whose reference could not be profiled, with the error."""
        return self._evaluation.profile_errors

    @property
    def performance_errors(self) -> Mapping[str, str]:
        """Models whose performance could not be profiled (they get drift only), with the error."""
        return self._evaluation.performance_errors

    @property
    def ready(self) -> bool:
        """Store open and every model's reference profiled."""
        return self._state.store is not None and all(s.profiled for _, s in self._state.states() if s.version is None)

    def has_model(self, name: str) -> bool:
        return name in self._state.models

    def versions(self, model: str) -> list[dict[str, Any]]:
        """The model's tracks (key `model`): each version's first and last event, events, superseded."""
        state = self._state
        with state.lock:
            now = state.clock()
            return [info.to_dict(state.tracks.superseded(info.key, now)) for info in state.tracks.tracks(model)]

    def default_track(self, model: str) -> str:
        """The track key a request naming no version answers for (`TrackBook.default`)."""
        with self._state.lock:
            return self._state.tracks.default(model)

    def snapshot(self) -> Mapping[str, ModelSnapshot]:
        """Every model's snapshot by its key, and every version track's by its track key."""
        with self._state.lock:
            return {
                name: ModelSnapshot(
                    model=s.config.key,
                    version=s.version,
                    result=s.result,
                    window=s.info,
                    window_records=s.window.current_size(),
                    last_evaluation=s.last_evaluation,
                    ingested=s.ingested,
                    rejected=dict(s.rejected),
                    performance=None if s.config.performance is None else PerformanceSnapshot(
                        s.estimated, s.realized, dict(s.label_counts), s.label_lag.copy()),
                )
                for name, s in self._state.models.items()
            }

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._state.writer, self._open)
        await loop.run_in_executor(self._evaluator, self._evaluation.build_profiles)
        if background:
            self._task = asyncio.create_task(self._run(), name="driftwatch-evaluation-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._evaluator.shutdown(wait=True)
        writer, store = self._state.writer, self._state.store
        if store is not None:
            writer.submit(store.close).result()
        writer.shutdown(wait=True)
        self._references.close()
        self._state.store = None
        if self._store_lock is not None:
            self._store_lock.release()
            self._store_lock = None

    def _open(self) -> None:
        cfg = self.config.server.store
        self._store_lock = StoreLock(cfg.path).acquire()  # StoreInUse when another monitor writes this file
        store = EventStore(cfg.path, synchronous="FULL" if cfg.synchronous == "full" else "NORMAL", max_bytes=cfg.max_bytes)
        names = [m.name for m in self.config.models]  # a name several namespaces now share: whose rows? left alone
        gained = {m.name: m.key for m in self.config.models if m.namespace is not None and names.count(m.name) == 1}
        for name, events in store.adopt_namespaces(gained).items():
            log.info("store_model_renamed from=%s to=%s events=%d", name, gained[name], events)
        for state in list(self._state.models.values()):
            self._restore_tracks(store, state.config)
        self._references.open()  # before the rebuild: windows start after a stored reference took over
        for state in self._state.models.values():
            rebuild(store, state, self._state.clock())
        self._state.store = store
        for state in self._state.models.values():
            self._evaluation.performance.restore(state)
        self._labels.load_counts()
        log.info("store_open path=%s pending_halves=%d", store.path, store.pending_count())

    def _restore_tracks(self, store: EventStore, model: ModelConfig) -> None:
        """The model's version tracks as the store has them (the `max_tracked` most recently seen)."""
        state = self._state
        found = store.keys_of(model.key, SEPARATOR)
        versioned = sorted((f for f in found if f[0] != model.key), key=lambda f: f[2])[-model.versions.max_tracked:]
        for key, first, last, events in [*(f for f in found if f[0] == model.key), *versioned]:
            state.tracks.restore(key, first, last, events)
            if key != model.key:
                state.track(key, self._state.clock())
        if versioned:
            log.info("version_tracks_restored model=%s versions=%d", model.key, len(versioned))

    # -- ingest -------------------------------------------------------------------------------------

    async def ingest(self, events: Sequence[CapturedEvent]) -> IngestResult:
        """Store a batch in one durable transaction, then feed the windows; counts per outcome."""
        return await self._ingest.ingest(events)

    async def ingest_half(self, half: Half) -> CloudEventOutcome:
        """Keep a KServe request/response half, or join it with its waiting partner, durably."""
        return await self._joiner.ingest_half(half)

    async def ingest_labels(self, batch: LabelBatch, stamps: Sequence[float | None]) -> LabelResult:
        """Join a batch of labels to their predictions, durably (`monitor.runtime.labels`)."""
        return await self._labels.ingest(batch, stamps)

    def refuse_labels(self, model: str, n: int) -> None:
        """Count the labels of a batch refused whole (malformed) as `invalid`."""
        self._labels.refuse(model, n)

    def performance_history(self, model: str, limit: int = 100) -> list[Any]:
        """The model's windows' performance rows, newest first (blocking; any thread)."""
        return self._state.writer.submit(self._state.require_store().labels.history, model, limit).result()

    # -- references ---------------------------------------------------------------------------------

    def set_reference(self, key: str, version: str | None, source: Literal["file", "mlflow"], origin: str,
                      fmt: Literal["csv", "parquet"], data: bytes) -> SetResult:
        """Check, store and switch to a new reference (blocking; `monitor.runtime.reference_switch`)."""
        return self._references.set(key, version, source, origin, fmt, data)

    def current_reference(self, key: str, version: str | None = None) -> Current | None:
        """The model version's current stored reference (None: the config's)."""
        return self._references.current(key, version)

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate_due(self) -> int:
        """Evaluate every model's newest due window (blocking; runs on the evaluator thread)."""
        return self._evaluation.evaluate_due()

    def refresh_performance(self) -> int:
        """Recompute the performance of windows new labels landed in (blocking; on the evaluator thread)."""
        return self._evaluation.refresh_performance()

    def _expire_halves(self) -> int:
        """Expire CloudEvent halves whose partner never came (blocking; on the writer thread)."""
        return self._joiner.expire()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.05, self.config.server.evaluation_interval)
        while True:
            try:
                await loop.run_in_executor(self._state.writer, self._expire_halves)
                await loop.run_in_executor(self._evaluator, self.evaluate_due)
                await loop.run_in_executor(self._evaluator, self.refresh_performance)
                if self._state.clock() - self._last_retention >= RETENTION_INTERVAL:
                    self._last_retention = self._state.clock()
                    await self._retention.run_pass()
            except asyncio.CancelledError:
                raise
            except StoreFull as exc:  # ingest answers 503 meanwhile; every step is tried again next turn
                log.warning("evaluation_loop_store_full path=%s", exc.path)
            except Exception:
                log.exception("evaluation_loop_error")
            await asyncio.sleep(interval)
