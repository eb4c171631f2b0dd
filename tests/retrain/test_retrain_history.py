"""The retraining history file: bounded decision list, counts that never go back, schema upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from retrain.history import SCHEMA_VERSION, History
from retrain.policy import Decision, ModelState


def decide(history: History, model: str, i: int, action: str = "none", reason: str = "no_drift") -> None:
    history.record(Decision(model, 1_795_000_000.0 + i, "window", action, reason), ModelState(), None, None)  # type: ignore[arg-type]


def test_only_the_newest_decisions_stay_listed_but_counts_keep_everything(tmp_path: Path) -> None:
    history = History(tmp_path / "dw.db", keep_decisions=10)
    try:
        for i in range(25):
            decide(history, "wine", i, *(("skip", "cooldown") if i % 5 == 0 else ("none", "no_drift")))
        decide(history, "churn", 0)
        listed = history.recent_decisions("wine", limit=1000)
        assert [d.at - 1_795_000_000.0 for d in listed] == list(range(24, 14, -1))  # newest first, 10 kept
        assert len(history.recent_decisions("churn")) == 1  # trimming is per model
        # Counters exported to Prometheus must never go down when old rows are trimmed.
        assert history.decision_counts() == {"wine": {"no_drift": 20, "cooldown": 5}, "churn": {"no_drift": 1}}
        assert history.skip_counts() == {"wine": 5}
    finally:
        history.close()


def test_a_version_1_file_keeps_its_counts_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "dw.db"
    History(path).close()
    with sqlite3.connect(path) as db:  # what driftwatch with schema 1 left: no counts table
        db.execute("DROP TABLE retrain_decision_counts")
        db.execute("UPDATE retrain_meta SET value = '1' WHERE key = 'schema_version'")
        db.executemany(
            "INSERT INTO retrain_decisions (model, at, source, action, reason) VALUES (?, ?, 'window', ?, ?)",
            [("wine", float(i), "skip" if i < 3 else "none", "cooldown" if i < 3 else "no_drift") for i in range(8)],
        )
    history = History(path)
    try:
        assert history.decision_counts() == {"wine": {"cooldown": 3, "no_drift": 5}}
        decide(history, "wine", 100, "skip", "cooldown")
        assert history.decision_counts() == {"wine": {"cooldown": 4, "no_drift": 5}} and history.skip_counts() == {"wine": 4}
    finally:
        history.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM retrain_meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    History(path).close()  # opening again does not count twice
    history = History(path)
    try:
        assert history.decision_counts() == {"wine": {"cooldown": 4, "no_drift": 5}}
    finally:
        history.close()
