"""`ReportSource` of fleet mode: evaluations from PostgreSQL, a window's records re-read from Kafka.

A fleet replica keeps no events of its own: the topic is the event log (docs/scale-out.md). Each
stored evaluation records its model's partition and the record ordinal before the first record of
the event at `first_seq` (`PgStore.window_source`), so any replica can read the window's offsets
`first_seq..last_seq` back and number the model's records again as the owning replica did: events
of that model decoded in offset order, re-sent duplicates dropped, rejected events taking no
ordinal. The records kept are those `window_selection` keeps for a window of the embedded store.

The reader is a consumer of its own (`assign()`, never `subscribe()`: it never joins the replicas'
group, and it commits nothing). CloudEvent halves are skipped: the owner numbered a joined pair
when its second half arrived (a lone half when it expired), which a re-read cannot reproduce, so a
window holding such events comes out short and is reported as unavailable, as is a window whose
records Kafka's retention already deleted (`LookupError`: the page renders from the stored result).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from monitor.capture import ModelSchema, Record, event_records
from monitor.capture.cloudevents import Half
from monitor.capture.message import BadRecord, decode_record
from monitor.core.config import Config, KafkaConfig
from monitor.core.pgstore import PgStore
from monitor.core.store import StoredEvent
from monitor.reports.source import ConfiguredModels, Evaluation, PerformanceHistory, StoredPerformance
from monitor.runtime import client_settings, window_selection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FleetReportSource", "KafkaRecord", "numbered_events", "read_offsets"]

READ_TIMEOUT = 30.0
"""Seconds a window's re-read from Kafka may take before the page renders without its records."""


class KafkaRecord(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class FleetReportSource(ConfiguredModels):
    """`ReportSource` of a fleet replica, for every model whoever owns it.

    `dsn` defaults to the environment variable the config's `fleet.postgres.dsn_env` names (as the
    replica's own `FleetMonitor` reads it); the connection opens at the first use."""

    def __init__(self, config: Config, *, dsn: str | None = None, read_timeout: float = READ_TIMEOUT) -> None:
        assert config.fleet is not None, "FleetReportSource needs the config's fleet section"
        super().__init__(config)
        self.kafka = config.fleet.kafka
        self._dsn_env = config.fleet.postgres.dsn_env
        self._dsn = dsn
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self._pg: PgStore | None = None

    def _db(self) -> PgStore:
        with self._lock:
            if self._pg is None:
                dsn = self._dsn or os.environ.get(self._dsn_env)
                if not dsn:
                    raise RuntimeError(f"fleet mode needs the PostgreSQL DSN in ${self._dsn_env}")
                self._pg = PgStore(dsn, replica="reports")  # PgStore serializes its own use
            return self._pg

    def close(self) -> None:
        with self._lock:
            if self._pg is not None:
                self._pg.close()
                self._pg = None

    def evaluations(self, model: str, limit: int, before: int | None = None) -> Sequence[Evaluation]:
        return [Evaluation.of(row) for row in reversed(self._db().window_evaluations(model, limit, up_to=before))]

    def evaluation(self, model: str, window_id: int) -> Evaluation | None:
        row = self._db().evaluation_at(model, window_id)
        return None if row is None else Evaluation.of(row)

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        """Each window's performance as the owning replica stored it beside the evaluation, and the
        model's label outcomes (counted once in PostgreSQL by the owner)."""
        if self.config.model(model).performance is None:
            return None
        db = self._db()
        rows = db.performance_history(model, limit, up_to=before)
        outcomes = db.label_counts([model]).get(model, {})
        return PerformanceHistory(tuple(StoredPerformance.of(r) for r in reversed(rows)), outcomes)

    def window_frame(self, model: str, window_id: int) -> pd.DataFrame:
        db = self._db()
        ev = db.evaluation_at(model, window_id)
        if ev is None:
            raise LookupError(f"no evaluated window {window_id} for model {model!r}")
        where = db.window_source(model, window_id)
        if where is None:
            raise LookupError(f"window {window_id} of model {model!r} does not record where its events are in Kafka")
        partition, first_base = where
        schema = ModelSchema.from_config(self.config.model(model))
        records: list[Record] = []
        kept = read_offsets(self.kafka, partition, ev.first_seq, ev.last_seq, timeout=self.read_timeout)
        for stored, parsed in numbered_events(model, schema, kept, first_base):
            records.extend(window_selection(ev, stored, parsed))
        if len(records) != ev.n_records:
            raise LookupError(f"Kafka holds {len(records)} of the window's {ev.n_records} records"
                              " (retention, or CloudEvent halves, which are not re-read)")
        return self._frame(model, records)


def read_offsets(kafka: KafkaConfig, partition: int, first: int, last: int, *, timeout: float = READ_TIMEOUT) -> list[KafkaRecord]:
    """The records at offsets `first..last` of the topic's `partition`; LookupError when Kafka no
    longer holds all of them (retention) or they do not come within `timeout` seconds."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(client_settings(kafka) | {
        "group.id": f"{kafka.group_id}-reports", "client.id": "driftwatch-reports", "enable.auto.commit": False,
        "auto.offset.reset": "error", "enable.partition.eof": False,
    })
    try:
        tp = TopicPartition(kafka.topic, partition, first)
        low, high = consumer.get_watermark_offsets(tp, timeout=min(timeout, 10.0), cached=False)
        if first < low or last >= high:
            raise LookupError(f"Kafka holds offsets {low}..{high - 1} of partition {partition},"
                              f" not the window's {first}..{last} (retention)")
        consumer.assign([tp])
        out: list[KafkaRecord] = []
        deadline = time.monotonic() + timeout
        while not out or out[-1].offset < last:
            if time.monotonic() > deadline:
                raise LookupError(f"reading offsets {first}..{last} of partition {partition} took over {timeout:.0f} s")
            for msg in consumer.consume(500, timeout=0.2):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
                        raise LookupError(f"Kafka no longer holds offset {first} of partition {partition} (retention)")
                    if error.fatal():
                        raise RuntimeError(f"Kafka: {error.str()}")
                    continue  # transient: librdkafka retries
                offset = msg.offset()
                if offset is not None and first <= offset <= last:
                    out.append(KafkaRecord(offset, msg.key(), msg.value(), msg.headers()))
        return out
    finally:
        consumer.close()


def numbered_events(model: str, schema: ModelSchema, records: Iterable[KafkaRecord], first_base: int,
                    ) -> Iterator[tuple[StoredEvent, list[Record]]]:
    """The model's events among `records` (offset order) with their parsed records, numbered from
    `first_base + 1` as the owning replica numbered them: other models' records, bad records and
    CloudEvent halves are skipped, a re-sent id is dropped, a rejected event takes no ordinal. Each
    event comes as a `StoredEvent` (seq = its offset, rec_end = its last record's ordinal)."""
    seen: set[str] = set()
    total = first_base
    for rec in records:
        try:
            item = decode_record(rec.key, rec.value, rec.headers)
        except BadRecord:
            continue
        if isinstance(item, Half) or item.model != model or item.id in seen:
            continue
        seen.add(item.id)
        try:
            parsed = event_records(schema, item)
        except Exception:  # Rejected, or what the replica counts as a parse error: no ordinal either
            continue
        total += len(parsed)
        yield StoredEvent(rec.offset, model, item.id, item.timestamp, None, len(parsed), total, ""), parsed
