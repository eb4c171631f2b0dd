"""Fleet mode: the sidecar produces captured events to Kafka instead of POSTing them.

Real processes and the real Kafka protocol: a sidecar subprocess, the toy model server on
127.0.0.1, and librdkafka's mock cluster (three brokers on real ports, held by a child process:
tests/infra/kafka.py, the session's `kafka_cluster`), read back with a real consumer. The mock's brokers are taken down and
brought back up on the same ports, so an outage and its recovery are tested as they happen.
What the mock cannot show: replication (it keeps one log per partition and acks at once, so acks=all
is not really exercised) and a broker's own `message.max.bytes` check (injected as the broker's
MSG_SIZE_TOO_LARGE answer instead).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError
from sidecar_servers import ModelServer, Sidecar, metric, wait_for

from monitor.capture.message import EVENT_CONTENT_TYPE, decode_record
from monitor.capture.wire import CapturedEvent
from monitor.sidecar.kafka_producer import Delivery, classify_error, producer_config
from monitor.sidecar.metrics import DROP_REASONS
from monitor.sidecar.settings import SettingsError, build_settings
from tests.infra.kafka import KafkaCluster

PARTITIONS = 4
MSG_SIZE_TOO_LARGE = 10
PRODUCE = 0  # the Produce request's ApiKey


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> KafkaCluster:
    """The session's mock cluster (tests/conftest.py); each test gets a topic of its own."""
    return kafka_cluster


@pytest.fixture
def topic(cluster: KafkaCluster) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, PARTITIONS, 3)
    return name


@pytest.fixture
def start_kafka_sidecar(tmp_path: Path, cluster: KafkaCluster, topic: str) -> Iterator[Callable[..., Sidecar]]:
    started: list[Sidecar] = []

    def start(upstream: str, *extra: str, model: str = "wine") -> Sidecar:
        sidecar = Sidecar(upstream, "unused", tmp_path / f"spool-{len(started)}", *extra, model=model)
        at = sidecar.args.index("--monitor")
        del sidecar.args[at:at + 2]
        sidecar.args += ["--kafka-bootstrap", cluster.bootstrap_servers, "--kafka-topic", topic]
        started.append(sidecar)
        return sidecar.start()

    yield start
    for sidecar in started:
        sidecar.stop()


def murmur2(data: bytes) -> int:
    """Kafka's Java client's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length % 4
    rest = data[length - tail:]
    if tail >= 3:
        h ^= rest[2] << 16
    if tail >= 2:
        h ^= rest[1] << 8
    if tail >= 1:
        h ^= rest[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def consume(cluster: KafkaCluster, topic: str, expect: int, timeout: float = 30.0, settle: float = 1.5) -> list:
    """Every record of the topic: waits for `expect`, then `settle` seconds more for any extra (duplicates)."""
    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap_servers, "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                records.append(msg)
            elif msg is not None and msg.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(msg.error())
            if len(records) >= expect:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    return records


def scrape(sidecar: Sidecar) -> str:
    return httpx.get(f"{sidecar.url}/driftwatch/metrics").text


def counts(sidecar: Sidecar) -> dict[str, float]:
    text = scrape(sidecar)
    out = {
        "captured": metric(text, "driftwatch_sidecar_events_captured_total", model="wine"),
        "shipped": metric(text, "driftwatch_sidecar_events_shipped_total", model="wine"),
        "queue": metric(text, "driftwatch_sidecar_queue_events"),
        "spool": metric(text, "driftwatch_sidecar_spool_events"),
    }
    for reason in DROP_REASONS:
        out[reason] = metric(text, "driftwatch_sidecar_events_dropped_total", model="wine", reason=reason)
    return out


def settled(sidecar: Sidecar) -> bool:
    c = counts(sidecar)
    done = c["shipped"] + sum(c[r] for r in DROP_REASONS)
    return c["queue"] == 0 and c["spool"] == 0 and done == c["captured"]


def predict(client: httpx.Client, request_id: str, body: bytes = b'{"instances": [[1.0, 2.0]]}') -> float:
    start = time.perf_counter()
    r = client.post("/v1/models/wine:predict", content=body, headers={"x-request-id": request_id, "content-type": "application/json"})
    assert r.status_code == 200  # inference never fails because of capture
    return time.perf_counter() - start


def events_of(records: list) -> list[CapturedEvent]:
    events = []
    for msg in records:
        event = decode_record(msg.key(), msg.value(), msg.headers())
        assert isinstance(event, CapturedEvent)
        events.append(event)
    return events


def test_events_arrive_once_each_keyed_by_model_in_the_java_clients_partition(
    model_server: ModelServer, cluster: KafkaCluster, topic: str, start_kafka_sidecar: Callable[..., Sidecar]
) -> None:
    sidecar = start_kafka_sidecar(model_server.url, "--linger", "20ms", "--batch-max", "50")
    ids = [f"req-{i}" for i in range(300)]
    with httpx.Client(base_url=sidecar.url) as c:
        for request_id in ids:
            predict(c, request_id)
    wait_for(lambda: settled(sidecar), timeout=30)
    assert counts(sidecar)["shipped"] == len(ids)
    records = consume(cluster, topic, len(ids))
    assert len(records) == len(ids)  # none lost, none duplicated
    assert {msg.key() for msg in records} == {b"wine"}
    # murmur2_random: the partition Kafka's Java client (and every other murmur2 producer) picks.
    assert {msg.partition() for msg in records} == {java_partition(b"wine", PARTITIONS)}
    assert all(dict(msg.headers())["content-type"] == EVENT_CONTENT_TYPE.encode() for msg in records)
    events = events_of(records)
    assert [e.id for e in events] == ids  # in capture order within the partition
    assert {e.model for e in events} == {"wine"} and all(e.status == 200 for e in events)
    assert "instances" not in sidecar.log()  # payloads are never logged


def test_kafka_outage_spools_without_slowing_inference_then_delivers_everything_once(
    model_server: ModelServer, cluster: KafkaCluster, topic: str, start_kafka_sidecar: Callable[..., Sidecar]
) -> None:
    sidecar = start_kafka_sidecar(
        model_server.url, "--linger", "20ms", "--batch-max", "20", "--queue-max", "50", "--kafka-delivery-timeout", "2s",
    )
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(20):  # warm-up: connected and shipping
            predict(c, f"warm-{i}")
        wait_for(lambda: settled(sidecar), timeout=30)
        before = [predict(c, f"up-{i}") for i in range(200)]
        wait_for(lambda: settled(sidecar), timeout=30)
        for broker in (1, 2, 3):
            cluster.broker_down(broker, move_leaders=False)
        try:
            during = [predict(c, f"down-{i}") for i in range(200)]
            # The batch in flight times out (2s) and fails as retriable; it stays in flight (memory),
            # retried with backoff; the queue behind it (--queue-max 50) overflowed into the spool.
            wait_for(lambda: "ship_retry" in sidecar.log(), timeout=15)
            time.sleep(2.5)  # at least one more retry fails against the downed brokers
            stuck = counts(sidecar)
            assert stuck["shipped"] == 220 and stuck["spool"] > 0 and stuck["queue"] <= 50
            assert stuck["spool"] + stuck["queue"] >= 200 - 20  # all but one batch (--batch-max 20) in flight
            assert sum(stuck[r] for r in DROP_REASONS) == 0
        finally:
            for broker in (1, 2, 3):
                cluster.broker_up(broker)
    wait_for(lambda: settled(sidecar), timeout=60)
    final = counts(sidecar)
    assert final["shipped"] == final["captured"] == 420 and sum(final[r] for r in DROP_REASONS) == 0
    records = consume(cluster, topic, 420)
    ids = [e.id for e in events_of(records)]
    expected = [f"warm-{i}" for i in range(20)] + [f"up-{i}" for i in range(200)] + [f"down-{i}" for i in range(200)]
    assert sorted(ids) == sorted(expected)  # none lost, none duplicated
    assert ids == expected  # and, through the spool, still in capture order
    # Inference at normal latency while Kafka is down (the proxy never waits on the producer).
    p50_up, p50_down = statistics.median(before), statistics.median(during)
    p99_up, p99_down = sorted(before)[197], sorted(during)[197]
    print(f"latency p50 up={p50_up * 1e3:.2f}ms down={p50_down * 1e3:.2f}ms; p99 up={p99_up * 1e3:.2f}ms down={p99_down * 1e3:.2f}ms")
    assert p50_down < 2 * p50_up + 0.005 and p99_down < 0.25


def test_an_event_over_the_size_limit_is_dropped_as_too_large_and_shipping_goes_on(
    model_server: ModelServer, cluster: KafkaCluster, topic: str, start_kafka_sidecar: Callable[..., Sidecar]
) -> None:
    sidecar = start_kafka_sidecar(model_server.url, "--linger", "10ms", "--kafka-message-max-bytes", "20000")
    marker = b"PAYLOAD-MARKER"
    big = b'{"instances": [[' + b",".join([b"1.5"] * 8000) + b']], "note": "' + marker + b'"}'  # ~32 KB > 20000
    with httpx.Client(base_url=sidecar.url) as c:
        predict(c, "small-1")
        predict(c, "big-1", big)  # librdkafka refuses it at produce time (message.max.bytes)
        predict(c, "small-2")
        wait_for(lambda: settled(sidecar), timeout=30)
        assert counts(sidecar)["too_large"] == 1
        # A broker's own limit: the brokers answer the next Produce request with MSG_SIZE_TOO_LARGE.
        wait_for(lambda: counts(sidecar)["shipped"] == 2, timeout=10)
        cluster.push_request_errors(PRODUCE, [MSG_SIZE_TOO_LARGE])
        predict(c, "refused-1")
        wait_for(lambda: counts(sidecar)["too_large"] == 2, timeout=30)
        predict(c, "small-3")
        wait_for(lambda: settled(sidecar), timeout=30)
    final = counts(sidecar)
    assert (final["shipped"], final["too_large"], final["captured"]) == (3, 2, 5)
    ids = [e.id for e in events_of(consume(cluster, topic, 3))]
    assert ids == ["small-1", "small-2", "small-3"]
    log = sidecar.log()
    assert "ship_dropped reason=too_large" in log and "MSG_SIZE_TOO_LARGE" in log
    assert marker.decode() not in log  # never the payload


def test_graceful_shutdown_delivers_what_is_queued(
    model_server: ModelServer, cluster: KafkaCluster, topic: str, start_kafka_sidecar: Callable[..., Sidecar]
) -> None:
    sidecar = start_kafka_sidecar(model_server.url, "--linger", "5s", "--batch-max", "500")
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(30):
            predict(c, f"late-{i}")
    sidecar.signal()
    assert sidecar.wait(30) == 0
    assert [e.id for e in events_of(consume(cluster, topic, 30))] == [f"late-{i}" for i in range(30)]


# -- settings and the producer's configuration ---------------------------------------------------


def base(**kw: object) -> dict[str, object]:
    return {"upstream": "http://127.0.0.1:9000", "model": "wine", "environ": {}, **kw}


def test_kafka_settings_and_the_librdkafka_configuration_they_make() -> None:
    s = build_settings(**base(
        kafka_bootstrap="k1:9092, k2:9093", kafka_topic="dw", kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username_env="KU", kafka_password_env="KP",
        kafka_delivery_timeout="5s", environ={"KU": "user", "KP": "hunter2"},
    ))
    assert s.monitor_url is None and s.kafka is not None
    assert (s.kafka.bootstrap_servers, s.kafka.topic, s.kafka.delivery_timeout) == ("k1:9092,k2:9093", "dw", 5.0)
    assert "hunter2" not in repr(s)
    conf = producer_config(s.kafka, "wine")
    assert conf["enable.idempotence"] is True and conf["acks"] == "all" and conf["partitioner"] == "murmur2_random"
    assert conf["compression.type"] == "zstd" and conf["message.timeout.ms"] == 5000
    assert (conf["security.protocol"], conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "user", "hunter2")
    assert "ssl.ca.location" not in conf


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({}, "--monitor / --kafka-bootstrap"),
        ({"monitor": "http://m:8080", "kafka_bootstrap": "k:9092"}, "--monitor / --kafka-bootstrap"),
        ({"kafka_bootstrap": "k"}, "--kafka-bootstrap"),
        ({"kafka_bootstrap": "k:9092", "kafka_topic": "a b"}, "--kafka-topic"),
        ({"kafka_bootstrap": "k:9092", "kafka_security_protocol": "SASL_SSL"}, "--kafka-security-protocol"),
        ({"kafka_bootstrap": "k:9092", "kafka_security_protocol": "TLS"}, "--kafka-security-protocol"),
        ({"kafka_bootstrap": "k:9092", "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
          "kafka_username_env": "KU", "kafka_password_env": "KP"}, "--kafka-username-env KU"),
        ({"kafka_bootstrap": "k:9092", "kafka_ca_file": Path("/nonexistent/ca.pem")}, "--kafka-ca-file"),
        ({"kafka_bootstrap": "k:9092", "kafka_delivery_timeout": "0s"}, "--kafka-delivery-timeout"),
        ({"monitor": "http://m:8080", "kafka_topic": "other"}, "--kafka-topic"),
    ],
)
def test_bad_kafka_flags_are_named(kw: dict[str, object], flag: str) -> None:
    with pytest.raises(SettingsError, match=flag.replace("/", ".")):
        build_settings(**base(**kw))


def test_delivery_errors_are_classified() -> None:
    assert classify_error(None) is Delivery.OK
    assert classify_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)) is Delivery.TOO_LARGE
    assert classify_error(KafkaError(KafkaError.INVALID_RECORD)) is Delivery.REJECTED
    for retriable in (KafkaError._MSG_TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT,
                      KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._FATAL):
        assert classify_error(KafkaError(retriable)) is Delivery.RETRY
