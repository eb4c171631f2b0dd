"""One consumer-group member in its own process, for tests/infra/test_kafka_cluster.py.

Usage: python kafka_group_member.py BOOTSTRAP TOPIC GROUP. Prints a JSON line per event on stdout:
{"assigned": [partitions]} after every rebalance; on the line `drain` from stdin it reads every
partition it is assigned up to its high watermark, commits, prints {"values": [...],
"partitions": [its assignment]}; on `quit` (or end of stdin) it closes, leaving the group, and exits.
"""

from __future__ import annotations

import json
import select
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def emit(obj: object) -> None:
    print(json.dumps(obj), flush=True)


def main() -> int:
    bootstrap, topic, group = sys.argv[1:4]
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    assigned: list[int] = []

    def on_assign(c: Consumer, parts: list[TopicPartition]) -> None:
        assigned[:] = sorted(p.partition for p in parts)
        emit({"assigned": assigned})

    def on_revoke(c: Consumer, parts: list[TopicPartition]) -> None:
        assigned.clear()

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    values: list[str] = []
    draining = False
    high: dict[int, int] = {}
    pos: dict[int, int] = {}
    deadline = float("inf")
    while True:
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value().decode())
            pos[msg.partition()] = msg.offset() + 1
        if not draining and select.select([sys.stdin], [], [], 0)[0]:
            if sys.stdin.readline().strip() == "drain":
                draining = True
                deadline = time.monotonic() + 15
        if draining:
            # The current assignment (a rebalance may change it): read each partition to its end.
            for p in assigned:
                if p not in high:
                    high[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
            if assigned and all(pos.get(p, 0) >= high[p] for p in assigned):
                try:
                    consumer.commit(asynchronous=False)
                    break
                except KafkaException as exc:  # e.g. REBALANCE_IN_PROGRESS: poll on, then again
                    if not exc.args[0].retriable() and exc.args[0].code() != KafkaError.REBALANCE_IN_PROGRESS:
                        raise
        if time.monotonic() > deadline:
            emit({"error": "drain timed out", "pos": pos, "high": high})
            return 1
    emit({"values": values, "partitions": sorted(assigned)})
    # Stay in the group until told (a member leaving would rebalance the other mid-drain).
    while sys.stdin.readline().strip() not in ("quit", ""):
        pass
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
