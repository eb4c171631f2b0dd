"""The store's size and row limits: an old file is rebuilt with incremental auto-vacuum and shrinks
back under its limit, ingest makes room in its own transaction, and every table has a bound."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.core import store as store_module
from monitor.core.schema import MIGRATIONS, SCHEMA_VERSION
from monitor.core.store import EvaluationRow, EventRow, EventStore, size_slack

MiB = 1024**2


def big_rows(start: int, n: int, received: float = 100.0) -> list[EventRow]:
    return [EventRow("m", f"e{i}", 1.0, received, None, 1, "x" * 1000) for i in range(start, start + n)]


def test_an_old_file_past_its_limit_is_upgraded_and_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as db:  # a version-3 file, no auto-vacuum, 8 MiB of events
        db.execute("PRAGMA journal_mode=WAL")
        for step in MIGRATIONS[:3]:
            for statement in filter(str.strip, step.sql.split(";")):
                db.execute(statement)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (3)")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (seq, model, id, ts, received_at, reason, n_records, rec_end, raw) VALUES (?,?,?,?,?,?,?,?,?)",
            [(i + 1, "m", f"e{i}", 1.0, 100.0, None, 1, i + 1, "x" * 1000) for i in range(8000)],
        )
        db.execute("COMMIT")
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    store = EventStore(path, max_bytes=2 * MiB)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert store._pragma("auto_vacuum") == 2  # INCREMENTAL
        assert store.count_events() == {None: 8000}  # nothing lost by the rebuild
        while store.trim(older_than=0.0, max_bytes=2 * MiB):
            pass
        assert store.size_bytes() <= 2 * MiB + size_slack(2 * MiB)
        assert store.used_bytes() <= 2 * MiB
        assert [e.id for e in store.accepted_since("m", 7999)] == ["e7999"]  # the newest stay
    finally:
        store.close()


def test_ingest_makes_room_in_its_own_transaction(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db", max_bytes=MiB)
    try:
        for start in range(0, 10_000, 50):
            with store.transaction():
                rows = big_rows(start, 50)
                store.make_room(rows, MiB)
                store.append(rows)
            assert store.used_bytes() <= store.size_target(MiB) + 64 * 1024
        assert store.size_bytes() <= MiB + size_slack(MiB)
        kept = store.count_events()[None]
        assert 300 < kept < 1000
    finally:
        store.close()


def test_every_table_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluations: age and the newest EVALUATIONS_KEPT per model; retraining decisions: age (the
    history also keeps only its newest per model); CloudEvent halves expire by the join timeout
    (monitor/runtime/joining.py); events: age, then size."""
    monkeypatch.setattr(store_module, "EVALUATIONS_KEPT", 3)
    path = tmp_path / "s.db"
    store = EventStore(path)
    try:
        for i in range(6):
            for model in ("a", "b"):
                store.add_evaluation(EvaluationRow(model, 0, 1, 1, 1, 1, 1, 1, {"i": i}, evaluated_at=1000.0 + i))
        store.add_evaluation(EvaluationRow("c", 0, 1, 1, 1, 1, 1, 1, {}, evaluated_at=10.0))
        with sqlite3.connect(path, isolation_level=None) as other:
            other.executemany(
                "INSERT INTO retrain_decisions (model, at, source, action, reason) VALUES (?, ?, 'drift', 'none', 'no_drift')",
                [("a", 10.0), ("a", 2000.0)],
            )
        with store.transaction():
            store.append([EventRow("m", "old", 1.0, 10.0, None, 1, "{}"), EventRow("m", "new", 1.0, 2000.0, None, 1, "{}")])
        while store.trim(older_than=500.0, max_bytes=10**9):
            pass
        assert [e.result["i"] for e in store.evaluations("a")] == [5, 4, 3]
        assert [e.result["i"] for e in store.evaluations("b")] == [5, 4, 3]
        assert store.evaluations("c") == []
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT at FROM retrain_decisions").fetchall() == [(2000.0,)]
        assert [e.id for e in store.accepted_since("m", 0)] == ["new"]
    finally:
        store.close()
