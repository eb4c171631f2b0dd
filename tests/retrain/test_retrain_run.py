"""The run's contract values (retrain/run.py)."""

from __future__ import annotations

from retrain.run import rfc3339


def test_a_stamp_no_date_can_show_never_fails_a_launch() -> None:
    """Stores written before ingest bounded stamps may hold ms stamps; the Job's env clamps them."""
    assert rfc3339(1.7e12) == "9999-12-31T23:59:59Z"
    assert rfc3339(1e300) == "9999-12-31T23:59:59Z"
    assert rfc3339(1795348800.0) == "2026-11-22T12:00:00Z"
