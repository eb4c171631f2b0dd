"""Fleet mode computes each window's performance as the embedded monitor does, stores it beside the
evaluation in PostgreSQL, exports it from the owning replica and serves it from any replica
(librdkafka's mock cluster, a real PostgreSQL server, replicas as `driftwatch serve` processes)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.infra.kafka import KafkaCluster
from tests.monitor.runtime.fleet_helpers import (
    Fleet,
    classifier_events,
    embedded_performance,
    evaluated_through,
    performance_rows,
    running,
    wait_for,
    write_classifier_fleet_config,
)

pytestmark = pytest.mark.slow
PARTITIONS = 4


def test_fleet_windows_carry_the_embedded_monitors_performance_and_any_replica_serves_it(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str,
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_cluster.create_topic(topic, PARTITIONS, 3)
    events, _ = classifier_events(200, seed=21)
    batches = [events[i : i + 50] for i in range(0, 200, 50)]
    fleet = Fleet(write_classifier_fleet_config(tmp_path, bootstrap=kafka_cluster.bootstrap_servers, topic=topic,
                                                partitions=PARTITIONS), postgres_dsn, 2)
    with running(fleet):
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        for k, batch in enumerate(batches):
            fleet.post(batch, via=k)
            wait_for(lambda k=k: evaluated_through(postgres_dsn, 50 * (k + 1), ["clf"]), 60, f"batch {k} evaluated")
        views = [httpx.get(f"{r.url}/v1/models/clf/performance", timeout=10).json() for r in fleet.alive()]
        scrapes = [httpx.get(f"{r.url}/metrics", timeout=10).text for r in fleet.alive()]
    expected = embedded_performance(write_classifier_fleet_config(tmp_path, bootstrap=None), batches)
    assert len(expected) == 4 and performance_rows(postgres_dsn) == expected
    for view in views:  # every replica answers, owner or not
        assert view["enabled"] is True
        assert [w["window_id"] for w in view["windows"]] == [50, 100, 150, 200]
        assert all(w["result"]["estimated"]["accuracy"] > 0.5 for w in view["windows"])
    estimated = 'driftwatch_model_performance{kind="estimated",metric="accuracy",model="clf"}'
    assert sum(estimated in s for s in scrapes) == 1  # exported by the owner only
