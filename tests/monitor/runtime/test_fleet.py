"""Fleet mode with the real parts: librdkafka's mock cluster of three brokers (tests/infra/kafka.py),
a real PostgreSQL server, and replicas as `driftwatch serve` processes killed with real signals."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.infra.kafka import KafkaCluster
from tests.infra.postgres import PostgresServer
from tests.monitor.runtime.fleet_helpers import (
    MODELS,
    STEP,
    Fleet,
    embedded_evaluations,
    evaluated_through,
    fleet_evaluations,
    running,
    stream,
    wait_for,
    write_configs,
)

pytestmark = pytest.mark.slow
PARTITIONS = 6
STEPS = 8


@pytest.fixture(scope="module")
def steps() -> list[list[dict[str, Any]]]:
    return stream(STEPS)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, steps: list[list[dict[str, Any]]]) -> dict[str, list[tuple[Any, ...]]]:
    return embedded_evaluations(write_configs(tmp_path_factory.mktemp("embedded")), steps)


def fleet_of(n: int, tmp_path: Path, kafka: KafkaCluster, dsn: str) -> Fleet:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, PARTITIONS, 3)
    return Fleet(write_configs(tmp_path, bootstrap=kafka.bootstrap_servers, topic=topic, partitions=PARTITIONS), dsn, n)


def feed(fleet: Fleet, dsn: str, steps: list[list[dict[str, Any]]], first: int = 0, timeout: float = 60) -> None:
    """Post each step through the replicas in turn and wait until every model evaluated its point."""
    for k in range(first, len(steps)):
        fleet.post(steps[k], via=k)
        wait_for(lambda k=k: evaluated_through(dsn, (k + 1) * STEP), timeout, f"step {k} evaluated")


def test_a_three_replica_fleet_evaluates_what_one_embedded_monitor_does(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str, steps: list[list[dict[str, Any]]],
    embedded: dict[str, list[tuple[Any, ...]]],
) -> None:
    with running(fleet_of(3, tmp_path, kafka_cluster, postgres_dsn)) as fleet:
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        feed(fleet, postgres_dsn, steps)
        owners = [m["models"] for m in fleet.membership()]
    assert fleet_evaluations(postgres_dsn) == embedded
    assert sorted(m for models in owners for m in models) == MODELS  # each model owned by exactly one replica


def test_the_drifted_models_are_the_ones_the_stream_shifted(embedded: dict[str, list[tuple[Any, ...]]]) -> None:
    """The equality above compares real verdicts: the shifted models drift in the last windows, the others do not."""
    import json

    drifted = {m for m, rows in embedded.items() if json.loads(rows[-1][-1])["dataset"]["drift_share"] > 0}
    assert drifted == {"m0", "m1"}


def test_a_replica_killed_mid_stream_loses_nothing_and_its_models_move_within_30_s(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str, steps: list[list[dict[str, Any]]],
    embedded: dict[str, list[tuple[Any, ...]]],
) -> None:
    with running(fleet_of(3, tmp_path, kafka_cluster, postgres_dsn)) as fleet:
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        feed(fleet, postgres_dsn, steps[:4])
        victim = max(fleet.alive(), key=lambda r: len(httpx.get(f"{r.url}/v1/fleet", timeout=5).json()["models"]))
        victim.signal(signal.SIGKILL)
        fleet.post(steps[4], via=0)  # acknowledged by a survivor while the victim's partitions are orphaned
        took = wait_for(lambda: evaluated_through(postgres_dsn, 5 * STEP), 30, "the victim's models evaluated by the others")
        feed(fleet, postgres_dsn, steps, first=5)
    assert took < 30
    assert fleet_evaluations(postgres_dsn) == embedded  # nothing lost, no point twice, the same windows


def test_ingest_and_evaluation_go_on_with_one_of_three_brokers_down(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str, steps: list[list[dict[str, Any]]],
    embedded: dict[str, list[tuple[Any, ...]]],
) -> None:
    with running(fleet_of(2, tmp_path, kafka_cluster, postgres_dsn)) as fleet:
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        feed(fleet, postgres_dsn, steps[:3])
        kafka_cluster.broker_down(1)
        try:
            feed(fleet, postgres_dsn, steps, first=3)
        finally:
            kafka_cluster.broker_up(1)
    assert fleet_evaluations(postgres_dsn) == embedded


def test_a_database_restart_mid_stream_loses_nothing_and_the_api_answers_again(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_server: PostgresServer, postgres_dsn: str,
    steps: list[list[dict[str, Any]]], embedded: dict[str, list[tuple[Any, ...]]],
) -> None:
    with running(fleet_of(2, tmp_path, kafka_cluster, postgres_dsn)) as fleet:
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        feed(fleet, postgres_dsn, steps[:3])
        postgres_server.stop("immediate")
        fleet.post(steps[3], via=0)  # Kafka takes it while the database is down
        time.sleep(2)
        postgres_server.start()
        feed(fleet, postgres_dsn, steps, first=3, timeout=90)
        url = fleet.alive()[0].url
        answer = httpx.get(f"{url}/v1/models/m3/evaluations", timeout=10)
    assert answer.status_code == 200
    assert fleet_evaluations(postgres_dsn) == embedded
