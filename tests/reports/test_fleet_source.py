"""Report pages in fleet mode: `FleetReportSource` reads evaluations from PostgreSQL and re-reads a
window's records from Kafka, numbered as the owning replica numbered them.

The real parts: librdkafka's mock cluster, a PostgreSQL server, and a replica as a `driftwatch
serve` process; each re-read window must equal the one the embedded monitor's store gives for the
same stream."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from monitor.capture import CapturedEvent, ModelSchema
from monitor.capture.message import encode_record
from monitor.core.config import load_config
from monitor.core.store import EvaluationRow
from monitor.reports import FleetReportSource, StoreReportSource
from monitor.reports.fleet_source import KafkaRecord, numbered_events
from tests.infra.kafka import KafkaCluster
from tests.monitor.runtime.fleet_helpers import (
    MODELS,
    STEP,
    Fleet,
    embedded_evaluations,
    evaluated_through,
    running,
    stream,
    wait_for,
    write_configs,
)

PARTITIONS = 6
STEPS = 3


def _event(n: int, model: str = "m0", **over: Any) -> dict[str, Any]:
    body = {"a": float(n), "b": 5.0, "c": "x"}
    return {"id": f"{model}-{n}", "model": model, "timestamp": 1.7e9 + n, "request": {"body": json.dumps(body)}} | over


def _record(offset: int, event: dict[str, Any]) -> KafkaRecord:
    key, value, headers = encode_record(CapturedEvent.model_validate(event))
    return KafkaRecord(offset, key, value, headers)


def test_records_are_numbered_as_the_owning_replica_numbers_them(tmp_path: Path) -> None:
    """Other models, bad records, CloudEvent halves and re-sent ids are skipped; rejected events take no ordinal."""
    schema = ModelSchema.from_config(load_config(write_configs(tmp_path)).model("m0"))
    half = KafkaRecord(14, b"m0", b'{"instances": [[1, 2]]}', [
        ("ce_specversion", b"1.0"), ("ce_id", b"h1"), ("ce_type", b"org.kubeflow.serving.inference.request"),
        ("ce_source", b"kserve"), ("ce_inferenceservicename", b"m0"), ("content-type", b"application/json")])
    records = [
        _record(10, _event(0)),
        _record(11, _event(1, model="m1")),
        KafkaRecord(12, b"m0", b"not json", []),
        _record(13, _event(2, status=500)),  # upstream error: rejected
        half,
        _record(15, _event(0)),  # re-sent
        _record(16, _event(3)),
    ]
    out = list(numbered_events("m0", schema, records, first_base=41))
    assert [(s.seq, s.id, s.rec_end, s.n_records) for s, _ in out] == [(10, "m0-0", 42, 1), (16, "m0-3", 43, 1)]
    assert [r["a"] for _, parsed in out for r in parsed] == [0.0, 3.0]


class _RowsWithoutSource:
    """A PgStore stand-in: a stored window from before evaluations recorded their partition."""

    def evaluation_at(self, model: str, last_rec: int) -> EvaluationRow:
        return EvaluationRow(model, 0.0, 1.0, 0, 9, 1, last_rec, last_rec, {}, 2.0)

    def window_source(self, model: str, last_rec: int) -> None:
        return None

    def close(self) -> None:
        pass


def test_a_window_without_its_kafka_position_is_unavailable_as_a_deleted_one(tmp_path: Path) -> None:
    config = load_config(write_configs(tmp_path, bootstrap="127.0.0.1:1", topic="t"))
    source = FleetReportSource(config, dsn="unused")
    source._pg = _RowsWithoutSource()  # type: ignore[assignment]
    with pytest.raises(LookupError, match="does not record where its events are"):
        source.window_frame("m0", 10)


@pytest.mark.slow
def test_a_replica_serves_report_pages_with_the_windows_the_embedded_store_gives(
    tmp_path: Path, kafka_cluster: KafkaCluster, postgres_dsn: str,
) -> None:
    steps = stream(STEPS)
    embedded_config = write_configs(tmp_path)
    embedded_evaluations(embedded_config, steps)  # keeps its store file beside the config
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_cluster.create_topic(topic, PARTITIONS, 3)
    fleet_config = write_configs(tmp_path, bootstrap=kafka_cluster.bootstrap_servers, topic=topic, partitions=PARTITIONS)

    with running(Fleet(fleet_config, postgres_dsn, 2)) as fleet:
        wait_for(lambda: fleet.settled(PARTITIONS), 60, "partitions assigned")
        for k, batch in enumerate(steps):
            fleet.post(batch, via=0)
            wait_for(lambda k=k: evaluated_through(postgres_dsn, (k + 1) * STEP), 60, f"step {k} evaluated")

        # (a) every evaluated window, re-read from Kafka, equals the embedded store's
        source = FleetReportSource(load_config(fleet_config), dsn=postgres_dsn)
        embedded = StoreReportSource(load_config(embedded_config))
        try:
            assert source.models() == embedded.models() == MODELS
            source_windows: dict[str, list[int]] = {}
            for m in MODELS:
                windows = source.evaluations(m, 100)
                source_windows[m] = [w.window_id for w in windows]
                assert [w.window_id for w in windows] == [w.window_id for w in embedded.evaluations(m, 100)]
                assert len(windows) == STEPS
                for w in windows:
                    frame = source.window_frame(m, w.window_id)
                    assert len(frame) == w.n_records
                    pd.testing.assert_frame_equal(frame, embedded.window_frame(m, w.window_id))
                assert source.evaluation(m, 10**9) is None
            pd.testing.assert_frame_equal(source.reference_frame("m0"), embedded.reference_frame("m0"))

            # records Kafka no longer holds (here: a topic without them) are a LookupError, as retention's
            empty = f"empty-{uuid.uuid4().hex[:8]}"
            kafka_cluster.create_topic(empty, PARTITIONS, 3)
            gone = FleetReportSource(load_config(fleet_config), dsn=postgres_dsn, read_timeout=10)
            gone.kafka = gone.kafka.model_copy(update={"topic": empty})
            try:
                with pytest.raises(LookupError, match="retention"):
                    gone.window_frame("m0", windows[-1].window_id)
            finally:
                gone.close()
        finally:
            source.close()
            embedded.close()

        # (b) every replica serves the pages of a model it owns and of one it does not
        owners = {m: r.url for r, ms in zip(fleet.replicas, fleet.membership(), strict=True) for m in ms["models"]}
        assert sorted(owners) == MODELS and len(set(owners.values())) == 2
        for replica in fleet.replicas:
            other = next(m for m in MODELS if owners[m] != replica.url)
            with httpx.Client(base_url=replica.url, timeout=60) as http:
                assert [r["model"] for r in http.get("/reports.json").json()["models"]] == MODELS
                for m in (next(m for m in MODELS if owners[m] == replica.url), other):
                    _check_pages(http, m, source_windows[m])

                # (c) an unknown window is a 404, as in embedded mode
                assert http.get(f"/reports/{other}/999999").status_code == 404
                missing = http.get(f"/reports/{other}/999999.json")
                assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def _check_pages(http: httpx.Client, model: str, windows: list[int]) -> None:
    index = http.get("/reports/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    latest = http.get(f"/reports/{model}")
    assert latest.status_code == 200 and "text/html" in latest.headers["content-type"], latest.text[:500]
    page = http.get(f"/reports/{model}/{windows[0]}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "no longer available" not in page.text  # the distributions came from Kafka's records
    twin = http.get(f"/reports/{model}/{windows[-1]}.json")
    assert twin.status_code == 200 and twin.json()["window"]["window_id"] == windows[-1]
    history = http.get(f"/v1/models/{model}/evaluations").json()["evaluations"]
    assert [e["window_id"] for e in history] == windows
