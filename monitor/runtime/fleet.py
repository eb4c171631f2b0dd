"""Fleet mode: monitor replicas as one Kafka consumer group over shared PostgreSQL.

The design (docs/scale-out.md): the topic is the event log, keyed by model, so a model's events
are one partition's subsequence and their order is the partition's offset order. A replica owns
the models of the partitions the group assigns it. Record ordinals are counted along that order,
so every replica that replays a partition numbers its records alike, and windows are a function
of the data alone, as in the embedded monitor. Each evaluation is stored in PostgreSQL under the
unique key (model, grid point), with the model's checkpoint: the oldest offset its window still
needs and the ordinal before it. A replica that receives a partition seeks to the partition's
checkpoint, skips each model's events before that model's own checkpoint, restores each grid's
newest evaluated point from PostgreSQL, and replays: the windows it rebuilds are the ones the
previous owner had. It evaluates a partition's models only once it has caught up with the end of
the partition as it was at assignment (the newest point is due, not every stale one).

Threads: one consumer thread polls Kafka, windows and evaluates (librdkafka's rebalance callbacks
run inside its poll, so ownership changes between two batches, never inside one); the asyncio
loop produces ingest to Kafka and reads snapshots under `lock`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from monitor.capture import CapturedEvent, ModelSchema, Rejected, event_records
from monitor.capture.cloudevents import Half, join_halves
from monitor.capture.labels import LabelBatch
from monitor.capture.message import BadRecord, LabelRecord, decode_item, encode_labels_records
from monitor.core.config import Config, ModelRouter
from monitor.core.labelstore import PerformanceRow
from monitor.core.pgstore import Checkpoint, LabelledEvent, PgStore, PgUnavailable, Prediction
from monitor.core.store import EvaluationRow
from monitor.drift.result import result_from_dict
from monitor.runtime.eventlog import EventProducer, client_settings
from monitor.runtime.ingest import IngestResult
from monitor.runtime.joining import CloudEventOutcome
from monitor.runtime.labels import OUTCOMES, LabelError, check_batch, judge, predictions_of
from monitor.runtime.performance import WindowPerformance, performance_profiles
from monitor.runtime.recovery import cusum_state
from monitor.runtime.reference import profile_references
from monitor.runtime.snapshot import ModelSnapshot, PerformanceSnapshot, WindowInfo
from monitor.runtime.state import ModelState, UnknownModel
from monitor.runtime.verdict import (
    PerformanceVerdict,
    VerdictListener,
    WindowVerdict,
    notify_performance,
)
from monitor.windows import SlidingWindow

__all__ = ["FleetMonitor"]

log = logging.getLogger("driftwatch.fleet")

DEDUP_IDS = 16_384
"""Event ids remembered per model to drop re-sent duplicates (the embedded store remembers all it retains)."""
CHECKPOINT_INTERVAL = 2.0
"""Seconds between checkpoints of every owned partition (also written with every evaluation)."""
RETENTION_INTERVAL = 60.0
"""Seconds between deletions of the owned models' evaluations older than `server.store.max_age`."""
TOO_LATE_GRACE = 86_400.0
"""Predictions are kept this long past `performance.label_delay`, so a late label is answered
`too_late` (not `unknown_id`) for a day after its prediction expired."""


@dataclass
class _Owned:
    """A model this replica owns: its window state and where its partition's replay stands."""

    state: ModelState
    partition: int
    skip_below: int
    """Events before this offset were counted in the checkpoint this model was restored from."""
    total: int
    """Ordinal of the model's newest record."""
    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    marks: deque[tuple[int, int]] = field(default_factory=deque)
    """(offset, ordinal before its first record) of accepted events still in the window, ascending."""
    halves: dict[str, tuple[int, float, Half]] = field(default_factory=dict)
    """CloudEvent halves waiting for their partner: id -> (offset, arrival, half)."""
    next_offset: int = 0

    def checkpoint(self) -> Checkpoint:
        """The oldest offset this model's window (or a waiting half) still needs, and the ordinal before it."""
        oldest = self.state.window.oldest_seq
        waiting = min((o for o, _, _ in self.halves.values()), default=None)
        while self.marks and oldest is not None and self.marks[0][0] < oldest:
            self.marks.popleft()
        if oldest is None:
            self.marks.clear()
            offset, rec = self.next_offset, self.total
        else:
            offset, rec = self.marks[0] if self.marks else (oldest, self.total)
        if waiting is not None and waiting < offset:
            offset = waiting  # events before the half's own offset are skipped on replay: rec is unchanged
        return Checkpoint(self.state.config.key, self.partition, offset, rec)


class FleetMonitor:
    """The `Monitor` interface in fleet mode: ingest appends to Kafka; a consumer thread owns models."""

    def __init__(self, config: Config, *, listeners: Sequence[VerdictListener] = (),
                 clock: Callable[[], float] = time.time, replica: str | None = None) -> None:
        assert config.fleet is not None, "FleetMonitor needs the config's fleet section"
        self.config = config
        self.fleet = config.fleet
        self.replica = replica or os.environ.get("HOSTNAME") or f"{socket.gethostname()}-{os.getpid()}"
        self.listeners = tuple(listeners)
        self.clock = clock
        self.lock = threading.Lock()
        self.profile_errors: dict[str, str] = {}
        self.bad_records: Counter[str] = Counter()
        """Records skipped by reason (garbage, wrong_schema, unknown_model, ...)."""
        self.unknown_model_events = 0
        self._configs = {m.key: m for m in config.models}
        self._router = ModelRouter(m.key for m in config.models)
        self._schemas = {m.key: ModelSchema.from_config(m) for m in config.models}
        self._profiles: dict[str, tuple[Any, Any]] = {}
        self._perf_profiles: dict[str, Any] = {}
        self.performance_errors: dict[str, str] = {}
        """Models whose performance could not be profiled (they get drift only), with the error."""
        self._performance: WindowPerformance | None = None
        self._owned: dict[str, _Owned] = {}
        self._partitions: dict[int, _Partition] = {}
        self._pg: PgStore | None = None
        self._reader: PgStore | None = None
        self._producer: EventProducer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._side = ThreadPoolExecutor(1, thread_name_prefix="driftwatch-fleet-side")
        self._predictions: list[Prediction] = []
        """Predictions of performance models consumed but not yet in PostgreSQL (flushed before any
        label record is processed and at the end of every consumed batch, before a checkpoint)."""
        self._failed = False
        """The consumer loop failed: checkpoints are no longer written (a replay redoes what was not durable)."""
        self.store = None  # the API's readiness detail: there is no SQLite store in fleet mode

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        dsn = os.environ.get(self.fleet.postgres.dsn_env)
        if not dsn:
            raise RuntimeError(f"fleet mode needs the PostgreSQL DSN in ${self.fleet.postgres.dsn_env}")
        self._pg = PgStore(dsn, replica=self.replica)
        self._reader = PgStore(dsn, replica=self.replica)
        names = [m.name for m in self.config.models]  # as the embedded store: a name now shared is left alone
        gained = {m.name: m.key for m in self.config.models if m.namespace is not None and names.count(m.name) == 1}
        if gained:
            moved = await asyncio.get_running_loop().run_in_executor(None, self._pg.adopt_namespaces, gained)
            for name, n in moved.items():
                log.info("postgres_model_renamed from=%s to=%s evaluations=%d", name, gained[name], n)
        loop = asyncio.get_running_loop()
        self._profiles, self.profile_errors = await loop.run_in_executor(
            None, profile_references, self.config, list(self._configs.values()))
        self._perf_profiles, self.performance_errors = await loop.run_in_executor(
            None, performance_profiles, self.config, list(self._configs.values()))
        self._performance = WindowPerformance(_PgPerformance(self._pg), self.lock, self.clock, self._notify_performance,
                                              transient=(PgUnavailable,))
        self._producer = EventProducer(self.fleet.kafka)
        await self._producer.start()
        if background:
            self._thread = threading.Thread(target=self._consume, name="driftwatch-fleet-consumer", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            await loop.run_in_executor(None, self._thread.join)
        if self._producer is not None:
            await self._producer.close()
        await loop.run_in_executor(None, partial(self._side.shutdown, wait=True))
        for pg in (self._pg, self._reader):
            if pg is not None:
                pg.close()

    # -- views (the Monitor interface the API and the exporter read) ---------------------------------

    @property
    def ready(self) -> bool:
        """Consumer started. Not PostgreSQL's health: ingest needs only Kafka, so a database restart
        must not take every replica out of the Service (reads answer 503 meanwhile). A consumer that
        died (it left the group, so its partitions moved) makes the replica unready."""
        return self._started.is_set() and (self._thread is None or self._thread.is_alive())

    def has_model(self, name: str) -> bool:
        return name in self._configs

    def owned_models(self) -> list[str]:
        with self.lock:
            return sorted(self._owned)

    def membership(self) -> dict[str, Any]:
        """This replica's share of the fleet: its partitions, the models it owns, records it skipped."""
        with self.lock:
            return {"replica": self.replica, "partitions": sorted(self._partitions),
                    "caught_up": sorted(p for p, part in self._partitions.items() if part.caught_up),
                    "models": sorted(self._owned), "skipped_records": dict(self.bad_records)}

    def performance_history(self, model: str, limit: int = 100) -> list[PerformanceRow]:
        """The model's windows' performance rows, newest first, from PostgreSQL (any replica, any model)."""
        assert self._reader is not None, "start() first"
        return self._reader.performance_history(model, limit)

    def owned_snapshot(self) -> Mapping[str, ModelSnapshot]:
        """Models this replica owns now: what its /metrics exports (each model by one replica)."""
        with self.lock:
            return {name: _snapshot(name, o.state) for name, o in self._owned.items()}

    def snapshot(self) -> Mapping[str, ModelSnapshot]:
        """Every configured model: owned ones from memory, the others from their newest stored
        evaluation (one query; none while PostgreSQL is unreachable)."""
        owned = self.owned_snapshot()
        others = [name for name in self._configs if name not in owned]
        try:
            latest = self._reader.latest_evaluations(others) if self._reader is not None and others else {}
        except PgUnavailable:
            latest = {}
        out: dict[str, ModelSnapshot] = {}
        for name in self._configs:
            ev = latest.get(name)
            out[name] = owned.get(name) or ModelSnapshot(
                model=name, result=result_from_dict(ev.result) if ev else None,
                window=WindowInfo(ev.window_start, ev.window_end, ev.first_seq, ev.last_seq, ev.n_records) if ev else None,
                last_evaluation=ev.evaluated_at if ev else None,
            )
        return out

    # -- ingest -------------------------------------------------------------------------------------

    async def ingest(self, events: Sequence[CapturedEvent]) -> IngestResult:
        """Append the batch to the topic; answered once the brokers acknowledged all of it.

        Parsed here too, so the sender hears about rejected payloads as from the embedded monitor;
        duplicates are only known to the owning replica (counted there, answered as accepted here)."""
        assert self._producer is not None, "start() first"
        known = []
        reasons: Counter[str] = Counter()
        for e in events:
            try:
                schema = self._schema(self._router.key(e.model, e.namespace))
            except UnknownModel:
                continue
            known.append(e)
            try:
                event_records(schema, e)
            except Rejected as exc:
                reasons[exc.reason] += 1
            except Exception:
                reasons["parse_error"] += 1
        if len(known) < len(events):
            reasons["unknown_model"] += len(events) - len(known)
        await self._producer.append(known)
        rejected = sum(reasons.values())
        return IngestResult(len(events) - rejected, 0, rejected, dict(reasons))

    async def ingest_half(self, half: Half) -> CloudEventOutcome:
        """Append a CloudEvent half to the topic keyed by its model; the owner joins the halves."""
        assert self._producer is not None, "start() first"
        self._router.key(half.model, half.namespace)  # UnknownModel: answered 404, never appended
        await self._producer.append_half(half)
        return CloudEventOutcome("pending")

    async def ingest_labels(self, batch: LabelBatch, stamps: Sequence[float | None]) -> LabelsAccepted:
        """Append a validated label batch to the topic keyed by its model; answered once the brokers
        acknowledged it. The owner of the model's partition joins and counts the labels."""
        assert self._producer is not None, "start() first"
        try:
            check_batch(self._configs.get(batch.model), batch)
        except LabelError as exc:
            if exc.status == 422:
                self.refuse_labels(batch.model, len(batch.labels))
            raise
        batch_id = uuid.uuid4().hex
        if batch.labels:
            await self._producer.append_labels(encode_labels_records(batch_id, batch, stamps))
        return LabelsAccepted(batch_id, len(batch.labels))

    def refuse_labels(self, model: str, n: int) -> None:
        """Count the labels of a batch refused whole as `invalid`, in PostgreSQL (best effort)."""
        if model not in self._configs or not n or self._reader is None:
            return
        reader = self._reader

        def count() -> None:  # off the event loop
            try:
                reader.count_labels(model, {"invalid": n})
            except PgUnavailable:
                log.warning("invalid_labels_not_counted model=%s n=%d reason=postgres_unavailable", model, n)

        self._side.submit(count)

    def _schema(self, model: str) -> ModelSchema:
        return self._schemas[model]

    # -- the consumer thread ------------------------------------------------------------------------

    def _consume(self) -> None:
        from confluent_kafka import Consumer

        kafka = self.fleet.kafka
        consumer = Consumer(client_settings(kafka) | {
            "group.id": kafka.group_id, "client.id": self.replica, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000, "enable.partition.eof": False,
        })
        consumer.subscribe([kafka.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._started.set()
        interval = max(0.05, self.config.server.evaluation_interval)
        last_eval = last_mark = last_trim = 0.0
        try:
            while not self._stopping.is_set():
                for msg in consumer.consume(1000, timeout=0.1):
                    error = msg.error()
                    if error is not None:
                        log.warning("kafka_consume_error error=%s", error.name())
                        continue
                    self._handle(msg)
                self._flush_predictions()
                now = time.monotonic()
                if now - last_eval >= interval:
                    last_eval = now
                    self._caught_up(consumer)
                    self._expire_halves()
                    self.evaluate_due()
                    self.refresh_performance()
                if now - last_mark >= CHECKPOINT_INTERVAL:
                    last_mark = now
                    self._checkpoint(consumer, list(self._partitions))
                    self._reload_label_counts()
                if now - last_trim >= RETENTION_INTERVAL:
                    last_trim = now
                    self._trim()
        except Exception:
            self._failed = True  # what this batch did not make durable must be replayed: no checkpoint moves past it
            log.exception("fleet_consumer_failed replica=%s", self.replica)
            raise
        finally:
            self._checkpoint(consumer, list(self._partitions))
            consumer.close()  # leaves the group: the others take its partitions at once

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        pg = self._pg
        assert pg is not None
        for tp in partitions:
            offset, marks = _retrying(partial(pg.replay_from, tp.topic, tp.partition), self._stopping)
            tp.offset = offset if offset is not None else OFFSET_BEGINNING
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            with self.lock:
                self._partitions[tp.partition] = _Partition(marks, high, caught_up=max(low, offset or 0) >= high)
            log.info("partition_assigned replica=%s partition=%d replay_from=%s catch_up_to=%d models=%d",
                     self.replica, tp.partition, offset, high, len(marks))
        consumer.incremental_assign(partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._checkpoint(consumer, [tp.partition for tp in partitions])
        self._drop([tp.partition for tp in partitions])
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions another replica may already own: drop them without writing their checkpoints."""
        self._drop([tp.partition for tp in partitions])
        consumer.incremental_unassign(partitions)

    def _drop(self, partitions: list[int]) -> None:
        gone = set(partitions)
        with self.lock:
            for name in [n for n, o in self._owned.items() if o.partition in gone]:
                del self._owned[name]
            for p in gone:
                self._partitions.pop(p, None)
        log.info("partitions_revoked replica=%s partitions=%s", self.replica, sorted(gone))

    def _handle(self, msg: Any) -> None:
        partition, offset = msg.partition(), msg.offset()
        kind, stamp = msg.timestamp()
        arrival = stamp / 1000 if kind != 0 and stamp > 0 else self.clock()
        try:
            item = decode_item(msg.key(), msg.value(), msg.headers())
        except BadRecord as exc:
            self._bad(exc.reason, partition, offset)
            return
        try:
            key = item.model if isinstance(item, LabelRecord) else self._router.key(item.model, item.namespace)
        except UnknownModel:
            key = None
        if key not in self._configs:
            with self.lock:
                self.unknown_model_events += 1
            self._bad("unknown_model", partition, offset)
            return
        owned = self._own(key, partition, arrival)
        if owned is None or offset < owned.skip_below:
            return
        owned.next_offset = offset + 1
        if isinstance(item, LabelRecord):
            self._labels(owned, item, partition, offset, arrival)
        elif isinstance(item, Half):
            self._half(owned, item, offset, arrival)
        else:
            self._event(owned, item, offset, arrival)

    def _bad(self, reason: str, partition: int, offset: int) -> None:
        with self.lock:
            self.bad_records[reason] += 1
        log.warning("kafka_record_skipped reason=%s partition=%d offset=%d", reason, partition, offset)

    def _event(self, owned: _Owned, event: CapturedEvent, offset: int, arrival: float) -> None:
        if event.id in owned.ids:
            return  # a re-sent duplicate: stored once
        owned.ids[event.id] = None
        if len(owned.ids) > DEDUP_IDS:
            owned.ids.popitem(last=False)
        state = owned.state
        perf = state.config.performance
        try:
            records = event_records(state.schema, event)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, Rejected) else "parse_error"
            with self.lock:
                state.rejected[reason] += 1
            if perf is not None:  # its labels are answered `event_rejected`
                self._predictions.append(Prediction(state.config.key, event.id, event.timestamp, None, None, reason, []))
            return
        with self.lock:
            owned.marks.append((offset, owned.total))
            first = owned.total + 1
            owned.total += len(records)
            state.ingested += 1
            state.window.add(offset, event.timestamp, owned.total, records, now=arrival)
        if perf is not None and records:
            self._predictions.append(Prediction(state.config.key, event.id, event.timestamp, first, owned.total, None,
                                                predictions_of(perf, records)))

    def _flush_predictions(self) -> None:
        """Store the predictions consumed so far (retried: a label must find every earlier prediction)."""
        if not self._predictions or self._pg is None:
            return
        _retrying(partial(self._pg.add_predictions, list(self._predictions)), self._stopping)
        self._predictions.clear()

    def _labels(self, owned: _Owned, record: LabelRecord, partition: int, offset: int, now: float) -> None:
        """Join a label batch to the predictions before it, exactly once (its batch id is committed
        with its labels and counts). `now` is the record's Kafka timestamp, when the batch was
        accepted: a replay judges `too_late` as the first reading did."""
        state, pg = owned.state, self._pg
        perf = state.config.performance
        assert pg is not None
        if perf is None:  # the API refuses these; a record from another producer is skipped
            self._bad("no_performance", partition, offset)
            return
        self._flush_predictions()
        stamps = record.stamps()
        ids = list(dict.fromkeys(item.id for item in record.labels))
        lags: list[float] = []

        def decide(found: dict[str, Prediction], labelled: set[str]) -> tuple[list[LabelledEvent], dict[str, int]]:
            lags.clear()
            outcomes: Counter[str] = Counter()
            events: list[LabelledEvent] = []
            seen: set[str] = set()
            for item, stamp in zip(record.labels, stamps, strict=True):
                p = found.get(item.id)
                values = item.values()
                outcome = judge(perf, found=p is not None, rejected=p is not None and p.first_rec is None,
                                duplicate=item.id in labelled or item.id in seen, age=now - p.ts if p is not None else 0.0,
                                n_labels=len(values), n_records=len(p.predictions) if p is not None else 0)
                outcomes[outcome] += 1
                if outcome != "joined" or p is None or p.first_rec is None or p.last_rec is None:
                    continue
                seen.add(item.id)
                items = [{"label": v, **pred} for v, pred in zip(values, p.predictions, strict=True)]
                events.append(LabelledEvent(record.model, item.id, p.first_rec, p.last_rec, items, p.ts, stamp, now))
                lags.append(now - p.ts)
            return events, {o: outcomes.get(o, 0) for o in OUTCOMES}

        outcomes = _retrying(partial(pg.add_labels, record.batch, record.model, ids, decide, now), self._stopping)
        if outcomes is None:
            log.info("labels_replayed model=%s batch=%s offset=%d counted=already", record.model, record.batch, offset)
            return
        with self.lock:
            state.label_counts.update({k: v for k, v in outcomes.items() if v})
            for lag in lags:
                state.label_lag.observe(lag)
        log.info("labels_ingested model=%s batch=%s %s", record.model, record.batch,
                 " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()) if v))

    def _reload_label_counts(self) -> None:
        """The owned models' outcome counts from PostgreSQL, the one account (invalid batches are
        counted there by whichever replica refused them)."""
        models = [n for n, o in self._owned.items() if o.state.config.performance is not None]
        if not models or self._pg is None:
            return
        try:
            counts = self._pg.label_counts(models)
        except PgUnavailable:
            return
        with self.lock:
            for name in models:
                owned = self._owned.get(name)
                if owned is not None:
                    owned.state.label_counts = Counter(counts.get(name, {}))

    def _half(self, owned: _Owned, half: Half, offset: int, arrival: float) -> None:
        waiting = owned.halves.get(half.id)
        if waiting is None or waiting[2].kind == half.kind:  # the first half, or a duplicate of the waiting one
            if waiting is None and half.id not in owned.ids:
                owned.halves[half.id] = (offset, arrival, half)
            return
        del owned.halves[half.id]
        pair = {half.kind: half, waiting[2].kind: waiting[2]}
        self._event(owned, join_halves(pair.get("request"), pair.get("response"), arrival), offset, arrival)

    def _expire_halves(self) -> None:
        cutoff = self.clock() - self.config.server.cloudevents_join_timeout
        for owned in list(self._owned.values()):
            for hid, (offset, arrival, half) in list(owned.halves.items()):
                if arrival < cutoff:
                    del owned.halves[hid]
                    lone = join_halves(half if half.kind == "request" else None, half if half.kind == "response" else None, arrival)
                    self._event(owned, lone, offset, arrival)

    def _own(self, model: str, partition: int, arrival: float) -> _Owned | None:
        owned = self._owned.get(model)
        if owned is not None:
            if owned.partition != partition:  # a producer with another partitioner: windows would split
                self._bad("wrong_partition", partition, -1)
                return None
            return owned
        part = self._partitions.get(partition)
        if part is None:
            return None
        pg = self._pg
        assert pg is not None
        mark = part.checkpoints.get(model)
        points, last_rec = _retrying(partial(pg.evaluated_points, model), self._stopping)
        last = _retrying(partial(pg.evaluations, model, 1), self._stopping)
        ev = last[0] if last else None
        cfg = self._configs[model]
        window = SlidingWindow(cfg.window, last_rec=last_rec, last_end=ev.window_end if ev else 0.0,
                               last_points=points, now=arrival)
        state = ModelState(cfg, self._schema(model), window)
        profile, detector = self._profiles.get(model, (None, None))
        state.profile, state.detector = profile, detector
        if detector is not None:
            detector.restore(cusum_state(ev.result) if ev else {})
        if ev is not None:
            state.info = WindowInfo(ev.window_start, ev.window_end, ev.first_seq, ev.last_seq, ev.n_records)
            state.last_evaluation = ev.evaluated_at
            state.result = result_from_dict(ev.result)  # exported at once: an alert does not resolve on a move
        state.performance_profile = self._perf_profiles.get(model)
        if cfg.performance is not None and self._performance is not None:
            _retrying(partial(self._performance.restore, state), self._stopping)
            state.label_counts = Counter(_retrying(partial(pg.label_counts, [model]), self._stopping).get(model, {}))
        owned = _Owned(state, partition, mark.replay_offset if mark else 0, mark.replay_rec if mark else 0)
        with self.lock:
            self._owned[model] = owned
        log.info("model_owned replica=%s model=%s partition=%d replay_rec=%d", self.replica, model, partition, owned.total)
        return owned

    def _caught_up(self, consumer: Any) -> None:
        """Mark partitions whose replay reached the end they had at assignment."""
        from confluent_kafka import TopicPartition

        waiting = [p for p, part in self._partitions.items() if not part.caught_up]
        if not waiting:
            return
        for tp in consumer.position([TopicPartition(self.fleet.kafka.topic, p) for p in waiting]):
            part = self._partitions.get(tp.partition)
            if part is not None and tp.offset >= part.catch_up_to:
                with self.lock:
                    part.caught_up = True
                log.info("partition_caught_up replica=%s partition=%d offset=%d", self.replica, tp.partition, tp.offset)

    def evaluate_due(self) -> int:
        """Evaluate the newest due window of every owned model whose partition caught up."""
        from monitor.drift import evaluate

        done = 0
        for name, owned in list(self._owned.items()):
            part = self._partitions.get(owned.partition)
            state = owned.state
            if part is None or not part.caught_up or state.profile is None:
                continue
            with self.lock:
                window = state.take_due(self.clock())
            if window is None:
                continue
            try:
                frame = state.frame(window.records)
                result = state.detector.evaluate(frame) if state.detector is not None else evaluate(state.profile, frame)
            except Exception as exc:
                log.error("window_evaluation_failed model=%s last_rec=%d error=%s", name, window.last_rec, type(exc).__name__)
                with self.lock:
                    state.window.done(window)
                continue
            evaluated_at = self.clock()
            row = EvaluationRow(name, window.start, window.end, window.first_seq, window.last_seq, window.first_rec,
                                window.last_rec, window.n_records, result.to_dict(), evaluated_at, window.point)
            with self.lock:
                mark = owned.checkpoint()
                first_base = next((rec for offset, rec in owned.marks if offset == window.first_seq), None)
            try:
                assert self._pg is not None and self._performance is not None
                performance = self._performance.evaluate(state, window, frame, evaluated_at)
                stored = self._pg.add_evaluation(row, [mark], self.fleet.kafka.topic, partition=owned.partition,
                                                 first_base=first_base, performance=performance)
            except PgUnavailable:  # not marked done: the point is evaluated again next turn
                log.warning("evaluation_not_stored model=%s reason=postgres_unavailable", name)
                continue
            with self.lock:
                state.window.done(window)
            if not stored:
                log.info("window_already_evaluated model=%s point=%s", name, window.point)
                continue
            with self.lock:
                if performance is not None:
                    self._performance.published(state, performance)
                state.result = result
                state.info = WindowInfo(window.start, window.end, window.first_seq, window.last_seq, window.n_records)
                state.last_evaluation = evaluated_at
            log.info("window_evaluated model=%s records=%d last_rec=%d drift_share=%.3f replica=%s",
                     name, window.n_records, window.last_rec, result.dataset.drift_share, self.replica)
            verdict = WindowVerdict(name, window.start, window.end, window.n_records, window.point, result, evaluated_at,
                                    state.estimated if performance is not None else None)
            for listener in self.listeners:
                try:
                    listener.on_verdict(verdict)
                except Exception:
                    log.exception("verdict_listener_error model=%s", name)
            done += 1
        return done

    def refresh_performance(self) -> int:
        """Judge again the realized performance of owned windows that gained labels (back-fill); how many."""
        if self._performance is None:
            return 0
        done = 0
        for owned in list(self._owned.values()):
            try:
                done += self._performance.refresh_model(owned.state)
            except PgUnavailable:
                log.warning("performance_not_refreshed model=%s reason=postgres_unavailable", owned.state.config.key)
        return done

    def _notify_performance(self, verdict: PerformanceVerdict) -> None:
        notify_performance(self.listeners, verdict)

    def _trim(self) -> None:
        """Evaluations of the owned models older than `server.store.max_age` go, as in the embedded store."""
        owned = sorted(self._owned)
        if not owned or self._pg is None:
            return
        try:
            deleted = self._pg.trim_evaluations(owned, self.clock() - self.config.server.store.max_age)
        except PgUnavailable:
            return
        if deleted:
            log.info("evaluations_trimmed replica=%s deleted=%d", self.replica, deleted)
        now = self.clock()
        perf = {n: p for n in owned if (p := self._configs[n].performance) is not None}
        if perf:
            keep = max(self.config.server.store.max_age, max(p.label_delay for p in perf.values()) + TOO_LATE_GRACE)
            try:
                deleted = self._pg.trim_labels({n: now - p.label_delay - TOO_LATE_GRACE for n, p in perf.items()}, now - keep)
            except PgUnavailable:
                return
            if deleted:
                log.info("ground_truth_trimmed replica=%s deleted=%d", self.replica, deleted)

    def _checkpoint(self, consumer: Any, partitions: list[int]) -> None:
        """Each partition's replay offset: the least its models (live or only checkpointed) still need."""
        from confluent_kafka import TopicPartition

        if not partitions or self._pg is None or self._failed or self._predictions:
            return
        positions = {tp.partition: tp.offset for tp in consumer.position(
            [TopicPartition(self.fleet.kafka.topic, p) for p in partitions])}
        offsets: dict[int, int] = {}
        marks: list[Checkpoint] = []
        with self.lock:
            for p in partitions:
                part = self._partitions.get(p)
                if part is None or not part.caught_up:
                    continue  # a replay not finished yet has nothing newer to say than the checkpoint it started from
                live = [o.checkpoint() for o in self._owned.values() if o.partition == p]
                stale = [c for m, c in part.checkpoints.items() if m not in self._owned]
                candidates = [c.replay_offset for c in live + stale]
                position = positions.get(p, -1)
                if position >= 0:
                    candidates.append(position)
                if candidates:
                    offsets[p] = min(candidates)
                    marks += live
        if offsets:
            try:
                self._pg.put_checkpoints(self.fleet.kafka.topic, offsets, marks, self.clock())
            except PgUnavailable:
                log.warning("checkpoint_not_stored reason=postgres_unavailable partitions=%s", sorted(offsets))


@dataclass(frozen=True)
class LabelsAccepted:
    """The answer to a label batch in fleet mode: appended to the topic (durable, acks=all); the
    owning replica counts its outcomes (`driftwatch_labels_total`)."""

    batch: str
    labels: int

    def to_dict(self) -> dict[str, Any]:
        return {"status": "accepted", "batch": self.batch, "labels": self.labels, "outcomes": {"accepted": self.labels},
                "unknown_ids": []}


@dataclass
class _Partition:
    checkpoints: dict[str, Checkpoint]
    """Checkpoints stored for this partition's models when it was assigned."""
    catch_up_to: int
    caught_up: bool = False


def _snapshot(name: str, state: ModelState) -> ModelSnapshot:
    performance = None if state.config.performance is None else PerformanceSnapshot(
        state.estimated, state.realized, dict(state.label_counts), state.label_lag.copy())
    return ModelSnapshot(model=name, result=state.result, window=state.info, window_records=state.window.current_size(),
                         last_evaluation=state.last_evaluation, ingested=state.ingested, rejected=dict(state.rejected),
                         performance=performance)


class _PgPerformance:
    """`WindowPerformance`'s store in fleet mode: the performance beside each evaluation, the labels."""

    def __init__(self, pg: PgStore) -> None:
        self._pg = pg

    def labelled(self, model: str, first_rec: int, last_rec: int) -> list[dict[str, Any]]:
        return self._pg.labelled_window(model, first_rec, last_rec)

    def stale(self, model: str, limit: int) -> list[PerformanceRow]:
        return self._pg.stale_performance(model, limit)

    def put(self, row: PerformanceRow) -> None:
        self._pg.put_performance(row)

    def history(self, model: str, limit: int, up_to: int | None = None) -> list[PerformanceRow]:
        return self._pg.performance_history(model, limit, up_to)


def _retrying(work: Callable[[], Any], stopping: threading.Event, limit: float = 120.0) -> Any:
    """PostgreSQL reads a rebalance cannot go on without: retried until they succeed (or `limit`)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return work()
        except PgUnavailable:
            if stopping.is_set() or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
