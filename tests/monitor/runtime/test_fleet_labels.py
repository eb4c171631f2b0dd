"""Ground truth in fleet mode: `POST /v1/labels` on any replica appends the batch to the events topic
keyed by its model; the model's owner joins each label to its persisted prediction and counts it
by outcome exactly once (PostgreSQL), across a replica's death and the replay that follows, and
back-fills the realized performance of evaluated windows as the embedded monitor does.

librdkafka's mock cluster (tests/infra/kafka.py), a real PostgreSQL server, replicas as
`driftwatch serve` processes, or the real app in-process for the API's answers."""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import yaml

from monitor.app.api import create_app
from monitor.capture.wire import encode_event
from monitor.core.config import load_config
from tests.infra.kafka import KafkaCluster
from tests.monitor.ingest_helpers import serve_in_thread
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
from tests.monitor.runtime.perf_helpers import classifier_event, draw, labels_for

pytestmark = pytest.mark.slow
PARTITIONS = 4
EXPECTED = {"joined": 50, "duplicate": 12, "unknown_id": 1, "too_late": 1, "event_rejected": 1, "count_mismatch": 1,
            "invalid": 0}


def counts(dsn: str, model: str = "clf") -> dict[str, int]:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        try:
            rows = conn.execute("SELECT outcome, n FROM dw_label_counts WHERE model = %s", (model,)).fetchall()
        except psycopg.errors.UndefinedTable:  # no replica connected yet
            return {}
    return {o: int(n) for o, n in rows if n}


def exported(scrapes: list[str], model: str = "clf") -> dict[str, float]:
    """driftwatch_labels_total of `model` summed over every replica's scrape (each model has one exporter)."""
    out: dict[str, float] = {}
    for text in scrapes:
        for outcome, value in re.findall(rf'driftwatch_labels_total{{model="{model}",outcome="(\w+)"}} (\S+)', text):
            out[outcome] = out.get(outcome, 0.0) + float(value)
    return {o: v for o, v in out.items() if v}


def post_labels(url: str, items: list[dict[str, Any]], **kw: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/labels", json={"model": "clf", "labels": items}, timeout=60, **kw)


def test_labels_are_counted_once_by_outcome_back_filled_and_replayed_without_double_counting(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str,
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_cluster.create_topic(topic, PARTITIONS, 3)
    now = time.time()
    first, x0 = classifier_events(50, seed=31, ts=now - 3600)
    second, x1 = classifier_events(50, seed=32, first_id=50, ts=now - 1800)
    old = classifier_event(1000, draw(1, seed=1), ts=now - 2 * 86400)  # past the 1d label_delay
    failed = classifier_event(1001, draw(1, seed=2), ts=now - 60, status=500)  # rejected at ingest
    batches = [first, [*second, json.loads(encode_event(old)), json.loads(encode_event(failed))]]
    y = labels_for(np.vstack([x0, x1]), seed=33)

    def label(i: int) -> dict[str, Any]:
        return {"id": f"p-{i}", "label": int(y[i])}

    a = [label(i) for i in reversed(range(10, 40))] + [label(15), label(16)]  # out of order, duplicated in the batch
    a += [{"id": "p-9999", "label": 1}, {"id": "p-1000", "label": 0}, {"id": "p-1001", "label": 1}]
    a += [{"id": "p-50", "labels": [0, 1]}]  # two labels for a one-instance event
    b = [label(i) for i in range(10, 20)] + [label(i) for i in range(40, 60)]  # ten sent again, twenty new
    config = write_classifier_fleet_config(tmp_path, bootstrap=kafka_cluster.bootstrap_servers, topic=topic,
                                           partitions=PARTITIONS)
    fleet = Fleet(config, postgres_dsn, 2)
    with running(fleet):
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        for k, batch in enumerate(batches):
            fleet.post(batch, via=k)
            wait_for(lambda k=k: evaluated_through(postgres_dsn, 50 * (k + 1), ["clf"]), 60, f"batch {k} evaluated")
        answers = [post_labels(fleet.replicas[0].url, a), post_labels(fleet.replicas[1].url, b)]
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
        assert [r.json()["outcomes"] for r in answers] == [{"accepted": len(a)}, {"accepted": len(b)}]
        wait_for(lambda: counts(postgres_dsn) == {k: v for k, v in EXPECTED.items() if v}, 60, "every label counted")
        wait_for(lambda: [r[3] for r in performance_rows(postgres_dsn)] == [40, 50], 60, "labels back-filled")
        back_filled = performance_rows(postgres_dsn)
        time.sleep(2.5)  # the owner reloads the counts it exports from PostgreSQL every 2 s
        before = exported([httpx.get(f"{r.url}/metrics", timeout=10).text for r in fleet.alive()])
        view = httpx.get(f"{fleet.replicas[1].url}/v1/models/clf/performance", timeout=10).json()

        owner = next(r for r in fleet.alive() if "clf" in httpx.get(f"{r.url}/v1/fleet", timeout=5).json()["models"])
        survivor = next(r for r in fleet.alive() if r is not owner)
        owner.signal(signal.SIGKILL)
        wait_for(lambda: "clf" in httpx.get(f"{survivor.url}/v1/fleet", timeout=5).json()["models"], 60, "clf moved")
        wait_for(lambda: "labels_replayed model=clf" in survivor.log.read_text(), 30, "the label records replayed")
        c = [label(i) for i in range(60, 70)] + [label(60)]
        assert post_labels(survivor.url, c).status_code == 200
        after_c = dict(EXPECTED, joined=60, duplicate=13)
        wait_for(lambda: counts(postgres_dsn) == {k: v for k, v in after_c.items() if v}, 60, "the third batch counted")
        time.sleep(2.5)
        after = exported([httpx.get(f"{survivor.url}/metrics", timeout=10).text])
    assert before == {k: float(v) for k, v in EXPECTED.items() if v}
    assert after == {k: float(v) for k, v in after_c.items() if v}
    windows = view["windows"]
    assert [(w["window_id"], w["n_labelled"]) for w in windows] == [(50, 40), (100, 50)]
    realized = windows[1]["result"]["realized"]["accuracy"]
    predicted = (np.hstack([x0[:, 0], x1[:, 0]]) * 2 - np.hstack([x0[:, 1], x1[:, 1]]) > 0).astype(int)
    assert realized == pytest.approx(float(np.mean(predicted[10:60] == y[10:60])))
    # the same windows, labels and results as one embedded monitor given the same events and labels
    expected = embedded_performance(write_classifier_fleet_config(tmp_path, bootstrap=None), batches, a + b)
    assert back_filled == expected
    assert [r[3] for r in performance_rows(postgres_dsn)] == [40, 60]  # the third batch's ten, after the move


# -- the API's answers in fleet mode (the real app in-process) --------------------------------------------

TOKEN = "fleet-labels-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def fleet_app_config(tmp_path: Path, bootstrap: str, topic: str, **kafka: Any) -> Any:
    path = write_classifier_fleet_config(tmp_path, bootstrap=bootstrap, topic=topic, partitions=PARTITIONS)
    data = yaml.safe_load(path.read_text())
    plain = json.loads(json.dumps(data["models"][0]))
    plain["name"] = "plain"
    del plain["performance"]
    data["models"].append(plain)
    data["server"] |= {"auth_token_env": "DW_FLEET_LABELS_TOKEN", "max_body_bytes": 64 * 1024}
    data["fleet"]["kafka"] |= kafka
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


@pytest.fixture
def fleet_app(tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("DW_FLEET_LABELS_TOKEN", TOKEN)
    monkeypatch.setenv("DRIFTWATCH_POSTGRES_DSN", postgres_dsn)
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_cluster.create_topic(topic, PARTITIONS, 3)
    cfg = fleet_app_config(tmp_path, kafka_cluster.bootstrap_servers, topic)
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
        wait_for(lambda: len(client.get("/v1/fleet").json()["partitions"]) == PARTITIONS, 60, "partitions assigned")
        yield client


def post(client: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/labels", content=content, headers={"content-type": "application/json", **(headers or {})})


REFUSED = [
    (b"{not json", 400, "invalid_json"),
    ({"labels": [{"id": "p-1", "label": 1}]}, 422, "validation_failed"),  # no model
    ({"model": "clf", "labels": [{"id": "p-1"}]}, 422, "validation_failed"),  # no label
    ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "labels": [1]}]}, 422, "validation_failed"),
    ({"model": "clf", "labels": [{"id": "p 1", "label": 1}]}, 422, "validation_failed"),  # not an id
    ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "timestamp": "yesterday"}]}, 422, "validation_failed"),
    ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "extra": 2}]}, 422, "validation_failed"),
    ({"model": "nope", "labels": [{"id": "p-1", "label": 1}]}, 404, "unknown_model"),
    ({"model": "plain", "labels": [{"id": "p-1", "label": 1}]}, 409, "no_performance"),
    ({"model": "clf", "labels": [{"id": f"p-{i}", "label": 1} for i in range(5000)]}, 413, "too_large"),
]


def test_the_fleet_api_refuses_what_the_embedded_one_does_and_appends_nothing(fleet_app: httpx.Client,
                                                                                postgres_dsn: str) -> None:
    answers = [(post(fleet_app, body), status, error) for body, status, error in REFUSED]
    wrong_type = fleet_app.post("/v1/labels", content=b"{}", headers={"content-type": "text/plain"})
    anonymous = post(fleet_app, {"model": "clf", "labels": [{"id": "p-3", "label": 1}]}, {"authorization": "Bearer wrong"})
    fine = post(fleet_app, {"model": "clf", "labels": [{"id": "never-captured", "label": 1}]})
    for r, status, error in answers:
        assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert (wrong_type.status_code, wrong_type.json()["error"]) == (415, "unsupported_media_type")
    assert anonymous.status_code == 401
    assert fine.status_code == 200 and fine.json()["status"] == "accepted"
    assert "invalid_json" not in json.dumps(fine.json())
    wait_for(lambda: counts(postgres_dsn).get("unknown_id") == 1, 60, "the accepted batch counted by its owner")
    with psycopg.connect(postgres_dsn) as conn:
        batches = conn.execute("SELECT count(*) FROM dw_label_batches").fetchone()
    assert batches == (1,)  # only the accepted batch reached the topic
    assert counts(postgres_dsn) == {"unknown_id": 1, "invalid": 5}  # the item-level refusals of clf, as embedded counts them


def test_labels_are_answered_503_and_never_processed_when_the_brokers_do_not_acknowledge(
    tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DW_FLEET_LABELS_TOKEN", TOKEN)
    monkeypatch.setenv("DRIFTWATCH_POSTGRES_DSN", postgres_dsn)
    with KafkaCluster(brokers=3) as kafka:
        topic = f"events-{uuid.uuid4().hex[:8]}"
        kafka.create_topic(topic, PARTITIONS, 3)
        cfg = fleet_app_config(tmp_path, kafka.bootstrap_servers, topic, produce_timeout="2s")
        with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
            wait_for(lambda: len(client.get("/v1/fleet").json()["partitions"]) == PARTITIONS, 60, "partitions assigned")
            for broker in (1, 2, 3):
                kafka.broker_down(broker, move_leaders=False)
            try:
                started = time.monotonic()
                down = post(client, {"model": "clf", "labels": [{"id": "lost-1", "label": 1}]})
                took = time.monotonic() - started
            finally:
                for broker in (1, 2, 3):
                    kafka.broker_up(broker)
            up = post(client, {"model": "clf", "labels": [{"id": "kept-1", "label": 1}]})
            wait_for(lambda: counts(postgres_dsn) == {"unknown_id": 1}, 60, "the acknowledged batch counted")
            time.sleep(3)  # anything of the refused request would have been consumed by now
            final = counts(postgres_dsn)
    assert (down.status_code, down.json()["error"]) == (503, "event_log_unavailable")
    assert down.headers["retry-after"] and took >= 2
    assert up.status_code == 200
    assert final == {"unknown_id": 1}  # the 503'd label was never claimed, nor counted
