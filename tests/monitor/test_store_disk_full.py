"""A full disk, for real: `driftwatch serve` with its store on a 4 MiB tmpfs mounted by the test
(so it needs root, as CI has; it fails rather than skips where it cannot mount), filled by a
filler file. Ingest answers 503 `storage_full` with `Retry-After` and acknowledges nothing; nothing acknowledged before is lost; once the filler
is deleted the monitor accepts again by itself, without a restart."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ingest_helpers import MonitorProcess, event, write_config

from tests.ports import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("this test mounts a 4 MiB tmpfs and needs root (CI runs as root; run the suite with sudo)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mounting a 4 MiB tmpfs was refused: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """A filler file taking all but `leave` bytes of the file system."""
    filler = mount / "filler"
    st = os.statvfs(mount)
    size = max(0, st.f_bavail * st.f_frsize - leave)
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, size)
    return filler


def batch(start: int, n: int = 100) -> dict[str, object]:
    return {"events": [event(i) for i in range(start, start + n)]}


def test_a_full_disk_answers_503_keeps_what_was_acknowledged_and_recovers(tmp_path: Path, small_fs: Path) -> None:
    db = small_fs / "driftwatch.db"
    config = write_config(tmp_path, server={"store": {"path": str(db), "max_bytes": "64MiB"}})  # the volume is smaller than the limit
    monitor = MonitorProcess(config, free_port()).start()
    acked: list[str] = []
    try:
        filler = fill(small_fs, leave=600 * 1024)
        with httpx.Client(base_url=monitor.url, timeout=30) as client:
            refused = None
            for start in range(0, 100_000, 100):
                r = client.post("/v1/events", json=batch(start))
                if r.status_code != 200:
                    refused = (start, r)
                    break
                assert r.json()["accepted"] == 100
                acked += [f"ev-{i}" for i in range(start, start + 100)]
            assert refused is not None, "the disk never filled"
            start, r = refused
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "storage_full"
            assert int(r.headers["retry-after"]) > 0
            again = client.post("/v1/events", json=batch(start))  # still full: still refused, still alive
            assert again.status_code == 503 and again.json()["error"] == "storage_full"
            assert client.get("/healthz").status_code == 200

            filler.unlink()  # space returns: the same batch goes through, no restart
            deadline = time.monotonic() + 30
            while (r := client.post("/v1/events", json=batch(start))).status_code != 200:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
            assert r.json()["accepted"] + r.json()["duplicates"] == 100
            acked += [f"ev-{i}" for i in range(start, start + 100)]
            r = client.post("/v1/events", json=batch(start + 100))
            assert r.status_code == 200 and r.json()["accepted"] == 100
            acked += [f"ev-{i}" for i in range(start + 100, start + 200)]
        assert len(acked) >= 300
    finally:
        if monitor.proc is not None and monitor.proc.poll() is None:
            monitor.signal(signal.SIGKILL)  # the hardest stop: what was acknowledged must be on disk
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM events WHERE model = 'toy'")}
    assert set(acked) <= stored
    log = monitor.log.read_text()
    assert "store_full" in log and "Traceback" not in log
