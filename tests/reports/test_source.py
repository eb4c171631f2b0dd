"""The reports' view of a real SQLite store: lookups read only the rows they return.

Rows a lookup must not touch are made unreadable (results that are not JSON, events that are not
events) with plain SQL, so a lookup that read them would fail instead of merely being slow.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from monitor.core.config import Config, load_config
from monitor.core.store import EvaluationRow, EventRow, EventStore
from monitor.reports.source import StoreReportSource

ROOT = Path(__file__).resolve().parents[2]
PER_EVENT = 10
WINDOW = 100


def _config(tmp_path: Path) -> Config:
    config = load_config(ROOT / "examples" / "config.yaml")
    return config.model_copy(update={"server": config.server.model_copy(
        update={"store": config.server.store.model_copy(update={"path": str(tmp_path / "driftwatch.db")})})})


def _event(i: int) -> EventRow:
    records = [{"tenure_months": i * PER_EVENT + k, "monthly_charges": 50.0, "contract": "one-year"} for k in range(PER_EVENT)]
    raw = json.dumps({
        "id": f"e{i}", "model": "churn", "timestamp": 1.0 + i, "path": "/predict",
        "request": {"body": json.dumps(records), "content_type": "application/json"},
        "response": {"body": json.dumps([{"churn_probability": 0.5}] * PER_EVENT), "content_type": "application/json"},
    })
    return EventRow("churn", f"e{i}", 1.0 + i, 1.0 + i, None, PER_EVENT, raw)


def _evaluation(last_rec: int, share: float) -> EvaluationRow:
    """The window of the last WINDOW records up to `last_rec`, spanning its events' stamps (as the monitor stores it)."""
    start, end = 1.0 + (last_rec - WINDOW) // PER_EVENT, 1.0 + (last_rec - 1) // PER_EVENT
    return EvaluationRow("churn", start, end, 1, 2, last_rec - WINDOW + 1, last_rec, WINDOW, {"dataset": {"drift_share": share}}, float(last_rec))


def _spoil(path: str | Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql, params)


@pytest.fixture
def source(tmp_path: Path) -> StoreReportSource:
    config = _config(tmp_path)
    store = EventStore(config.server.store.path)
    with store.transaction():
        store.append([_event(i) for i in range(100)])  # records 1..1000
    for last in range(WINDOW, 1001, WINDOW):
        store.add_evaluation(_evaluation(last, last / 1000))
    store.add_evaluation(_evaluation(500, 0.99))  # window 500 evaluated again: the newest one counts
    store.close()
    return StoreReportSource(config)


def test_a_window_lookup_and_a_miss_parse_no_other_result(source: StoreReportSource) -> None:
    _spoil(source.config.server.store.path, "UPDATE evaluations SET result = '{not json' WHERE last_rec != 300")
    ev = source.evaluation("churn", 300)
    assert ev is not None and ev.window_id == 300 and ev.result["dataset"]["drift_share"] == 0.3
    assert source.evaluation("churn", 301) is None
    assert source.evaluation("wine", 300) is None


def test_history_reads_only_the_windows_it_returns_newest_evaluation_each(source: StoreReportSource) -> None:
    _spoil(source.config.server.store.path, "UPDATE evaluations SET result = '{not json' WHERE last_rec > 600 OR last_rec < 400")
    history = source.evaluations("churn", 3, before=650)
    assert [e.window_id for e in history] == [400, 500, 600]  # oldest first
    assert history[1].result["dataset"]["drift_share"] == 0.99


def test_latest_windows_without_bound(source: StoreReportSource) -> None:
    latest = source.evaluations("churn", 2)
    assert [e.window_id for e in latest] == [900, 1000]
    assert source.evaluations("wine", 2) == []


def test_an_old_windows_records_come_from_its_own_events_only(source: StoreReportSource) -> None:
    # Window 300 holds records 201..300 = events 20..29; everything else is unreadable.
    _spoil(source.config.server.store.path, "UPDATE events SET raw = 'not an event' WHERE rec_end <= 200 OR rec_end > 300")
    frame = source.window_frame("churn", 300)
    assert len(frame) == WINDOW
    assert frame["tenure_months"].tolist() == list(range(200, 300))
    assert set(frame["contract"]) == {"one-year"}


def test_a_window_straddling_events_takes_only_its_records(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = EventStore(config.server.store.path)
    with store.transaction():
        store.append([_event(i) for i in range(10)])  # records 1..100
    store.add_evaluation(EvaluationRow("churn", 2.0, 5.0, 1, 2, 16, 45, 30, {"dataset": {}}, 1.0))  # records 16..45
    store.close()
    frame = StoreReportSource(config).window_frame("churn", 45)
    assert frame["tenure_months"].tolist() == list(range(15, 45))


def test_a_late_event_among_the_windows_ordinals_is_not_taken_for_one_of_its_records(tmp_path: Path) -> None:
    """A duration window leaves out an event stamped before its start (a late retry), as the monitor
    did live: the report's rebuild must too, instead of refusing the window as trimmed."""
    config = _config(tmp_path)
    store = EventStore(config.server.store.path)
    late = _event(3)._replace(ts=0.5)
    late = late._replace(raw=late.raw.replace('"timestamp": 4.0', '"timestamp": 0.5'))
    with store.transaction():
        store.append([_event(i) for i in range(3)] + [late] + [_event(i) for i in range(4, 6)])  # records 1..60
    store.add_evaluation(EvaluationRow("churn", 1.0, 6.0, 1, 2, 1, 60, 50, {"dataset": {}}, 1.0))  # all but the late one
    store.close()
    frame = StoreReportSource(config).window_frame("churn", 60)
    assert frame["tenure_months"].tolist() == [*range(0, 30), *range(40, 60)]


def test_a_window_whose_events_were_trimmed_is_a_clear_lookup_error(source: StoreReportSource) -> None:
    _spoil(source.config.server.store.path, "DELETE FROM events WHERE rec_end BETWEEN 201 AND 250")
    with pytest.raises(LookupError, match="holds 50 of the window's 100 records"):
        source.window_frame("churn", 300)
    with pytest.raises(LookupError, match="no evaluated window 301"):
        source.window_frame("churn", 301)


def test_the_store_hands_over_only_the_events_of_the_window(source: StoreReportSource) -> None:
    store = EventStore(source.config.server.store.path)
    try:
        assert [e.id for e in store.accepted_between("churn", 201, 300)] == [f"e{i}" for i in range(20, 30)]
        assert [e.id for e in store.accepted_between("churn", 16, 45)] == ["e1", "e2", "e3", "e4"]  # straddling
        assert list(store.accepted_between("churn", 1001, 1100)) == []  # not stored (yet)
    finally:
        store.close()
