"""`driftwatch serve` refuses what it cannot use with one clear line and exit code 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from ingest_helpers import RETRAIN_DRY_RUN, load, write_config

from retrain.history import History
from tests.ports import free_port


def test_a_store_from_a_newer_driftwatch_is_refused_without_a_traceback(tmp_path: Path) -> None:
    """What a rollback to an older image meets after a newer one upgraded the file."""
    config = write_config(tmp_path, retrain=RETRAIN_DRY_RUN)
    store = load(tmp_path, retrain=RETRAIN_DRY_RUN).server.store.path
    store.parent.mkdir(parents=True, exist_ok=True)
    History(store).close()
    with sqlite3.connect(store) as db:
        db.execute("UPDATE schema_version SET version = 99")
    res = subprocess.run(
        [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "schema version 99" in res.stderr and "Traceback" not in res.stderr
