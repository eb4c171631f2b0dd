"""The SQLite event store: schema versions, idempotent appends, ordinals, halves, retention, sharing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.core.schema import MIGRATIONS, SCHEMA_VERSION
from monitor.core.store import EvaluationRow, EventRow, EventStore, PendingHalf


def rows(ids: list[str], model: str = "m", reason: str | None = None, n: int = 1, received: float = 100.0) -> list[EventRow]:
    return [EventRow(model, i, 1.0, received, reason, 0 if reason else n, f'{{"id": "{i}"}}') for i in ids]


def append(store: EventStore, batch: list[EventRow]) -> list[object]:
    with store.transaction():
        return store.append(batch)


def test_schema_is_versioned_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = EventStore(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        EventStore(path)


def test_duplicates_are_stored_once_and_do_not_advance_ordinals(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    first = append(store, rows(["a", "b"], n=3))
    assert [s.rec_end for s in first] == [3, 6]  # type: ignore[union-attr]
    again = append(store, rows(["b", "c", "c"], n=3) + rows(["a"], model="other"))
    assert again[0] is None  # retried id, and a repeat inside the batch
    assert again[2] is None
    assert again[1].rec_end == 9  # type: ignore[union-attr]  # ordinals are per model
    assert again[3].rec_end == 1
    assert store.count_events("m") == {None: 3}
    store.close()
    reopened = EventStore(tmp_path / "s.db")
    assert reopened.record_total("m") == 9
    assert reopened.record_total("other") == 1


def test_rejected_events_are_kept_without_ordinals(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    out = append(store, rows(["x"], reason="schema_mismatch") + rows(["y"], n=2))
    assert out[0].rec_end is None  # type: ignore[union-attr]
    assert out[1].rec_end == 2
    assert [e.id for e in store.accepted_since("m", 0)] == ["y"]
    assert store.count_events() == {None: 1, "schema_mismatch": 1}


def test_a_failed_transaction_keeps_nothing(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.append(rows(["a"], n=5))
        1 / 0  # noqa: B018
    assert store.record_total("m") == 0
    assert store.count_events() == {}
    assert append(store, rows(["a"], n=5))[0].rec_end == 5  # type: ignore[union-attr]


def test_a_large_append_keeps_every_row_in_order(tmp_path: Path) -> None:
    """Rows go in as multi-row INSERTs of at most 100: none lost or reordered across the chunks."""
    store = EventStore(tmp_path / "s.db")
    batch = [EventRow("m", f"e{i}", float(i), 0.0, "upstream_error" if i % 7 == 0 else None, 0 if i % 7 == 0 else 1, f'{{"i": {i}}}') for i in range(250)]
    out = append(store, batch + rows(["e3"]))  # a duplicate after the chunks
    assert out[-1] is None  # type: ignore[union-attr]
    assert [s.seq for s in out[:-1]] == list(range(1, 251))
    accepted = list(store.accepted_since("m", 0))
    assert [e.id for e in accepted] == [f"e{i}" for i in range(250) if i % 7]
    assert [e.rec_end for e in accepted] == list(range(1, 215))
    assert store.count_events() == {None: 214, "upstream_error": 36}
    assert accepted[-1].raw == '{"i": 249}'


def test_accepted_since_and_first_rec_since(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    with store.transaction():
        store.append([EventRow("m", f"e{i}", float(i), 0.0, None, 2, "{}") for i in range(10)])
    assert [e.rec_end for e in store.accepted_since("m", 15)] == [16, 18, 20]
    assert store.first_rec_since("m", 7.0) == 14  # events stamped 7, 8, 9 hold records 15..20


def test_pending_halves(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    with store.transaction():
        assert store.put_half(PendingHalf("m", "x", "request", 10.0, "{}"))
        assert not store.put_half(PendingHalf("m", "x", "request", 11.0, "{}"))
        store.put_half(PendingHalf("m", "y", "response", 20.0, "{}"))
    with store.transaction():
        assert store.take_half("m", "x", "response") is None
        assert store.take_half("m", "x", "request") == PendingHalf("m", "x", "request", 10.0, "{}")
    with store.transaction():
        assert [h.id for h in store.take_expired_halves(25.0)] == ["y"]
    assert store.pending_count() == 0


def test_evaluations_round_trip(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    for i in range(3):
        store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 1, 50 * (i + 1), 50, {"dataset": {"drift_share": i / 10}}, 3.0 + i))
    latest = store.evaluations("m", limit=2)
    assert [e.last_rec for e in latest] == [150, 100]
    assert latest[0].result == {"dataset": {"drift_share": 0.2}}


def test_an_evaluation_keeps_its_grid_point(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 1, 99, 99, {}, 3.0, ("count", 100)))
    store.add_evaluation(EvaluationRow("m", 1.0, 60.0, 6, 9, 100, 120, 21, {}, 61.0, ("time", 60.0)))
    assert [e.point for e in store.evaluations("m")] == [("time", 60.0), ("count", 100.0)]
    assert store.evaluation_at("m", 99).point == ("count", 100.0)  # type: ignore[union-attr]


def test_a_rebuild_resumes_from_each_grids_newest_point_and_the_newest_ordinal(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 1, 3, 1, {}, 3.0, ("count", 3)))
    store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 2, 2, 1, {}, 3.0, ("time", 2.0)))
    store.add_evaluation(EvaluationRow("other", 1.0, 9.0, 1, 5, 1, 9, 9, {}, 3.0, ("count", 9)))
    assert store.evaluated_points("m") == ({"count": 3.0, "time": 2.0}, 3)


def test_a_version_1_file_is_upgraded_in_place_and_its_evaluations_have_no_point(tmp_path: Path) -> None:
    """Evaluations stored before points were keep their rows; a restart derives their point (windows.py)."""
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0].sql + "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);")
        db.execute("INSERT INTO evaluations (model, window_start, window_end, first_seq, last_seq, first_rec, last_rec,"
                   " n_records, result, evaluated_at) VALUES ('m', 1.0, 2.0, 1, 5, 1, 99, 99, '{}', 3.0)")
    store = EventStore(path)
    assert store.schema_version == SCHEMA_VERSION
    (old,) = store.evaluations("m")
    assert (old.last_rec, old.point) == (99, None)
    store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 51, 150, 99, {}, 4.0, ("count", 150)))
    store.close()
    reopened = EventStore(path)
    assert [e.point for e in reopened.evaluations("m")] == [("count", 150.0), None]
    assert reopened.schema_version == SCHEMA_VERSION
    reopened.close()


def test_retention_by_age_then_by_size(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.db")
    append(store, rows([f"old{i}" for i in range(50)], received=10.0) + rows([f"new{i}" for i in range(50)], received=1000.0))
    while store.trim(older_than=500.0, max_bytes=10**9, batch=20):
        pass
    assert store.count_events() == {None: 50}
    big = [EventRow("m", f"big{i}", 1.0, 2000.0, None, 1, "x" * 4000) for i in range(200)]
    append(store, big)
    before = store.used_bytes()
    while store.trim(older_than=0.0, max_bytes=before // 2, batch=20):
        pass
    assert store.used_bytes() <= before // 2
    remaining = [e.id for e in store.accepted_since("m", 0)]
    assert remaining  # oldest went first
    assert remaining[-1] == "big199"
    assert "new0" not in remaining


def test_another_connection_writes_its_own_tables_concurrently(tmp_path: Path) -> None:
    """Another connection (as the retraining history has) shares the file: WAL + busy_timeout let both write."""
    path = tmp_path / "s.db"
    store = EventStore(path)
    other = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS side_writes (name TEXT)")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(200):
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO side_writes VALUES (?)", (f"j{i}",))
                other.execute("COMMIT")
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    for b in range(40):
        append(store, rows([f"b{b}-{i}" for i in range(20)]))
    t.join()
    assert not errors
    assert other.execute("SELECT COUNT(*) FROM side_writes").fetchone()[0] == 200
    assert store.count_events() == {None: 800}
