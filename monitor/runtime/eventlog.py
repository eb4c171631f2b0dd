"""The event log of fleet mode: a Kafka topic keyed by model (librdkafka through confluent-kafka).

The producer is idempotent with `acks=all`, so an acknowledged append survives the loss of a
broker (with the topic's replication factor 3 and `min.insync.replicas` 2) and a retried send is
never stored twice. `murmur2_random` is the Java client's partitioner: one model's events land in
one partition whoever produces them (this monitor, the sidecar, or a Java/Go producer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from monitor.capture import CapturedEvent
from monitor.capture.cloudevents import Half
from monitor.capture.message import encode_half, encode_record
from monitor.core.config import KafkaConfig

__all__ = ["EventProducer", "KafkaUnavailable", "client_settings"]


class KafkaUnavailable(RuntimeError):
    """An append the brokers did not acknowledge in time: nothing of the request is acknowledged (503)."""

    retry_after = 5


def client_settings(cfg: KafkaConfig) -> dict[str, Any]:
    """librdkafka settings shared by producers and consumers: brokers and security (secrets from the environment)."""
    return {"bootstrap.servers": cfg.bootstrap_servers, **cfg.security.client_settings()}


class EventProducer:
    """Appends captured events to the topic; `append` returns once every one is acknowledged by the brokers."""

    def __init__(self, cfg: KafkaConfig, *, linger_ms: int = 2) -> None:
        from confluent_kafka import Producer

        self._cfg = cfg
        self._producer = Producer(client_settings(cfg) | {
            "enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random", "linger.ms": linger_ms,
            "compression.type": "lz4", "message.timeout.ms": int(cfg.produce_timeout * 1000),
        })
        self._closed = False
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="driftwatch-kafka-producer")

    async def _poll(self) -> None:
        """Serve delivery callbacks off the event loop (poll blocks up to its timeout)."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await loop.run_in_executor(None, self._producer.poll, 0.05)

    async def append(self, events: Sequence[CapturedEvent]) -> None:
        """Produce every event and wait for all acknowledgements; `KafkaUnavailable` if any failed."""
        await self._produce([encode_record(e) for e in events])

    async def append_labels(self, records: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        """Produce a label batch's records (`encode_labels_records`) and wait for every acknowledgement."""
        await self._produce(records)

    async def append_half(self, half: Half) -> None:
        """Produce a CloudEvent half (binary content mode) and wait for its acknowledgement."""
        await self._produce([encode_half(half)])

    async def _produce(self, records: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        if not records:
            return
        if self._closed:
            raise KafkaUnavailable("the monitor is shutting down")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        pending, failed = [len(records)], []

        def report(err: Any, _msg: Any) -> None:  # on the poller's thread
            if err is not None:
                failed.append(err)
            pending[0] -= 1
            if pending[0] == 0:
                loop.call_soon_threadsafe(_settle, done, failed)

        for key, value, headers in records:
            hdrs: list[tuple[str, str | bytes | None]] = [*headers]
            while True:
                try:
                    self._producer.produce(self._cfg.topic, value, key, headers=hdrs, on_delivery=report)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    await asyncio.sleep(0.005)
        try:
            await asyncio.wait_for(done, timeout=self._cfg.produce_timeout + 5)
        except TimeoutError:
            raise KafkaUnavailable("the brokers did not acknowledge the append in time") from None

    async def close(self) -> None:
        self._closed = True
        if self._poller is not None:
            await self._poller
        await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, self._cfg.produce_timeout)
        # librdkafka's threads live as long as the handle: release it now rather than whenever the
        # app object is collected (they would keep reconnecting to brokers that are gone).
        del self._producer


def _settle(done: asyncio.Future[None], failed: list[Any]) -> None:
    if done.done():
        return
    if failed:
        done.set_exception(KafkaUnavailable(f"the brokers refused the append: {failed[0].name()}"))
    else:
        done.set_result(None)
