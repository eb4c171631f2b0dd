"""What versioned traffic costs at ingest, beside the same traffic without versions.

One in-process `Monitor` per run with a fresh SQLite store (the real ingest path: parse, group
commit, feed the windows; no evaluation), fed batches of KServe v1 events (10 numeric features, one
instance and its prediction each). Three kinds of traffic, run in interleaved rounds so the
machine's drift affects them alike:

- `unversioned`: no version anywhere (what every model had before versions);
- `versioned`: every event carries the version the sidecar read (`version` on the wire), one version;
- `canary`: 90% version 1, 10% version 2: two tracks fed from every batch.

Reports, per kind, the median over the rounds of the process's CPU time per event (all its threads:
the event loop parsing, the writer committing) and of the wall time, and their ratios to
unversioned. CPU time is the figure to read on a shared machine: wall time there mostly measures
the wait for a core.

    python3 benchmarks/versions.py [--events 20000] [--batch 500] [--rounds 5] [--kinds ...] [--synchronous normal]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from monitor.capture import CapturedEvent
from monitor.core.config import Config, load_config
from monitor.runtime import Monitor

N_FEATURES = 10
KINDS = ("unversioned", "versioned", "canary")


def write_config(workdir: Path, synchronous: str) -> Config:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 2000) for i in range(N_FEATURES)})
    ref["score"] = rng.uniform(0, 1, 2000)
    ref.to_csv(workdir / "reference.csv", index=False)
    data = {
        "version": 1,
        "server": {"store": {"path": str(workdir / "store.db"), "synchronous": synchronous}},
        "models": [{
            "name": "bench", "protocol": "kserve_v1",
            "features": [{"name": f"x{i}", "type": "numeric", "source": {"index": i}} for i in range(N_FEATURES)],
            "outputs": [{"name": "score", "type": "numeric", "source": {"key": "score"}}],
            "reference": {"path": "reference.csv"},
            "window": {"records": 1000, "step": 500, "min_records": 100},
        }],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def make_events(kind: str, n: int, seed: int) -> list[CapturedEvent]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        extra: dict[str, Any] = {}
        if kind == "versioned":
            extra["version"] = "1"
        elif kind == "canary":
            extra["version"] = "2" if i % 10 == 0 else "1"
        request = {"instances": [[float(v) for v in rng.normal(0, 1, N_FEATURES)]]}
        out.append(CapturedEvent.model_validate({
            "id": f"e-{seed}-{i}", "model": "bench", "timestamp": 1_700_000_000.0 + i, "path": "/v1/models/bench:predict",
            "request": {"body": json.dumps(request)}, "response": {"body": json.dumps({"predictions": [{"score": 0.5}]})},
            **extra,
        }))
    return out


async def one_run(config: Config, events: list[CapturedEvent], batch: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per event to ingest `events` in batches of `batch`, one at a time."""
    mon = Monitor(config)
    await mon.start(background=False)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(events), batch):
            result = await mon.ingest(events[i : i + batch])
            assert result.accepted == len(events[i : i + batch]), result
        return (time.process_time() - cpu) / len(events), (time.perf_counter() - wall) / len(events)
    finally:
        await mon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="traffic kinds to run (unversioned alone runs against a checkout from before versions too)")
    parser.add_argument("--synchronous", choices=("full", "normal"), default="normal",
                        help="the store's durability (normal: fsync noise does not hide the parsing cost)")
    args = parser.parse_args()
    kinds = [k for k in KINDS if k in args.kinds]
    events = {kind: make_events(kind, args.events, seed) for seed, kind in enumerate(KINDS) if kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="dw-versions-") as tmp:
                config = write_config(Path(tmp), args.synchronous)
                gc.collect()  # each run starts from the same heap: a collection left over from the last is not billed to this one
                c, w = asyncio.run(one_run(config, events[kind], args.batch))
                cpu[kind].append(c)
                wall[kind].append(w)
    base = kinds[0]
    base_cpu, base_wall = statistics.median(cpu[base]), statistics.median(wall[base])
    print(f"{args.events} events per run, batches of {args.batch}, {args.rounds} rounds, synchronous={args.synchronous}")
    print(f"{'traffic':<12} {'CPU µs/event':>13} {'ratio':>6} {'wall µs/event':>14} {'ratio':>6}   (medians)")
    for kind in kinds:
        c, w = statistics.median(cpu[kind]), statistics.median(wall[kind])
        print(f"{kind:<12} {c * 1e6:>13.1f} {c / base_cpu:>6.3f} {w * 1e6:>14.1f} {w / base_wall:>6.3f}")


if __name__ == "__main__":
    main()
