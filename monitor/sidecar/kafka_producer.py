"""Fleet mode's transport: captured events produced to a Kafka topic instead of POSTed to the monitor.

One `confluent_kafka.Producer` (librdkafka) with `enable.idempotence=true` (which implies
`acks=all` and at most 5 requests in flight, so librdkafka's own retries never reorder or duplicate
within a partition), `partitioner=murmur2_random` (the Java client's partitioner: a model's key
lands in the same partition whichever client produces it), zstd compression (lz4 when the
bundled librdkafka lacks it) and a few milliseconds of linger. Records are `encode_record`'s
(key = the model, value = the normalized event JSON, a content-type header).

The shipper hands over one batch at a time (`send`) and gets one outcome per record, in order, once
every record's delivery report has arrived: an event counts as shipped only when the brokers
acknowledged it. A report arrives at the latest after `message.timeout.ms` (`--kafka-delivery-
timeout`), so `send` never waits longer than that; a daemon thread serves the reports (`poll`),
so nothing here ever blocks the event loop or the proxy.

Outcomes: OK; TOO_LARGE (MSG_SIZE_TOO_LARGE, from librdkafka's own `message.max.bytes` check at
produce time or from a broker); REJECTED (a record no broker will ever take: invalid or corrupt
record, bad argument); RETRY for everything else (all brokers down, timeouts, leader changes,
authorization and authentication failures, a fatal idempotence error after which the producer is
replaced): the shipper keeps those records and spools them, as it does when the monitor is down.

Delivery is at least once: a record whose report timed out may still have been written (Kafka's
idempotence covers librdkafka's retries, not a produce call made again after a timeout), so a
replayed record can arrive twice; each carries its event id. Nothing here logs a payload: log
lines carry counts, error names and librdkafka's own messages.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from functools import partial

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer

from monitor.capture.message import encode_record
from monitor.capture.wire import CapturedEvent
from monitor.sidecar.settings import KafkaSink

__all__ = ["Delivery", "KafkaTransport", "classify_error", "producer_config"]

log = logging.getLogger("driftwatch.sidecar.kafka")
rdkafka_log = logging.getLogger("driftwatch.sidecar.rdkafka")
ERROR_LOG_INTERVAL = 10.0  # seconds between two `kafka_error` lines of one error code
YIELD_EVERY = 64  # records produced between two yields to the event loop (the proxy shares it)
LINGER_MS = 5


class Delivery(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    TOO_LARGE = "too_large"
    REJECTED = "rejected"


_REJECTED = frozenset(
    {
        KafkaError.INVALID_MSG,  # also CORRUPT_MESSAGE (same code): the record failed its CRC on the broker
        KafkaError.INVALID_RECORD,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError._BAD_MSG,
        KafkaError._INVALID_ARG,
        KafkaError._INVALID_TYPE,
    }
)


def classify_error(err: KafkaError | None) -> Delivery:
    if err is None:
        return Delivery.OK
    code = err.code()
    if code == KafkaError.MSG_SIZE_TOO_LARGE:
        return Delivery.TOO_LARGE
    if code in _REJECTED:
        return Delivery.REJECTED
    return Delivery.RETRY


def producer_config(sink: KafkaSink, model: str, compression: str = "zstd") -> dict[str, object]:
    """librdkafka settings (without callbacks). Secrets are in it: never log it."""
    security = sink.security
    conf: dict[str, object] = {
        "bootstrap.servers": sink.bootstrap_servers,
        "client.id": f"driftwatch-sidecar-{model}",
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "compression.type": compression,
        "linger.ms": LINGER_MS,
        "message.timeout.ms": int(sink.delivery_timeout * 1000),
        "message.max.bytes": sink.message_max_bytes,
        **security.client_settings(sink.username, sink.password),
    }
    return conf


class _Send:
    """The delivery reports of one `send`: filled by the poller thread, awaited on the loop."""

    __slots__ = ("done", "lock", "loop", "outcomes", "reasons", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.outcomes: list[Delivery | None] = [None] * size
        self.reasons: list[str] = [""] * size
        self.waiting = size
        self.lock = threading.Lock()
        self.done = asyncio.Event()

    def report(self, index: int, err: KafkaError | None, _msg: object = None) -> None:
        outcome = classify_error(err)
        with self.lock:
            if self.outcomes[index] is not None:
                return
            self.outcomes[index] = outcome
            self.reasons[index] = "" if err is None else err.name()
            self.waiting -= 1
            last = self.waiting == 0
        if last:
            self.loop.call_soon_threadsafe(self.done.set)


class KafkaTransport:
    def __init__(self, sink: KafkaSink, model: str) -> None:
        self.sink = sink
        self.model = model
        self._decode = msgspec.json.Decoder(CapturedEvent).decode
        self._error_logged: dict[int, float] = {}
        self._fatal = False
        self.compression = "zstd"
        self._producer = self._new_producer()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="driftwatch-kafka-poll", daemon=True)
        self._poller.start()
        self.current: _Send | None = None
        """The send in progress (or cut short by a shutdown): its reports so far."""

    def _new_producer(self) -> Producer:
        conf = producer_config(self.sink, self.model, self.compression)
        conf.update(logger=rdkafka_log, error_cb=self._on_error)
        try:
            return Producer(conf)
        except KafkaException:
            if self.compression != "zstd":
                raise
            self.compression = "lz4"  # a librdkafka built without zstd
            return self._new_producer()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_error(self, err: KafkaError) -> None:
        """Client-level errors (all brokers down, authentication, fatal idempotence errors); messages
        stay queued until delivered or timed out, and their reports decide what happens to them."""
        if err.fatal():
            self._fatal = True
        now = time.monotonic()
        if now - self._error_logged.get(err.code(), -float("inf")) >= ERROR_LOG_INTERVAL:
            self._error_logged[err.code()] = now
            log.warning("kafka_error error=%s fatal=%s reason=%r", err.name(), err.fatal(), err.str()[:300])

    async def send(self, records: list[bytes]) -> tuple[list[Delivery], list[str]]:
        """Produce the records in order; their outcomes (and error names) once every report is in."""
        if self._fatal:
            await asyncio.to_thread(self._replace_producer)
        state = _Send(asyncio.get_running_loop(), len(records))
        self.current = state
        producer, topic = self._producer, self.sink.topic
        for i, record in enumerate(records):
            try:
                key, value, encoded_headers = encode_record(self._decode(record))
                headers: list[tuple[str, str | bytes | None]] = list(encoded_headers)
            except (msgspec.ValidationError, msgspec.DecodeError):
                state.report(i, KafkaError(KafkaError._BAD_MSG))
                continue
            try:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=partial(state.report, i))
            except KafkaException as exc:
                state.report(i, exc.args[0])
            except BufferError:  # librdkafka's local queue is full: not with one batch in flight, but retriable
                state.report(i, KafkaError(KafkaError._QUEUE_FULL))
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        if state.waiting:
            await state.done.wait()
        self.current = None
        return [o or Delivery.RETRY for o in state.outcomes], state.reasons

    def _replace_producer(self) -> None:
        """After a fatal error (e.g. the idempotent producer's sequence was lost) the producer must go."""
        old = self._producer
        old.purge()
        old.flush(1.0)
        self._fatal = False
        self._producer = self._new_producer()
        log.warning("kafka_producer_replaced after a fatal error")

    async def close(self, timeout: float) -> None:
        """Wait up to `timeout` for the reports of records in flight, then stop the poller."""
        await asyncio.to_thread(self._producer.flush, max(0.0, timeout))
        self._stop.set()
        await asyncio.to_thread(self._poller.join, 1.0)
