"""The running monitor: ingest into the store, sliding windows, the background evaluation loop.

Threads and why:
- one *writer* thread owns the SQLite connection: every transaction (ingest, CloudEvent halves,
  evaluations, retention) is serialized there, so record ordinals follow commit order and the
  event loop never blocks on an fsync. Ingest batches that queue up while it commits are
  committed together in the next transaction (group commit);
- one *evaluator* thread runs the drift engine, so an evaluation (up to ~1 s) never delays an
  acknowledgement;
- the asyncio loop decodes and parses each batch on arrival (the writer's SQLite calls release
  the GIL, so this overlaps the commit of earlier batches), then awaits the writer. `_lock`
  guards the windows and counters they share.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from monitor.capture import CapturedEvent, ModelSchema, Record, Rejected, encode_event, event_records
from monitor.capture.cloudevents import Half, join_halves
from monitor.config import Config, ModelConfig
from monitor.snapshot import ModelSnapshot, WindowInfo
from monitor.store import EvaluationRow, EventRow, EventStore, PendingHalf, StoredEvent
from monitor.storelock import StoreLock
from monitor.windows import DueWindow, SlidingWindow

__all__ = ["CloudEventOutcome", "IngestResult", "Monitor", "UnknownModel", "load_reference", "window_selection"]

log = logging.getLogger("driftwatch.monitor")

RETENTION_INTERVAL = 60.0


class EvaluationListener(Protocol):
    """The retraining controller's side of an evaluation (see retrain/policy.py)."""

    def on_evaluation(self, model: str, evaluation: Any) -> Any: ...


class UnknownModel(KeyError):
    """A model name that is not in the config."""


@dataclass(frozen=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected, "reasons": dict(self.reasons)}


@dataclass(frozen=True)
class CloudEventOutcome:
    status: str
    """`pending` (waiting for its partner), `joined`, or `duplicate`."""
    reason: str | None = None
    """Why the joined event was rejected, if it was."""


def load_reference(model: ModelConfig) -> pd.DataFrame:
    """The model's reference data (CSV or Parquet), sampled to `max_rows` with a fixed seed."""
    ref = model.reference
    fmt = ref.format if ref.format != "auto" else ("parquet" if ref.path.suffix.lower() in (".parquet", ".pq") else "csv")
    df = pd.read_parquet(ref.path) if fmt == "parquet" else pd.read_csv(ref.path)
    if ref.max_rows is not None and len(df) > ref.max_rows:
        df = df.sample(n=ref.max_rows, random_state=0).reset_index(drop=True)
    return df


@dataclass
class _ModelState:
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


@dataclass(frozen=True, slots=True)
class _Queued:
    """A parsed batch waiting for the writer's next commit."""

    rows: list[EventRow]
    parsed: list[list[Record]]
    unknown: int
    """Events of models that are not configured: counted, not stored."""
    future: Future[IngestResult]
    received_at: float
    """The clock the rows were received at (the windows judge timestamps against it)."""


class Monitor:
    """State, ingest and evaluation of all configured models; `start()` before use, `stop()` after."""

    def __init__(
        self,
        config: Config,
        *,
        controller: EvaluationListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.controller = controller
        self._clock = clock
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-store")
        self._queue: list[_Queued] = []
        self._queue_lock = threading.Lock()
        self._evaluator = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-eval")
        self._models = {
            m.name: _ModelState(m, ModelSchema.from_config(m), SlidingWindow(m.window)) for m in config.models
        }
        self.store: EventStore | None = None
        self._store_lock: StoreLock | None = None
        self.unknown_model_events = 0
        self.profile_errors: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_retention = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Store open and every model's reference profiled."""
        return self.store is not None and all(s.profile is not None for s in self._models.values())

    async def start(self, *, background: bool = True) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._open)
        await loop.run_in_executor(self._evaluator, self._build_profiles)
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
        store = self.store
        if store is not None:
            self._writer.submit(store.close).result()
        self._writer.shutdown(wait=True)
        self.store = None
        if self._store_lock is not None:
            self._store_lock.release()
            self._store_lock = None

    def _open(self) -> None:
        cfg = self.config.server.store
        self._store_lock = StoreLock(cfg.path).acquire()  # StoreInUse when another monitor writes this file
        store = EventStore(cfg.path, synchronous="FULL" if cfg.synchronous == "full" else "NORMAL")
        for state in self._models.values():
            self._rebuild(store, state)
        self.store = store
        log.info("store_open path=%s pending_halves=%d", store.path, store.pending_count())

    def _rebuild(self, store: EventStore, state: _ModelState) -> None:
        """Refill the window from the store, so windows after a restart equal those before, and
        collect the last evaluation's records (its result is restored by re-evaluating them)."""
        name = state.config.name
        last = store.evaluations(name, limit=2)
        ev = last[0] if last else None
        if ev is not None:
            state.info = WindowInfo(ev.window_start, ev.window_end, ev.first_seq, ev.last_seq, ev.n_records)
            state.last_evaluation = ev.evaluated_at
            state.cusum = (_cusum_state(last[1].result) if len(last) > 1 else {}, _cusum_state(ev.result))
        now = self._clock()
        window = SlidingWindow(
            state.config.window, last_rec=ev.last_rec if ev else 0, last_end=ev.window_end if ev else 0.0,
            last_point=ev.point if ev else None, now=now,
        )
        total = store.record_total(name)
        after = window.needed_from(total, now, lambda ts: store.first_rec_since(name, ts, received_since=ts - window.horizon))
        # The last window's records restore its result, however long ago it was; when they are older
        # than the replay they are read on their own: replaying everything since them would re-parse
        # all retained events at every start-up of a model whose later windows were all skipped.
        apart = ev is not None and ev.first_rec <= after
        replayed, reread, restore = 0, 0, []
        for stored, records in self._reparsed(state, store.accepted_since(name, after)):
            window.add(stored.seq, stored.ts, stored.rec_end or 0, records, now=now)
            replayed += len(records)
            if ev is not None and not apart:
                restore += window_selection(ev, stored, records)
        if ev is not None and apart:
            for stored, records in self._reparsed(state, store.accepted_between(name, ev.first_rec, ev.last_rec)):
                reread += len(records)
                restore += window_selection(ev, stored, records)
        state.window = window
        state.restore = restore if ev is not None and len(restore) == ev.n_records else None
        log.info("window_rebuilt model=%s records_total=%d replayed=%d reread=%d restored=%s",
                 name, total, replayed, reread, state.restore is not None)

    def _reparsed(self, state: _ModelState, events: Iterable[StoredEvent]) -> Iterator[tuple[StoredEvent, list[Record]]]:
        """Stored events with their records parsed again (those this version cannot parse are left out)."""
        for stored in events:
            records = self._reparse(state, stored)
            if records is not None:
                yield stored, records

    @staticmethod
    def _reparse(state: _ModelState, stored: StoredEvent) -> list[Record] | None:
        try:
            records = event_records(state.schema, CapturedEvent.model_validate_json(stored.raw))
        except Rejected as exc:
            log.warning("rebuild_reparse_rejected model=%s seq=%d reason=%s", state.config.name, stored.seq, exc.reason)
            return None
        except ValueError:  # a row this version's envelope refuses must not stop the start-up
            log.warning("rebuild_reparse_invalid model=%s seq=%d", state.config.name, stored.seq)
            return None
        if len(records) != stored.n_records:
            log.warning("rebuild_record_count_changed model=%s seq=%d", state.config.name, stored.seq)
            return None
        return records

    def _build_profiles(self) -> None:
        """Profile every reference; re-evaluate the last stored window so results survive restarts."""
        from monitor.drift import build_profile, evaluate, specs_from_config
        from monitor.drift.calibration import calibrated_detector

        for name, state in self._models.items():
            try:
                specs, settings = specs_from_config(self.config, state.config)
                reference = load_reference(state.config)
                profile = build_profile(reference, specs, settings)
                detector = calibrated_detector(state.config, reference, profile)
            except Exception as exc:  # a bad reference must not take the whole monitor down
                self.profile_errors[name] = f"{type(exc).__name__}: {exc}"
                log.error("reference_profile_failed model=%s error=%s", name, type(exc).__name__)
                continue
            records, state.restore = state.restore, None  # needed once: do not hold a window's records
            if detector is not None:
                # Re-evaluating the last window from the state before it ends in the state after
                # it, so a restart neither resets nor double-counts accumulated evidence.
                detector.restore(state.cusum[0] if records else state.cusum[1])
            result = None
            if records:
                try:
                    frame = _frame(state.config, records)
                    result = detector.evaluate(frame) if detector is not None else evaluate(profile, frame)
                except Exception as exc:  # start without the last result rather than not at all
                    log.error("restore_evaluation_failed model=%s error=%s", name, type(exc).__name__)
            with self._lock:
                state.profile, state.detector = profile, detector
                state.result = state.result or result

    # -- ingest -------------------------------------------------------------------------------------

    def has_model(self, name: str) -> bool:
        return name in self._models

    async def ingest(self, events: Sequence[CapturedEvent]) -> IngestResult:
        """Store a batch in one durable transaction, then feed the windows; counts per outcome.

        The batch is parsed here, on arrival, so that parsing overlaps the writer's commit of
        earlier batches (SQLite releases the GIL while it writes and fsyncs). Batches that arrive
        while the writer is busy are committed together (group commit: one transaction and one
        fsync for all of them); each is still answered only after that commit.
        """
        known = [e for e in events if e.model in self._models]
        now = self._clock()
        rows, parsed = self._prepare(known, now)
        batch = _Queued(rows, parsed, len(events) - len(known), Future(), now)
        with self._queue_lock:
            self._queue.append(batch)
        self._writer.submit(self._ingest_queued)
        return await asyncio.wrap_future(batch.future)

    def _ingest_queued(self) -> None:
        """Commit every queued batch (on the writer thread); a no-op when an earlier call took them."""
        with self._queue_lock:
            queued, self._queue = self._queue, []
        # A batch whose request was cancelled before its turn is not stored (it was never acknowledged).
        batches = [b for b in queued if b.future.set_running_or_notify_cancel()]
        if not batches:
            return
        try:
            store = self._require_store()
            with store.transaction():
                stored = store.append([row for b in batches for row in b.rows])
        except BaseException as exc:  # every waiting request gets the error, none hangs
            for b in batches:
                b.future.set_exception(exc)
            raise
        results, start = [], 0
        with self._lock:
            for b in batches:
                mine = stored[start : start + len(b.rows)]
                start += len(b.rows)
                reasons = self._feed(mine, b.parsed, b.received_at)
                if b.unknown:
                    self.unknown_model_events += b.unknown
                    reasons["unknown_model"] += b.unknown
                duplicates = sum(1 for s in mine if s is None)
                rejected = sum(reasons.values())
                results.append(IngestResult(len(b.rows) + b.unknown - duplicates - rejected, duplicates, rejected, dict(reasons)))
        for b, result in zip(batches, results, strict=True):
            b.future.set_result(result)

    def _prepare(self, events: Iterable[CapturedEvent], now: float) -> tuple[list[EventRow], list[list[Record]]]:
        """Parse events of configured models into store rows (and their records) before the commit.

        A payload the parser fails on unexpectedly (a bug, or input nobody foresaw) is one rejected
        event (`parse_error`), never a failed batch: a sender would retry that batch for ever."""
        rows, parsed = [], []
        for e in events:
            try:
                records, reason = event_records(self._models[e.model].schema, e), None
            except Rejected as exc:
                records, reason = [], exc.reason
            except Exception as exc:
                records, reason = [], "parse_error"
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.error("payload_parse_failed model=%s error=%s at=%s:%s", e.model, type(exc).__name__, where.filename, where.lineno)
            rows.append(EventRow(e.model, e.id, e.timestamp, now, reason, len(records), encode_event(e)))
            parsed.append(records)
        return rows, parsed

    def _feed(self, stored: Sequence[StoredEvent | None], parsed: Sequence[list[Record]], now: float, unmatched: str | None = None) -> Counter[str]:
        """After the commit: count outcomes and append accepted records, received at `now`, to the windows (hold `_lock`)."""
        reasons: Counter[str] = Counter()
        for s, records in zip(stored, parsed, strict=True):
            if s is None:
                continue
            state = self._models[s.model]
            reason = s.reason or unmatched
            if reason is None:
                state.ingested += 1
            else:
                state.rejected[reason] += 1
                reasons[reason] += 1
            if s.rec_end is not None:
                state.window.add(s.seq, s.ts, s.rec_end, records, now=now)
        return reasons

    def _require_store(self) -> EventStore:
        if self.store is None:
            raise RuntimeError("the monitor is not started")
        return self.store

    # -- CloudEvents --------------------------------------------------------------------------------

    async def ingest_half(self, half: Half) -> CloudEventOutcome:
        """Keep a KServe request/response half, or join it with its waiting partner, durably."""
        if half.model not in self._models:
            raise UnknownModel(half.model)
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._ingest_half, half)

    def _ingest_half(self, half: Half) -> CloudEventOutcome:
        store = self._require_store()
        now = self._clock()
        other = "response" if half.kind == "request" else "request"
        with store.transaction():
            if store.contains(half.model, half.id):
                return CloudEventOutcome("duplicate")
            partner = store.take_half(half.model, half.id, other)
            if partner is None:
                added = store.put_half(PendingHalf(half.model, half.id, half.kind, now, half.to_json()))
                return CloudEventOutcome("pending" if added else "duplicate")
            halves = {half.kind: half, partner.kind: Half.from_json(partner.half)}
            rows, parsed = self._prepare([join_halves(halves["request"], halves["response"], now)], now)
            stored = store.append(rows)
        with self._lock:
            self._feed(stored, parsed, now)
        return CloudEventOutcome("joined", rows[0].reason)

    def _expire_halves(self) -> int:
        """Halves whose partner never came: a request still gives features; both are counted."""
        store = self._require_store()
        now = self._clock()
        with store.transaction():
            expired = store.take_expired_halves(now - self.config.server.cloudevents_join_timeout)
            events, kinds = [], []
            for p in expired:
                if p.model not in self._models or store.contains(p.model, p.id):
                    continue
                try:
                    half = Half.from_json(p.half)
                    event = join_halves(half if p.kind == "request" else None, half if p.kind == "response" else None, now)
                    encode_event(event)
                except Exception as exc:  # one unusable half must not keep every other one (and evaluation) waiting
                    log.error("cloudevent_half_unusable model=%s kind=%s error=%s", p.model, p.kind, type(exc).__name__)
                    with self._lock:
                        self._models[p.model].rejected["parse_error"] += 1
                    continue
                events.append(event)
                kinds.append(p.kind)
            rows, parsed = self._prepare(events, now)
            rows = [r if k == "request" else _with_reason(r, "unmatched_response") for r, k in zip(rows, kinds, strict=True)]
            parsed = [records if k == "request" else [] for records, k in zip(parsed, kinds, strict=True)]
            stored = store.append(rows)
        with self._lock:
            for s, records, k in zip(stored, parsed, kinds, strict=True):
                self._feed([s], [records], now, unmatched="unmatched_request" if k == "request" else None)
        if expired:
            log.info("cloudevent_halves_expired count=%d", len(expired))
        return len(expired)

    # -- evaluation ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.05, self.config.server.evaluation_interval)
        while True:
            try:
                await loop.run_in_executor(self._writer, self._expire_halves)
                await loop.run_in_executor(self._evaluator, self.evaluate_due)
                if self._clock() - self._last_retention >= RETENTION_INTERVAL:
                    self._last_retention = self._clock()
                    await self._retention()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("evaluation_loop_error")
            await asyncio.sleep(interval)

    async def _retention(self) -> None:
        store = self._require_store()
        cfg = self.config.server.store
        loop = asyncio.get_running_loop()
        total = 0
        while deleted := await loop.run_in_executor(
            self._writer, lambda: store.trim(older_than=self._clock() - cfg.max_age, max_bytes=cfg.max_bytes)
        ):
            total += deleted
        if total:
            log.info("retention_deleted events=%d", total)

    def evaluate_due(self) -> int:
        """Evaluate every model's newest due window (blocking; runs on the evaluator thread)."""
        from monitor.drift import evaluate

        done = 0
        for name, state in self._models.items():
            if state.profile is None:
                continue
            with self._lock:
                window = state.window.due(self._clock())
                if window is not None and not state.window.evaluable(window):
                    state.window.done(window)
                    window = None
            if window is None:
                continue
            started = time.perf_counter()
            try:
                frame = _frame(state.config, window.records)
                result = state.detector.evaluate(frame) if state.detector is not None else evaluate(state.profile, frame)
            except Exception as exc:  # a window that cannot be evaluated must not block this model's next ones, or other models
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.error("window_evaluation_failed model=%s first_rec=%d last_rec=%d error=%s at=%s:%s", name,
                          window.first_rec, window.last_rec, type(exc).__name__, where.filename, where.lineno)
                with self._lock:
                    state.window.done(window)
                continue
            evaluated_at = self._clock()
            row = EvaluationRow(
                name, window.start, window.end, window.first_seq, window.last_seq, window.first_rec,
                window.last_rec, window.n_records, result.to_dict(), evaluated_at, window.point,
            )
            self._writer.submit(self._require_store().add_evaluation, row).result()
            with self._lock:
                state.window.done(window)
                state.result = result
                state.info = WindowInfo(window.start, window.end, window.first_seq, window.last_seq, window.n_records)
                state.last_evaluation = evaluated_at
            log.info(
                "window_evaluated model=%s records=%d first_rec=%d last_rec=%d drift_share=%.3f seconds=%.3f",
                name, window.n_records, window.first_rec, window.last_rec, result.dataset.drift_share,
                time.perf_counter() - started,
            )
            self._notify(state, window, result)
            done += 1
        return done

    def _notify(self, state: _ModelState, window: DueWindow, result: Any) -> None:
        if self.controller is None:
            return
        from retrain.policy import WindowEvaluation

        critical = {c.name for c in state.config.columns if c.critical}
        drifted = tuple(sorted(n for n, f in result.features.items() if f.drifted))
        base = self.config.server.public_url
        evaluation = WindowEvaluation(
            window_start=window.start,
            window_end=window.end,
            n_records=window.n_records,
            drift_share=result.dataset.drift_share,
            dataset_drifted=result.dataset.drifted,
            drifted_features=drifted,
            critical_drifted=tuple(n for n in drifted if n in critical),
            report_url=f"{base.rstrip('/')}/reports/{state.config.name}" if base else None,
            point=window.point,
        )
        try:
            self.controller.on_evaluation(state.config.name, evaluation)
        except Exception:
            log.exception("retrain_controller_error model=%s", state.config.name)

    # -- views --------------------------------------------------------------------------------------

    def snapshot(self) -> Mapping[str, ModelSnapshot]:
        with self._lock:
            return {
                name: ModelSnapshot(
                    model=name,
                    result=s.result,
                    window=s.info,
                    window_records=s.window.current_size(),
                    last_evaluation=s.last_evaluation,
                    ingested=s.ingested,
                    rejected=dict(s.rejected),
                )
                for name, s in self._models.items()
            }


def _cusum_state(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per column, the CUSUM a stored calibrated result ended with (see CalibratedDetector.state)."""
    state = {}
    for name, feature in result.get("features", {}).items():
        evidence = (feature.get("details") or {}).get("calibration")
        if evidence and evidence.get("cusum") is not None:
            state[name] = {"s": evidence["cusum"], "alarm": bool(evidence["alarm"])}
    return state


def window_selection(ev: EvaluationRow, stored: StoredEvent, records: list[Record]) -> list[Record]:
    """The records of a stored event that the evaluated window `ev` held (its ordinals and stamps).

    The one rule for rebuilding a stored window (restart, reports): its ordinal range alone would
    also take records stamped outside the window (late, or far in the future)."""
    if not ev.window_start <= stored.ts <= ev.window_end:
        return []
    first = (stored.rec_end or 0) - len(records) + 1
    return records[max(0, ev.first_rec - first) : max(0, ev.last_rec - first + 1)]


def _with_reason(row: EventRow, reason: str) -> EventRow:
    return EventRow(row.model, row.id, row.ts, row.received_at, reason, 0, row.raw)


def _frame(model: ModelConfig, records: Sequence[Record]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=[c.name for c in model.columns])
