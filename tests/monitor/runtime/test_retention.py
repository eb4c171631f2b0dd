"""Size retention under sustained ingest: the store file plus its WAL never exceeds
`server.store.max_bytes` plus `size_slack`, sampled from another thread while the monitor
ingests many times its limit through the real store (and once through real HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from monitor.app.api import create_app
from monitor.capture import encode_event
from monitor.core.schema import SCHEMA_VERSION
from monitor.core.store import EventStore, disk_bytes, size_slack
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import event, load, serve_in_thread
from tests.monitor.runtime.runtime_helpers import events

LIMIT = 2 * 1024**2


@contextmanager
def sampled(path: Path) -> Iterator[list[int]]:
    """Samples of the file plus its WAL, taken every millisecond from another thread."""
    samples: list[int] = []
    done = threading.Event()

    def run() -> None:
        while not done.is_set():
            samples.append(disk_bytes(path))
            time.sleep(0.001)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()
        samples.append(disk_bytes(path))


def test_the_store_stays_within_its_limit_under_sustained_ingest(tmp_path: Path) -> None:
    cfg = load(tmp_path, server={"store": {"path": "store/driftwatch.db", "max_bytes": "2MiB"}})
    path = cfg.server.store.path

    async def scenario() -> tuple[list[int], int, int]:
        mon = Monitor(cfg)
        await mon.start(background=False)  # no periodic pass: only the size steps between passes trim
        try:
            with sampled(path) as samples:
                written = 0
                for start in range(0, 30_000, 1000):  # ten concurrent batches of 100 (under 64 KiB each): group commits
                    chunks = [events(range(start + k, start + k + 100)) for k in range(0, 1000, 100)]
                    results = await asyncio.gather(*(mon.ingest(c) for c in chunks))
                    assert sum(r.accepted for r in results) == 1000
                    written += sum(len(encode_event(e)) for c in chunks for e in c)
            store = mon.store
            assert store is not None
            left = await asyncio.get_running_loop().run_in_executor(mon._state.writer, lambda: store.count_events()[None])
            return samples, written, left
        finally:
            await mon.stop()

    samples, written, left = asyncio.run(scenario())
    assert written > 6 * LIMIT  # many times the limit went through the store
    assert max(samples) <= LIMIT + size_slack(LIMIT), f"max {max(samples)} of {len(samples)} samples"
    assert 0 < left < 30_000  # the newest events stay, the oldest went
    store = EventStore(path)
    try:
        newest = [e.id for e in store.accepted_since("toy", store.record_total("toy") - 5)]
        assert newest[-1] == "ev-29999"
        assert store.schema_version == SCHEMA_VERSION
    finally:
        store.close()


def test_the_limit_holds_through_real_http_ingest(tmp_path: Path) -> None:
    cfg = load(tmp_path, server={"store": {"path": "store/driftwatch.db", "max_bytes": "2MiB"}, "max_body_bytes": "4MiB"})
    path = cfg.server.store.path
    with serve_in_thread(create_app(cfg)) as url, sampled(path) as samples, httpx.Client(base_url=url, timeout=60) as client:
        def post(start: int) -> None:
            r = client.post("/v1/events", json={"events": [event(i) for i in range(start, start + 100)]})
            assert r.status_code == 200 and r.json()["accepted"] == 100

        for start in range(0, 20_000, 800):
            threads = [threading.Thread(target=post, args=(start + k,)) for k in range(0, 800, 100)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert max(samples) <= LIMIT + size_slack(LIMIT), f"max {max(samples)} of {len(samples)} samples"


def test_a_lowered_limit_shrinks_the_file_at_the_next_commits(tmp_path: Path) -> None:
    """A store filled under a larger limit: the first commits under the smaller one queue size steps
    (behind the ingest commits) that bring file and WAL back under the new limit without a restart pass."""
    big = load(tmp_path, server={"store": {"path": "store/driftwatch.db", "max_bytes": "16MiB"}})
    small = load(tmp_path, server={"store": {"path": "store/driftwatch.db", "max_bytes": "2MiB"}})
    path = big.server.store.path

    async def fill() -> None:
        mon = Monitor(big)
        await mon.start(background=False)
        try:
            for start in range(0, 16_000, 1000):
                await asyncio.gather(*(mon.ingest(events(range(start + k, start + k + 100))) for k in range(0, 1000, 100)))
        finally:
            await mon.stop()

    async def shrink() -> int:
        mon = Monitor(small)
        await mon.start(background=False)
        try:
            for start in range(16_000, 16_500, 100):
                await mon.ingest(events(range(start, start + 100)))
            await asyncio.get_running_loop().run_in_executor(mon._state.writer, lambda: None)  # the queued size steps ran
            return disk_bytes(path)
        finally:
            await mon.stop()

    asyncio.run(fill())
    assert disk_bytes(path) > 3 * LIMIT
    assert asyncio.run(shrink()) <= LIMIT + size_slack(LIMIT)
