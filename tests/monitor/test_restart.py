"""`driftwatch serve` as a real process: SIGKILL mid-stream loses nothing acknowledged; SIGTERM is
graceful; windows and results after a restart equal those before."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from ingest_helpers import RETRAIN_DRY_RUN, MonitorProcess, event, write_config

from tests.ports import free_port

pytestmark = pytest.mark.slow


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM events WHERE model = 'toy'")]


def test_sigkill_mid_stream_keeps_every_acknowledged_event_exactly_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    monitor = MonitorProcess(config, free_port()).start()
    acked: list[str] = []
    unacked: list[list[int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=monitor.url, timeout=10) as http:
            for b in range(10_000):
                ids = [worker * 1_000_000 + b * 50 + i for i in range(50)]
                if stop.is_set():
                    with lock:
                        unacked.append(ids)
                    continue
                try:
                    r = http.post("/v1/events", json={"events": [event(i) for i in ids]})
                except httpx.TransportError:
                    with lock:
                        unacked.append(ids)
                    stop.set()
                    return
                with lock:
                    (acked.extend if r.status_code == 200 else unacked.append)([f"ev-{i}" for i in ids] if r.status_code == 200 else ids)
                if len(acked) > 20_000:
                    return

    threads = [threading.Thread(target=client, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert monitor.signal(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join(timeout=60)

    db = tmp_path / "store" / "driftwatch.db"
    ids = stored_ids(db)
    assert len(ids) == len(set(ids))
    assert set(acked) <= set(ids), f"{len(set(acked) - set(ids))} acknowledged events lost"

    # The sidecar retries what was not acknowledged: after the restart everything is stored once.
    monitor.start()
    try:
        with httpx.Client(base_url=monitor.url, timeout=30) as http:
            retried = [ids_ for ids_ in unacked if ids_]
            for batch in retried[:20]:
                assert http.post("/v1/events", json={"events": [event(i) for i in batch]}).status_code == 200
            # Re-sending acknowledged batches is harmless: all duplicates.
            sample = [int(a.removeprefix("ev-")) for a in acked[:100]]
            assert http.post("/v1/events", json={"events": [event(i) for i in sample]}).json()["duplicates"] == 100
    finally:
        monitor.stop()
    final = stored_ids(db)
    assert len(final) == len(set(final))
    assert set(acked) | {f"ev-{i}" for b in retried[:20] for i in b} <= set(final)


def test_sigterm_is_graceful_and_the_restarted_monitor_shows_the_same_windows(tmp_path: Path) -> None:
    config = write_config(tmp_path, retrain=RETRAIN_DRY_RUN)
    monitor = MonitorProcess(config, free_port()).start()
    try:
        with httpx.Client(base_url=monitor.url, timeout=30) as http:
            for start in range(0, 230, 23):
                r = http.post("/v1/events", json={"events": [event(i, shift=2.0 if i > 120 else 0.0) for i in range(start, start + 23)]})
                assert r.status_code == 200
            deadline = time.monotonic() + 30
            while (before := http.get("/v1/models/toy/drift").json())["window"] is None or before["window"]["n_records"] != 100 or before["window"]["last_seq"] < 200:
                assert time.monotonic() < deadline, before
                time.sleep(0.05)
            before_metrics = [line for line in http.get("/metrics").text.splitlines() if line.startswith("driftwatch_feature_drift_severity")]
        assert monitor.signal(signal.SIGTERM) == 0
        assert "monitor_stopped" in monitor.log.read_text()
        monitor.start()
        with httpx.Client(base_url=monitor.url, timeout=30) as http:
            after = http.get("/v1/models/toy/drift").json()
            metrics = http.get("/metrics").text.splitlines()
            after_metrics = [line for line in metrics if line.startswith("driftwatch_feature_drift_severity")]
            # `serve` wires the retraining controller: its history (same SQLite file) survived too.
            assert any(line.startswith("driftwatch_retrain_decisions_total{") and 'model="toy"' in line for line in metrics)
    finally:
        monitor.stop()
    for key in ("window", "window_records", "result", "last_evaluation"):
        assert after[key] == before[key], key
    assert before_metrics
    assert after_metrics == before_metrics
