"""One writing monitor per event store: a second one is refused with the holder's pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_helpers import MonitorProcess, write_config

from monitor.core.storelock import StoreInUse, StoreLock
from tests.ports import free_port


def test_the_lock_is_exclusive_names_its_holder_and_is_released(tmp_path: Path) -> None:
    first = StoreLock(tmp_path / "dw.db").acquire()
    with pytest.raises(StoreInUse, match=rf"in use by another driftwatch monitor \(pid {os.getpid()}\)"):
        StoreLock(tmp_path / "dw.db").acquire()
    first.release()
    StoreLock(tmp_path / "dw.db").acquire().release()


def test_a_second_serve_on_the_same_store_is_refused_and_a_killed_one_frees_it(tmp_path: Path) -> None:
    """Two monitors on one file would hand out the same record ordinals and mix their windows."""
    config = write_config(tmp_path)
    monitor = MonitorProcess(config, free_port()).start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(free_port())],
            capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert f"in use by another driftwatch monitor (pid {monitor.proc.pid})" in second.stderr  # type: ignore[union-attr]
        assert "Traceback" not in second.stderr
        monitor.signal(signal.SIGKILL)  # the kernel drops the lock with the process
        monitor = MonitorProcess(config, free_port()).start()
    finally:
        monitor.stop()
