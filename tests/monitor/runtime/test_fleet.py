"""Fleet mode with the real parts: librdkafka's mock cluster of three brokers (tests/infra/kafka.py),
a real PostgreSQL server, and replicas as `driftwatch serve` processes killed with real signals."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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
        print(f"failover: the victim's models evaluated again {took:.1f} s after the kill")  # shown with -rP
        feed(fleet, postgres_dsn, steps, first=5)
    assert took < 30
    assert fleet_evaluations(postgres_dsn) == embedded  # nothing lost, no point twice, the same windows


def test_killing_the_retraining_lease_holder_mid_stream_creates_no_job_twice(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str, steps: list[list[dict[str, Any]]],
) -> None:
    """Replicas launch Jobs on the Kubernetes test API; the replica holding the retraining lease is
    killed right after the drift that launches them: each drifted model gets one Job, whoever holds
    the lease afterwards."""
    from tests.retrain.kube_api import FakeKubeAPI, write_kubeconfig

    api = FakeKubeAPI().start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    template = {"apiVersion": "batch/v1", "kind": "Job",
                "spec": {"template": {"spec": {"containers": [{"name": "train", "image": "ghcr.io/x/train:1"}]}}}}
    retrain = {"launcher": "kubernetes", "consecutive_windows": 2, "min_records": 20, "cooldown": "1h",
               "enter_share": 0.3, "exit_share": 0.1,  # one of three features drifts
               "kubernetes": {"namespace": "ml", "template": template}}
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_cluster.create_topic(topic, PARTITIONS, 3)
    config = write_configs(tmp_path, bootstrap=kafka_cluster.bootstrap_servers, topic=topic, partitions=PARTITIONS,
                           retrain=retrain, lease_seconds=3)
    fleet = Fleet(config, postgres_dsn, 3)
    for r in fleet.replicas:
        r.env |= {"KUBECONFIG": str(kubeconfig)}
        r.env.pop("KUBERNETES_SERVICE_HOST", None)
    try:
        with running(fleet):
            wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
            feed(fleet, postgres_dsn, steps[:6])  # drift from step 4: two drifted windows launch
            holder = lease_holder(postgres_dsn)
            next(r for r in fleet.replicas if r.env["HOSTNAME"] == holder).signal(signal.SIGKILL)
            feed(fleet, postgres_dsn, steps, first=6)
            wait_for(lambda: lease_holder(postgres_dsn) not in (None, holder), 30, "another replica holds the lease")
            time.sleep(3)  # the new holder reconciles the namespace and decides what is left
            jobs = [j["metadata"]["labels"]["driftwatch.io/model"] for j in api.jobs("ml")]
    finally:
        api.stop()
    assert sorted(jobs) == ["m0", "m1"]


def lease_holder(dsn: str) -> str | None:
    """The replica whose lease connection holds the retraining lease (its application_name)."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'driftwatch-lease %'"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    return None if row is None else str(row[0]).removeprefix("driftwatch-lease ")


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


def test_bad_records_are_counted_by_reason_and_skipped_without_stopping_the_consumer(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str, steps: list[list[dict[str, Any]]],
) -> None:
    from confluent_kafka import Producer

    from monitor.capture import CapturedEvent
    from monitor.capture.message import encode_record

    fleet = fleet_of(1, tmp_path, kafka_cluster, postgres_dsn)
    topic = yaml.safe_load(fleet.replicas[0].config_path.read_text())["fleet"]["kafka"]["topic"]
    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers, "partitioner": "murmur2_random"})
    valid = CapturedEvent.model_validate(steps[0][0])
    _, value, headers = encode_record(valid)
    bad = [
        (b"m3", b"\xff\xfe not json", None),                                   # garbage
        (b"m3", b'{"events": []}', None),                                      # JSON, not an event
        (b"m3", b"", None),                                                    # empty
        (b"nobody", value.replace(b'"model":"m0"', b'"model":"nobody"'), headers),  # unknown model
        (b"m3", value, headers),                                               # keyed by another model
        (b"m3", b"{}", [("ce_specversion", b"1.0"), ("ce_id", b"x")]),        # a CloudEvent missing attributes
    ]
    for key, val, hdrs in bad:
        producer.produce(topic, val, key, headers=hdrs)
    producer.flush(10)
    with running(fleet):
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        feed(fleet, postgres_dsn, steps[:2])
        skipped = fleet.membership()[0]["skipped_records"]
    assert skipped == {"garbage": 1, "wrong_schema": 1, "empty": 1, "unknown_model": 1, "key_mismatch": 1, "invalid_cloudevent": 1}


def test_cloudevent_halves_through_the_topic_are_joined_by_the_models_owner(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str,
) -> None:
    """KServe's logger through any replica's /v1/cloudevents: both halves are keyed by the model, so
    they meet in one partition, and the joined event is windowed like any other."""
    fleet = fleet_of(2, tmp_path, kafka_cluster, postgres_dsn)
    with running(fleet):
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        for i in range(STEP):
            for j, (kind, body) in enumerate((("request", {"a": 0.1 * i, "b": 5.0, "c": "x"}), ("response", {"ok": True}))):
                r = fleet.alive()[(i + j) % 2]
                resp = httpx.post(f"{r.url}/v1/cloudevents", content=json.dumps(body), timeout=10, headers={
                    "content-type": "application/json", "ce-specversion": "1.0", "ce-id": f"ce-{i}",
                    "ce-type": f"org.kubeflow.serving.inference.{kind}", "ce-source": "test",
                    "ce-inferenceservicename": "m4", "ce-time": f"2024-01-01T00:00:{i:02d}Z"})
                assert resp.status_code == 200, resp.text
        wait_for(lambda: evaluated_through(postgres_dsn, STEP, ["m4"]), 30, "the joined events evaluated")
        rows = fleet_evaluations(postgres_dsn)["m4"]
    assert [(r[0], r[3]) for r in rows] == [(("count", STEP), STEP)]
