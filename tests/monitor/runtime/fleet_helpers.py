"""Shared pieces of the fleet tests: a config of several models, a deterministic event stream, the
embedded monitor's evaluations of it, and replicas as `driftwatch serve` subprocesses."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import yaml

from monitor.capture import CapturedEvent
from monitor.core.config import load_config
from monitor.core.pgstore import PgStore
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import MonitorProcess
from tests.ports import free_port

MODELS = [f"m{i}" for i in range(6)]
STEP = 50
"""Events per model per step: one count-grid point each."""
DRIFTED = {"m0", "m1"}


def write_configs(tmp_path: Path, *, bootstrap: str | None = None, topic: str = "", partitions: int = 6,
                  retrain: dict[str, Any] | None = None, lease_seconds: float | None = None) -> Path:
    """The models' config (embedded without `bootstrap`, fleet with it) in its own directory;
    `retrain` is the retraining config of the drifted models."""
    rng = np.random.default_rng(3)
    ref = tmp_path / "reference.csv"
    if not ref.exists():
        pd.DataFrame({"a": rng.normal(0, 1, 800), "b": rng.normal(5, 2, 800),
                      "c": rng.choice(["x", "y", "z"], 800)}).to_csv(ref, index=False)
    where = tmp_path / (f"fleet-{uuid.uuid4().hex[:6]}" if bootstrap else "embedded")
    where.mkdir()
    data: dict[str, Any] = {
        "version": 1,
        "server": {"evaluation_interval": "50ms", "store": {"path": str(where / "driftwatch.db")}},
        "models": [
            {"name": m, "protocol": "json",
             "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"}, {"name": "c", "type": "categorical"}],
             "reference": {"path": str(ref)}, "window": {"records": 100, "step": STEP, "min_records": 20},
             **({"retrain": retrain} if retrain and m in DRIFTED else {})}
            for m in MODELS
        ],
    }
    if bootstrap:
        data["fleet"] = {"kafka": {"bootstrap_servers": bootstrap, "topic": topic, "partitions": partitions,
                                   "group_id": f"g-{topic}"}}
        if lease_seconds is not None:
            data["fleet"]["postgres"] = {"lease_seconds": lease_seconds}
    path = where / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stream(steps: int) -> list[list[dict[str, Any]]]:
    """Per step, every model's next `STEP` events (JSON wire dicts); drifted models shift `a` from step 4."""
    rng = np.random.default_rng(11)
    out = []
    for k in range(steps):
        batch = []
        for m in MODELS:
            shift = 1.5 if m in DRIFTED and k >= 4 else 0.0
            for j in range(STEP):
                n = k * STEP + j
                body = {"a": float(rng.normal(shift, 1)), "b": float(rng.normal(5, 2)), "c": str(rng.choice(["x", "y", "z"]))}
                batch.append({"id": f"{m}-{n}", "model": m, "timestamp": 1.7e9 + n, "request": {"body": json.dumps(body)}})
        out.append(batch)
    return out


def comparable(rows: list[Any]) -> list[tuple[Any, ...]]:
    """What must agree between the embedded monitor and a fleet: everything but store sequence
    numbers (SQLite rowids there, Kafka offsets here) and the wall-clock evaluation time."""
    return [(tuple(r.point), r.first_rec, r.last_rec, r.n_records, r.window_start, r.window_end,
             json.dumps(r.result, sort_keys=True)) for r in rows]


def embedded_evaluations(config_path: Path, steps: list[list[dict[str, Any]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The embedded monitor's evaluations of the stream, ingested and evaluated one step at a time."""
    config = load_config(config_path)

    async def run() -> dict[str, list[tuple[Any, ...]]]:
        mon = Monitor(config)
        await mon.start(background=False)
        try:
            for batch in steps:
                await mon.ingest([CapturedEvent.model_validate(e) for e in batch])
                await asyncio.get_running_loop().run_in_executor(None, mon.evaluate_due)
            store = mon.store
            assert store is not None
            rows = await asyncio.get_running_loop().run_in_executor(
                mon._state.writer, lambda: {m: list(reversed(store.evaluations(m, 1000))) for m in MODELS})
        finally:
            await mon.stop()
        return {m: comparable(r) for m, r in rows.items()}

    return asyncio.run(run())


def fleet_evaluations(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    store = PgStore(dsn)
    try:
        return {m: comparable(sorted(rows, key=lambda r: r.last_rec)) for m, rows in store.all_evaluations(MODELS).items()}
    finally:
        store.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took (AssertionError naming `what` on timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except (httpx.TransportError, psycopg.OperationalError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def evaluated_through(dsn: str, point: int, models: list[str] = MODELS) -> bool:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        rows = conn.execute("SELECT model FROM dw_evaluations WHERE point_kind = 'count' AND point >= %s", (point,)).fetchall()
    return {m for (m,) in rows} >= set(models)


class Fleet:
    """Replicas of one config as `driftwatch serve` subprocesses."""

    def __init__(self, config_path: Path, dsn: str, n: int) -> None:
        self.replicas: list[MonitorProcess] = []
        for i in range(n):
            where = config_path.parent / f"replica-{i}"
            where.mkdir(exist_ok=True)
            path = where / "config.yaml"
            path.write_text(config_path.read_text())
            self.replicas.append(MonitorProcess(path, free_port(), env={"DRIFTWATCH_POSTGRES_DSN": dsn, "HOSTNAME": f"replica-{i}"}))

    def start(self) -> Fleet:
        for r in self.replicas:
            r.start(timeout=90)
        return self

    def alive(self) -> list[MonitorProcess]:
        return [r for r in self.replicas if r.proc is not None and r.proc.poll() is None]

    def membership(self) -> list[dict[str, Any]]:
        return [httpx.get(f"{r.url}/v1/fleet", timeout=5).json() for r in self.alive()]

    def settled(self, partitions: int) -> bool:
        """Every partition owned by exactly one live replica, each live replica owning some."""
        owned = [p for m in self.membership() for p in m["partitions"]]
        return sorted(owned) == list(range(partitions)) and all(m["partitions"] for m in self.membership())

    def post(self, batch: list[dict[str, Any]], via: int) -> None:
        alive = self.alive()
        r = alive[via % len(alive)]
        resp = httpx.post(f"{r.url}/v1/events", json={"events": batch}, timeout=60)
        assert resp.status_code == 200, resp.text

    def stop(self) -> None:
        for r in self.replicas:
            r.stop()


@contextmanager
def running(fleet: Fleet) -> Iterator[Fleet]:
    try:
        yield fleet.start()
    finally:
        fleet.stop()


# -- a labelled classifier in fleet mode (tests/monitor/runtime/test_fleet_performance.py, test_fleet_labels.py) --

def write_classifier_fleet_config(tmp_path: Path, *, bootstrap: str | None, topic: str = "", partitions: int = 4,
                                  performance: dict[str, Any] | None = None) -> Path:
    """perf_helpers' calibrated classifier `clf` (plus the drift-only `m0`), embedded without `bootstrap`."""
    from tests.monitor.runtime.perf_helpers import write_classifier_config

    where = tmp_path / (f"fleet-{uuid.uuid4().hex[:6]}" if bootstrap else f"embedded-{uuid.uuid4().hex[:6]}")
    where.mkdir()
    write_classifier_config(where, performance=performance)
    data = yaml.safe_load((where / "config.yaml").read_text())
    data["models"][0]["reference"]["path"] = str(where / "clf_reference.csv")
    data["server"]["store"]["path"] = str(where / "driftwatch.db")
    if bootstrap:
        data["fleet"] = {"kafka": {"bootstrap_servers": bootstrap, "topic": topic, "partitions": partitions,
                                   "group_id": f"g-{topic}"}}
    path = where / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def classifier_events(n: int, *, seed: int, first_id: int = 0, ts: float | None = None) -> tuple[list[dict[str, Any]], Any]:
    """`n` one-instance events of `clf` (wire dicts, ids `p-<first_id + i>`), and their inputs."""
    from monitor.capture.wire import encode_event
    from tests.monitor.runtime.perf_helpers import draw
    from tests.monitor.runtime.perf_helpers import stream as clf_stream

    x = draw(n, seed=seed)
    events = clf_stream(x, first_id=first_id, ts=(time.time() - 3600.0) if ts is None else ts)
    return [json.loads(encode_event(e)) for e in events], x


def performance_rows(dsn: str, model: str = "clf") -> list[tuple[Any, ...]]:
    """Stored window performance, oldest first, as comparable tuples (no wall-clock times)."""
    store = PgStore(dsn)
    try:
        rows = store.performance_history(model, 1000)
    finally:
        store.close()
    return sorted((r.first_rec, r.last_rec, r.n_records, r.n_labelled, json.dumps(r.result, sort_keys=True)) for r in rows)


def embedded_performance(config_path: Path, batches: list[list[dict[str, Any]]],
                         labels: list[dict[str, Any]] | None = None) -> list[tuple[Any, ...]]:
    """The embedded monitor's window performance of these batches (each evaluated), after `labels`."""
    from monitor.capture.labels import decode_labels

    config = load_config(config_path)

    async def run() -> list[tuple[Any, ...]]:
        mon = Monitor(config)
        await mon.start(background=False)
        loop = asyncio.get_running_loop()
        try:
            for batch in batches:
                await mon.ingest([CapturedEvent.model_validate(e) for e in batch])
                await loop.run_in_executor(None, mon.evaluate_due)
            if labels:
                await mon.ingest_labels(*decode_labels(json.dumps({"model": "clf", "labels": labels}).encode()))
                await loop.run_in_executor(None, mon.refresh_performance)
            rows = await loop.run_in_executor(None, mon.performance_history, "clf", 1000)
        finally:
            await mon.stop()
        return sorted((r.first_rec, r.last_rec, r.n_records, r.n_labelled, json.dumps(r.result, sort_keys=True)) for r in rows)

    return asyncio.run(run())
