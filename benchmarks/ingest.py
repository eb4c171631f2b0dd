"""Durable ingest throughput of a real `driftwatch serve` process over HTTP.

Events of 20 numeric features (KServe v1, one instance + prediction each), batches of 100, 500 and
1000, a few concurrent client processes sending pre-serialized bodies (so the clients are not the
bottleneck). Each case reports events/s and the p50/p99 latency of a batch (send → durable ack),
side by side with the baseline of appending the same rows straight into the SQLite store (no HTTP,
no validation, no parsing), under synchronous=FULL (the default: fsync before the ack) and NORMAL.
The monitor's CPU time per event (user + system, all its threads) is printed too: on a machine
shared with other work it varies far less than throughput does. With --repeats N every figure is
the median of N runs.

    python3 benchmarks/ingest.py [--events 30000] [--clients 3] [--repeats 1]

Target (issue 3): >= 20,000 events/s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml

N_FEATURES = 20
RANDOM_IDS = False
"""Random ids scatter the store's (model, id) index: more pages written per commit than sequential ones."""


def write_config(workdir: Path, store: dict[str, Any], fleet: dict[str, Any] | None = None) -> Path:
    """A one-model config (20 numeric features, KServe v1) with `store` as `server.store` (and a
    `fleet` section, for a fleet replica: benchmarks/fleet.py)."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 2000) for i in range(N_FEATURES)})
    ref["score"] = rng.uniform(0, 1, 2000)
    ref.to_csv(workdir / "reference.csv", index=False)
    config = {
        "version": 1,
        "server": {"evaluation_interval": "1s", "max_body_bytes": "64MiB", "store": store},
        "models": [{
            "name": "bench",
            "protocol": "kserve_v1",
            "features": [{"name": f"x{i}", "type": "numeric", "source": {"index": i}} for i in range(N_FEATURES)],
            "outputs": [{"name": "score", "type": "numeric", "source": {"key": "score"}}],
            "reference": {"path": "reference.csv"},
            "window": {"records": 5000, "step": 2500, "min_records": 100},
        }],
        **({"fleet": fleet} if fleet else {}),
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def make_event(i: int, rng: np.random.Generator) -> dict[str, Any]:
    row = [round(float(v), 6) for v in rng.normal(0, 1, N_FEATURES)]
    event_id = rng.bytes(16).hex() if RANDOM_IDS else f"e-{i}"
    return {
        "id": event_id, "model": "bench", "timestamp": 1.7e9 + i * 0.001, "latency_seconds": 0.002, "status": 200,
        "method": "POST", "path": "/v1/models/bench:predict",
        "request": {"body": json.dumps({"instances": [row]}), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        "response": {"body": json.dumps({"predictions": [{"score": 0.5}]}), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        "headers": {"x-request-id": f"r-{i}"},
    }


def bodies(first: int, n_events: int, batch: int) -> list[bytes]:
    rng = np.random.default_rng(first)
    return [
        json.dumps({"events": [make_event(first + b + i, rng) for i in range(batch)]}).encode()
        for b in range(0, n_events, batch)
    ]


def client(port: int, payloads: list[bytes], start: Any, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start.wait()
    latencies = []
    for body in payloads:
        t = time.perf_counter()
        conn.request("POST", "/v1/events", body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        latencies.append(time.perf_counter() - t)
        if resp.status != 200:
            raise SystemExit(f"status {resp.status}: {data[:200]!r}")
    out.put(latencies)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_case(workdir: Path, synchronous: str, batch: int, n_events: int, clients: int,
              fleet: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> dict[str, float]:
    case_dir = Path(tempfile.mkdtemp(dir=workdir))
    config = write_config(case_dir, {"path": "bench.db", "synchronous": synchronous}, fleet)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=open(case_dir / "monitor.log", "wb"), env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit((case_dir / "monitor.log").read_text()[-2000:])
            time.sleep(0.1)
        per_client = n_events // clients
        payloads = [bodies(k * per_client, per_client, batch) for k in range(clients)]
        start, out = mp.Event(), mp.Queue()
        procs = [mp.Process(target=client, args=(port, payloads[k], start, out)) for k in range(clients)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        server = psutil.Process(proc.pid)
        cpu0 = sum(server.cpu_times()[:2])
        t0 = time.perf_counter()
        start.set()
        latencies = [x for _ in procs for x in out.get()]
        elapsed = time.perf_counter() - t0
        cpu = sum(server.cpu_times()[:2]) - cpu0
        for p in procs:
            p.join()
        total = per_client // batch * batch * clients
        return {"events_per_s": total / elapsed, **_percentiles(latencies), "cpu_us": cpu / total * 1e6}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": q[98] * 1000}


def raw_sqlite_case(workdir: Path, synchronous: str, batch: int, n_events: int) -> dict[str, float]:
    """The floor: the same rows appended straight into the store, one transaction per batch."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from monitor.core.store import EventRow, EventStore

    store = EventStore(Path(tempfile.mkdtemp(dir=workdir)) / "raw.db", synchronous=synchronous.upper())  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    batches = [
        [EventRow("bench", f"e-{b + i}", 1.7e9, 1.7e9, None, 1, json.dumps(make_event(b + i, rng))) for i in range(batch)]
        for b in range(0, n_events, batch)
    ]
    latencies = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for rows in batches:
        t = time.perf_counter()
        with store.transaction():
            store.append(rows)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    store.close()
    return {"events_per_s": len(batches) * batch / elapsed, **_percentiles(latencies), "cpu_us": cpu / (len(batches) * batch) * 1e6}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="runs per case; figures are medians")
    parser.add_argument(
        "--random-ids", action="store_true",
        help="random 32-hex ids, as the sidecar generates them (default: sequential e-0, e-1, ...)",
    )
    args = parser.parse_args()
    global RANDOM_IDS
    RANDOM_IDS = args.random_ids
    print(f"driftwatch ingest benchmark: {args.events} events of {N_FEATURES} features, {args.clients} client processes, {os.cpu_count()} CPUs")
    print(f"ids: {'random (as the sidecar makes them)' if RANDOM_IDS else 'sequential'}; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; figures are medians of {args.repeats} run(s)")
    print(f"{'path':<24}{'sync':<8}{'batch':>6}{'events/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'vs raw':>8}{'cpu µs/ev':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for synchronous in ("full", "normal"):
            for batch in (100, 500, 1000):
                raw = _median([raw_sqlite_case(workdir, synchronous, batch, args.events) for _ in range(args.repeats)])
                res = _median([http_case(workdir, synchronous, batch, args.events, args.clients) for _ in range(args.repeats)])
                for name, r in (("raw SQLite append", raw), ("HTTP monitor (durable)", res)):
                    ratio = r["events_per_s"] / raw["events_per_s"]
                    print(f"{name:<24}{synchronous:<8}{batch:>6}{r['events_per_s']:>11,.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{ratio:>8.2f}{r['cpu_us']:>11.1f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; target (issue 3): HTTP monitor >= 20,000 events/s")


if __name__ == "__main__":
    main()
