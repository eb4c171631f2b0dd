"""Fleet mode throughput: replicas consuming from Kafka, and HTTP ingest of a fleet replica beside the embedded monitor.

Kafka is librdkafka's mock cluster of three brokers (tests/infra/kafka.py) and PostgreSQL a real
server (tests/infra/postgres.py), both on this machine. Events have 20 numeric features (the ingest
benchmark's, KServe v1), spread over `--models` models on a topic of `--partitions` partitions.

1. Consume: for 1, 2 and 3 replicas (`driftwatch serve` processes of one consumer group), the
   events are pre-encoded, then produced as fast as one producer can, and the clock runs until the
   replicas together have windowed every one (their `driftwatch_events_ingested_total`). Reported:
   events/s, CPU seconds per 1,000 events per replica (user + system, all threads) and the largest
   replica's resident memory at the end, once with
   windows that are never due within the run (consume and window only: the target, >= 50,000
   events/s per core) and once with a window evaluated every 1,000 records per model.
2. HTTP ingest: the ingest benchmark's case (batches of 500, 2 client processes) against an
   embedded monitor (SQLite, fsync before the ack) and against a fleet replica (appended to Kafka
   with acks=all before the ack), in the same run.

The mock cluster keeps about 5 MB per partition (librdkafka's mock log limit): the consume case
checks every partition still starts at offset 0 before it starts the clock, so nothing is lost
unseen. Medians of `--repeats` runs.

    python3 benchmarks/fleet.py [--events 120000] [--models 24] [--partitions 12] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import ingest as ib  # noqa: E402

from monitor.capture import CapturedEvent  # noqa: E402
from monitor.capture.message import encode_record  # noqa: E402
from tests.infra.kafka import KafkaCluster  # noqa: E402
from tests.infra.postgres import PostgresServer  # noqa: E402

DSN_ENV = "DRIFTWATCH_POSTGRES_DSN"


def database(server: PostgresServer) -> str:
    import psycopg

    name = f"b_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn_for(name)


def fleet_config(workdir: Path, models: int, kafka: dict[str, Any], window: dict[str, Any]) -> Path:
    base = yaml.safe_load(ib.write_config(workdir, {"path": "unused.db"}).read_text())
    model = base["models"][0]
    model["window"] = window
    model["reference"]["path"] = str(workdir / "reference.csv")
    base["models"] = [{**model, "name": f"bench-{i}"} for i in range(models)]
    base["fleet"] = {"kafka": kafka}
    base["server"]["evaluation_interval"] = "200ms"
    path = workdir / "fleet.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def records(n: int, models: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        event = ib.make_event(i, rng)
        event["model"] = f"bench-{i % models}"
        out.append(encode_record(CapturedEvent.model_validate(event)))
    return out


class Replica:
    def __init__(self, config: Path, dsn: str, i: int) -> None:
        self.port = ib.free_port()
        self.log = config.parent / f"replica-{i}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), env={**os.environ, DSN_ENV: dsn, "HOSTNAME": f"replica-{i}"},
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def ingested(self) -> int:
        total = 0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("driftwatch_events_ingested_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def cpu(self) -> float:
        return sum(psutil.Process(self.proc.pid).cpu_times()[:2])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def wait(check: Any, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def consume_case(kafka: KafkaCluster, pg: PostgresServer, workdir: Path, n_replicas: int, recs: list[Any],
                 models: int, partitions: int, window: dict[str, Any]) -> dict[str, float]:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, partitions, 3)
    case = Path(tempfile.mkdtemp(dir=workdir))
    config = fleet_config(case, models, {"bootstrap_servers": kafka.bootstrap_servers, "topic": topic,
                                        "partitions": partitions, "group_id": topic}, window)
    dsn = database(pg)
    replicas = [Replica(config, dsn, i) for i in range(n_replicas)]
    try:
        wait(lambda: all(r.get("/readyz").status_code == 200 for r in replicas), 120, "replicas ready")
        wait(lambda: sorted(p for r in replicas for p in r.get("/v1/fleet").json()["partitions"]) == list(range(partitions))
             and all(r.get("/v1/fleet").json()["partitions"] for r in replicas), 120, "partitions assigned")
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20, "compression.type": "lz4",
                             "partitioner": "murmur2_random", "enable.idempotence": True, "acks": "all"})
        cpu0 = [r.cpu() for r in replicas]
        t0 = time.perf_counter()
        for key, value, headers in recs:
            while True:
                try:
                    producer.produce(topic, value, key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.005)
        producer.flush(120)
        produced = time.perf_counter() - t0
        probe = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"probe-{topic}"})
        lows = [probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in range(partitions)]
        probe.close()
        if any(lows):
            raise SystemExit(f"the mock cluster dropped old segments (low watermarks {lows}): use fewer events or more partitions")
        # scraped twice a second: each scrape costs the replicas a little CPU, counted in their figures
        wait(lambda: sum(r.ingested() for r in replicas) >= len(recs), 600, "every event windowed", every=0.5)
        elapsed = time.perf_counter() - t0
        cpu = [r.cpu() - c for r, c in zip(replicas, cpu0, strict=True)]
        rss = max(psutil.Process(r.proc.pid).memory_info().rss for r in replicas) / 2**20
    finally:
        for r in replicas:
            r.stop()
    n = len(recs)
    return {"events_per_s": n / elapsed, "produce_s": produced, "cpu_s_per_1000_per_replica": statistics.mean(cpu) / (n / n_replicas) * 1000,
            "events_per_cpu_s": n / sum(cpu), "max_rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--models", type=int, default=24)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--http-events", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"driftwatch fleet benchmark: {args.events} events of {ib.N_FEATURES} features, {args.models} models, "
          f"{args.partitions} partitions, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} run(s)")
    recs = records(args.events, args.models)
    per_model = args.events // args.models
    workdir = Path(tempfile.mkdtemp(prefix="dw-fleet-bench-"))
    windows = {
        "consume and window": {"records": per_model + 1000, "step": per_model + 1000, "min_records": 100},
        "with evaluation every 1,000": {"records": 1000, "step": 1000, "min_records": 100},
    }
    results: dict[str, Any] = {}
    with KafkaCluster().start() as kafka, PostgresServer().start() as pg:
        for label, window in windows.items():
            for n in (1, 2, 3):
                runs = [consume_case(kafka, pg, workdir, n, recs, args.models, args.partitions, window) for _ in range(args.repeats)]
                results[f"{label}, {n} replica(s)"] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(f"{label:>28}, {n} replica(s): {json.dumps({k: round(v, 3) for k, v in results[f'{label}, {n} replica(s)'].items()})}", flush=True)
        kafka_cfg = {"kafka": {"bootstrap_servers": kafka.bootstrap_servers, "topic": f"http-{uuid.uuid4().hex[:6]}",
                               "partitions": 1, "group_id": "http"}}
        kafka.create_topic(kafka_cfg["kafka"]["topic"], 1, 3)
        for label, fleet, env in (("embedded (SQLite, fsync)", None, None),
                                  ("fleet replica (Kafka, acks=all)", kafka_cfg, {DSN_ENV: database(pg)})):
            runs = [ib.http_case(workdir, "full", 500, args.http_events, 2, fleet=fleet, env=env) for _ in range(args.repeats)]
            results[f"http ingest, {label}"] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"http ingest, {label:>32}: {json.dumps({k: round(v, 2) for k, v in results[f'http ingest, {label}'].items()})}", flush=True)


if __name__ == "__main__":
    main()
