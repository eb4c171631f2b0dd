"""KafkaCluster works with real clients in other processes: librdkafka's mock brokers, real TCP.

What the mock cannot do (see tests/infra/kafka.py): replication is metadata only (one log per
partition), acks=all is acked by the leader alone, and there is no min.insync.replicas. So the
broker-loss test proves what it can: with broker 1 down (its connections refused) and its partitions'
leadership moved to a live replica the way a Kafka controller would, clients still produce and
consume everything; and without that move the partitions it led are unavailable.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.infra.kafka import KafkaCluster
from tests.infra.kafka import KafkaError as HolderError

MEMBER = Path(__file__).with_name("kafka_group_member.py")
N = 300


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, values: list[str], **conf: object) -> list[tuple[str, KafkaError | None]]:
    """Produce `values` (keyed by themselves) and flush; each value's delivery error, or None."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 10000, **conf})
    results: list[tuple[str, KafkaError | None]] = []
    for v in values:
        producer.produce(topic, key=v.encode(), value=v.encode(),
                         on_delivery=lambda err, msg: results.append((msg.value().decode(), err)))
    remaining = producer.flush(15)
    assert remaining == 0
    return results


def read_all(bootstrap: str, topic: str, partitions: int) -> list[str]:
    """Every value in the topic, read with a plain (group-less) consumer up to the high watermarks."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        high = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        pos = dict.fromkeys(high, 0)
        values: list[str] = []
        while any(pos[p] < high[p] for p in high):
            msg = consumer.poll(10)
            assert msg is not None, f"no message within 10 s; at {pos} of {high}"
            assert msg.error() is None, msg.error()
            values.append(msg.value().decode())
            pos[msg.partition()] = msg.offset() + 1
        return values
    finally:
        consumer.close()


@pytest.fixture
def own_cluster() -> Iterator[KafkaCluster]:
    """A cluster of its own, for tests that take brokers down."""
    with KafkaCluster(brokers=3) as cluster:
        yield cluster


def test_bootstrap_servers_name_three_brokers_on_loopback(kafka_cluster: KafkaCluster) -> None:
    hosts = kafka_cluster.bootstrap_servers.split(",")
    assert [h.rsplit(":", 1)[0] for h in hosts] == ["127.0.0.1"] * 3


def test_a_created_topic_has_six_partitions_of_three_replicas(kafka_cluster: KafkaCluster) -> None:
    topic = unique("created")
    leaders = kafka_cluster.create_topic(topic, 6, replication_factor=3)
    meta = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers}).list_topics(topic, timeout=10)
    parts = meta.topics[topic].partitions
    assert sorted(parts) == [0, 1, 2, 3, 4, 5]
    assert {p: sorted(parts[p].replicas) for p in parts} == {p: [1, 2, 3] for p in range(6)}
    assert [parts[p].leader for p in range(6)] == leaders
    assert leaders == [1, 2, 3, 1, 2, 3]


def test_creating_a_topic_twice_is_an_error(kafka_cluster: KafkaCluster) -> None:
    topic = unique("twice")
    kafka_cluster.create_topic(topic, 2)
    with pytest.raises(HolderError, match="TOPIC_ALREADY_EXISTS"):
        kafka_cluster.create_topic(topic, 2)


def test_an_idempotent_acks_all_producer_delivers_every_message(kafka_cluster: KafkaCluster) -> None:
    topic = unique("idem")
    kafka_cluster.create_topic(topic, 6, 3)
    values = [f"m{i}" for i in range(N)]
    results = produce(kafka_cluster.bootstrap_servers, topic, values)
    assert [err for _, err in results if err is not None] == []
    assert sorted(v for v, _ in results) == sorted(values)
    assert sorted(read_all(kafka_cluster.bootstrap_servers, topic, 6)) == sorted(values)


def test_two_group_members_in_separate_processes_split_the_partitions_and_read_everything(
        kafka_cluster: KafkaCluster) -> None:
    topic, group = unique("split"), unique("group")
    kafka_cluster.create_topic(topic, 6, 3)
    members = [subprocess.Popen([sys.executable, str(MEMBER), kafka_cluster.bootstrap_servers, topic, group],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
               for _ in range(2)]
    try:
        assignment: list[list[int]] = [[], []]
        # Wait until the group settles on a split of all six partitions between the two members;
        # each member prints a line per rebalance.
        # Settled: a split of all six, and no rebalance for a second.
        deadline = time.monotonic() + 20
        last_change = time.monotonic()
        while (sorted(assignment[0] + assignment[1]) != list(range(6)) or not all(assignment)
               or time.monotonic() - last_change < 1.0):
            assert time.monotonic() < deadline, f"no split within 20 s: {assignment}"
            for i, m in enumerate(members):
                assert m.stdout is not None
                if select.select([m.stdout], [], [], 0.05)[0]:
                    line = m.stdout.readline()
                    assert line, f"member {i} exited: {m.wait()}"
                    assignment[i] = json.loads(line)["assigned"]
                    last_change = time.monotonic()
        assert sorted(len(a) for a in assignment) == [3, 3]
        values = [f"s{i}" for i in range(N)]
        assert [err for _, err in produce(kafka_cluster.bootstrap_servers, topic, values) if err] == []
        outs = []
        for m in members:
            assert m.stdin is not None and m.stdout is not None
            m.stdin.write("drain\n")
            m.stdin.flush()
        for m in members:
            assert m.stdout is not None
            outs.append(json.loads(m.stdout.readline() or "{}"))
        for m in members:
            assert m.stdin is not None
            m.stdin.write("quit\n")
            m.stdin.flush()
        assert all("values" in out for out in outs), outs
        read = [out["values"] for out in outs]
        assert all(read), "each member read some messages"
        assert [len(out["partitions"]) for out in outs] == [3, 3]
        assert sorted(read[0] + read[1]) == sorted(values)
        assert [m.wait(timeout=15) for m in members] == [0, 0]
    finally:
        for m in members:
            if m.poll() is None:
                m.kill()
                m.wait()


def test_with_broker_1_down_and_its_leadership_moved_produce_and_consume_still_succeed(
        own_cluster: KafkaCluster) -> None:
    """The mock's set_down refuses broker 1's connections; KafkaCluster.broker_down then moves the
    two partitions it led to live replicas (the mock would not) and the group's pinned coordinator
    too. The data is not on broker 1 in the mock, so this proves client failover, not replication."""
    topic, group = unique("down"), unique("down-group")
    assert own_cluster.create_topic(topic, 6, 3) == [1, 2, 3, 1, 2, 3]
    own_cluster.set_group_coordinator(group, 1)
    before = [f"b{i}" for i in range(N)]
    assert [e for _, e in produce(own_cluster.bootstrap_servers, topic, before) if e] == []
    assert own_cluster.broker_down(1) == 2
    assert 1 not in own_cluster.leaders(topic)
    after = [f"a{i}" for i in range(N)]
    assert [e for _, e in produce(own_cluster.bootstrap_servers, topic, after) if e] == []
    consumer = Consumer({"bootstrap.servers": own_cluster.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got: list[str] = []
        while len(got) < 2 * N:
            msg = consumer.poll(10)
            assert msg is not None, f"stalled after {len(got)} messages"
            assert msg.error() is None, msg.error()
            got.append(msg.value().decode())
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
    finally:
        consumer.close()
    assert sorted(got) == sorted(before + after)
    assert sum(tp.offset for tp in committed) == 2 * N


def test_without_moving_leadership_a_partition_led_by_a_down_broker_is_unavailable(
        own_cluster: KafkaCluster) -> None:
    """The raw mock: set_down does not elect a new leader, so a produce to partition 0 (led by
    broker 1) times out while partition 1 (led by broker 2) is delivered."""
    topic = unique("stuck")
    own_cluster.create_topic(topic, 2, 3)
    Producer({"bootstrap.servers": own_cluster.bootstrap_servers}).list_topics(topic, timeout=10)
    assert own_cluster.broker_down(1, move_leaders=False) == 0
    producer = Producer({"bootstrap.servers": own_cluster.bootstrap_servers, "acks": "all",
                         "message.timeout.ms": 2000})
    errors: dict[int, KafkaError | None] = {}
    for p in (0, 1):
        producer.produce(topic, value=b"x", partition=p,
                         on_delivery=lambda err, msg, p=p: errors.__setitem__(p, err))
    assert producer.flush(10) == 0
    assert errors[1] is None
    assert errors[0] is not None and errors[0].code() == KafkaError._MSG_TIMED_OUT


def test_an_injected_not_enough_replicas_error_reaches_the_producer(kafka_cluster: KafkaCluster) -> None:
    """The mock has no min.insync.replicas; the error it would cause can be injected (Produce is
    ApiKey 0, NOT_ENOUGH_REPLICAS is 19). With retries off, the producer sees it."""
    topic = unique("isr")
    kafka_cluster.create_topic(topic, 1, 3)
    Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers}).list_topics(topic, timeout=10)
    kafka_cluster.push_request_errors(0, [KafkaError.NOT_ENOUGH_REPLICAS])
    results = produce(kafka_cluster.bootstrap_servers, topic, ["one"], **{"enable.idempotence": False,
                                                                         "retries": 0})
    err = results[0][1]
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS
