"""The store's size under sustained ingest at full speed: max observed file + WAL, and throughput.

Ingests `--events` events (20 numeric features, KServe v1, one instance each, ~700 bytes stored)
through the real runtime (`Monitor.ingest`: parse, group commit into the real SQLite store, the
windows, the background loop with its evaluations and 60 s retention pass), ten batches of 100 in
flight at a time, while a thread samples the size of the file plus its WAL every 5 ms. Two modes,
side by side:

- `bounded`: as shipped (every ingest commit makes room under `max_bytes`; size steps; WAL bound);
- `baseline`: the old trigger only: the same store, but the size is enforced by the 60 s pass
  alone (the ingest-side room-making and size steps switched off), as before issue 14.

    python3 benchmarks/store_size.py [--events 1000000] [--max-bytes 64MiB] [--modes bounded,baseline]

No HTTP: the HTTP path adds parsing cost, not bytes (tests/monitor/runtime/test_retention.py runs
the same bound through a real uvicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import N_FEATURES, write_config
from monitor.capture import CapturedEvent
from monitor.core.config import load_config
from monitor.core.store import EventStore, disk_bytes, size_slack
from monitor.core.units import parse_size
from monitor.runtime import Monitor
from monitor.runtime.retention import Retention

BATCH = 100
IN_FLIGHT = 10


def batch(first: int, rng: np.random.Generator) -> list[CapturedEvent]:
    out = []
    for i in range(first, first + BATCH):
        row = [round(float(v), 6) for v in rng.normal(0, 1, N_FEATURES)]
        out.append(CapturedEvent.model_validate({
            "id": f"e-{i}", "model": "bench", "timestamp": 1.7e9 + i * 0.001, "latency_seconds": 0.002, "status": 200,
            "method": "POST", "path": "/v1/models/bench:predict",
            "request": {"body": json.dumps({"instances": [row]}), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
            "response": {"body": '{"predictions": [{"score": 0.5}]}', "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        }))
    return out


async def run(mode: str, n_events: int, max_bytes: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"store-size-{mode}-"))
    config = load_config(write_config(workdir, {"path": str(workdir / "bench.db"), "max_bytes": max_bytes}))
    path = config.server.store.path
    saved = EventStore.make_room, Retention.after_commit
    if mode == "baseline":
        EventStore.make_room = lambda self, rows, max_bytes: 0  # type: ignore[method-assign]
        Retention.after_commit = lambda self: None  # type: ignore[method-assign]
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(disk_bytes(path))
            time.sleep(0.005)

    mon = Monitor(config)
    await mon.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rng = np.random.default_rng(1)
    prepare = 0.0
    t0 = time.perf_counter()
    try:
        for first in range(0, n_events, BATCH * IN_FLIGHT):
            p = time.perf_counter()
            batches = [batch(first + k, rng) for k in range(0, BATCH * IN_FLIGHT, BATCH)]
            prepare += time.perf_counter() - p
            await asyncio.gather(*(mon.ingest(b) for b in batches))
        elapsed = time.perf_counter() - t0 - prepare
    finally:
        done.set()
        sampler.join()
        await mon.stop()
        EventStore.make_room, Retention.after_commit = saved  # type: ignore[method-assign]
    samples.append(disk_bytes(path))
    store = EventStore(path)
    kept = sum(store.count_events().values())
    store.close()
    return {"mode": mode, "events_per_s": n_events / elapsed, "max_bytes": max(samples), "end_bytes": samples[-1], "kept": kept,
            "samples": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-bytes", default="64MiB")
    parser.add_argument("--modes", default="bounded,baseline")
    args = parser.parse_args()
    limit = parse_size(args.max_bytes)
    print(f"{args.events} events, max_bytes {args.max_bytes} = {limit} B, stated slack {size_slack(limit)} B "
          f"(bound {(limit + size_slack(limit)) / 2**20:.1f} MiB)")
    print(f"{'mode':<9} {'events/s':>9} {'max file+WAL':>14} {'x limit':>8} {'at end':>12} {'events kept':>12}")
    for mode in args.modes.split(","):
        r = asyncio.run(run(mode, args.events, args.max_bytes))
        print(f"{r['mode']:<9} {r['events_per_s']:>9.0f} {r['max_bytes'] / 2**20:>10.1f} MiB {r['max_bytes'] / limit:>8.2f} "
              f"{r['end_bytes'] / 2**20:>8.1f} MiB {r['kept']:>12}", flush=True)


if __name__ == "__main__":
    main()
