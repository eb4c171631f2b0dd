"""One schema owner for the SQLite file (monitor/core/schema.py): every old file upgrades, newer ones are refused.

The DDL below is copied from the code that wrote those files (monitor/core/store.py's `_MIGRATIONS` and
retrain/history.py's `_SCHEMA` before the schema moved), frozen here on purpose: editing a released
migration must make these tests fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.core import schema
from monitor.core.schema import MIGRATIONS, SCHEMA_VERSION, SchemaVersionError
from monitor.core.store import EvaluationRow, EventRow, EventStore
from retrain.history import History
from retrain.policy import Decision, ModelState

# -- what older driftwatch left on disk ------------------------------------------------------------

OLD_STORE_V1 = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    id TEXT NOT NULL,
    ts REAL NOT NULL,
    received_at REAL NOT NULL,
    reason TEXT,
    n_records INTEGER NOT NULL,
    rec_end INTEGER,
    raw TEXT NOT NULL,
    UNIQUE (model, id)
);
CREATE INDEX events_model_rec ON events (model, rec_end) WHERE rec_end IS NOT NULL;
CREATE TABLE ce_pending (
    model TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('request', 'response')),
    received_at REAL NOT NULL,
    half TEXT NOT NULL,
    PRIMARY KEY (model, id, kind)
);
CREATE INDEX ce_pending_received ON ce_pending (received_at);
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_rec INTEGER NOT NULL,
    last_rec INTEGER NOT NULL,
    n_records INTEGER NOT NULL,
    result TEXT NOT NULL,
    evaluated_at REAL NOT NULL
);
CREATE INDEX evaluations_model ON evaluations (model, last_rec);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
"""
OLD_STORE_V2 = (
    OLD_STORE_V1.replace("INSERT INTO schema_version VALUES (1);", "INSERT INTO schema_version VALUES (2);")
    + """
ALTER TABLE evaluations ADD COLUMN point_kind TEXT CHECK (point_kind IN ('count', 'time'));
ALTER TABLE evaluations ADD COLUMN point REAL;
"""
)
_OLD_HISTORY_COUNTS = """
CREATE TABLE IF NOT EXISTS retrain_decision_counts (
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (model, action, reason)
);
"""
OLD_HISTORY_V2 = """
CREATE TABLE IF NOT EXISTS retrain_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS retrain_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    fingerprint TEXT,
    job_name TEXT,
    trigger TEXT
);
CREATE INDEX IF NOT EXISTS retrain_decisions_model ON retrain_decisions (model, id);
CREATE TABLE IF NOT EXISTS retrain_decision_counts (
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (model, action, reason)
);
CREATE TABLE IF NOT EXISTS retrain_jobs (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    launcher TEXT NOT NULL,
    namespace TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    exit_code INTEGER,
    pid INTEGER,
    pid_created REAL,
    log_path TEXT,
    detail TEXT,
    run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retrain_jobs_state ON retrain_jobs (state, model);
CREATE TABLE IF NOT EXISTS retrain_state (model TEXT PRIMARY KEY, state TEXT NOT NULL);
INSERT INTO retrain_meta (key, value) VALUES ('schema_version', '2');
"""
OLD_HISTORY_V1 = OLD_HISTORY_V2.replace(_OLD_HISTORY_COUNTS, "").replace("VALUES ('schema_version', '2')", "VALUES ('schema_version', '1')")
assert OLD_HISTORY_V1 != OLD_HISTORY_V2
assert "retrain_decision_counts" not in OLD_HISTORY_V1

# v1 decisions: counts were COUNT(*) over these rows; v2 kept them in retrain_decision_counts too.
_DECISIONS = [("wine", float(i), "skip" if i < 3 else "none", "cooldown" if i < 3 else "no_drift") for i in range(8)]
_EVALUATION = (
    "INSERT INTO evaluations (model, window_start, window_end, first_seq, last_seq, first_rec, last_rec, n_records, result,"
    " evaluated_at) VALUES ('m', 1.0, 2.0, 1, 5, 1, 99, 99, '{}', 3.0)"
)


def old_file(path: Path, *scripts: str, decisions: bool = False, counts: bool = False, evaluation: bool = False) -> Path:
    with sqlite3.connect(path) as db:
        for script in scripts:
            db.executescript(script)
        if decisions:
            db.executemany("INSERT INTO retrain_decisions (model, at, source, action, reason) VALUES (?, ?, 'window', ?, ?)", _DECISIONS)
        if counts:
            db.executemany(
                "INSERT INTO retrain_decision_counts (model, action, reason, n) VALUES ('wine', ?, ?, ?)",
                [("skip", "cooldown", 3), ("none", "no_drift", 5)],
            )
        if evaluation:
            db.execute(_EVALUATION)
    db.close()
    return path


def shape(path: Path) -> dict[str, object]:
    """Tables, their columns (name, type, not null, default, pk) and indexes: what code relies on."""
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out: dict[str, object] = {name: [tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({name})")] for name in names}
        out["indexes"] = sorted(
            (r[0], r[1]) for r in db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
        )
        out["version"] = db.execute("SELECT version FROM schema_version").fetchall()
    db.close()
    return out


def open_store(path: Path) -> None:
    EventStore(path).close()


def open_history(path: Path) -> None:
    History(path).close()


OPENERS: dict[str, Callable[[Path], None]] = {"store": open_store, "history": open_history}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    path = tmp_path_factory.mktemp("fresh") / "dw.db"
    open_store(path)
    return shape(path)


# -- the migration list itself -------------------------------------------------------------------


def test_migrations_are_numbered_one_by_one_and_the_version_is_the_last() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == MIGRATIONS[-1].version == 7


@pytest.mark.parametrize("opener", OPENERS)
def test_a_new_file_gets_every_table_and_one_version(tmp_path: Path, opener: str, fresh: dict[str, object]) -> None:
    path = tmp_path / "dw.db"
    OPENERS[opener](path)
    assert shape(path) == fresh
    assert fresh["version"] == [(SCHEMA_VERSION,)]
    assert "retrain_meta" not in fresh
    assert {"events", "ce_pending", "evaluations", "retrain_decisions", "retrain_decision_counts", "retrain_jobs", "retrain_state"} <= set(fresh)


def test_store_and_history_opened_on_one_file_in_either_order_agree(tmp_path: Path, fresh: dict[str, object]) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    open_store(a)
    open_history(a)
    open_history(b)
    open_store(b)
    assert shape(a) == fresh
    assert shape(b) == fresh


# -- every old versioning scheme upgrades ------------------------------------------------------------

OLD_FILES = {
    "store v1": (OLD_STORE_V1,),
    "store v2": (OLD_STORE_V2,),
    "history v1": (OLD_HISTORY_V1,),
    "history v2": (OLD_HISTORY_V2,),
    "store v1 + history v1": (OLD_STORE_V1, OLD_HISTORY_V1),
    "store v1 + history v2": (OLD_STORE_V1, OLD_HISTORY_V2),
    "store v2 + history v1": (OLD_STORE_V2, OLD_HISTORY_V1),
    "store v2 + history v2": (OLD_STORE_V2, OLD_HISTORY_V2),
}


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("old", OLD_FILES)
def test_an_old_file_upgrades_to_the_shape_of_a_new_one(tmp_path: Path, old: str, opener: str, fresh: dict[str, object]) -> None:
    path = old_file(tmp_path / "dw.db", *OLD_FILES[old])
    OPENERS[opener](path)
    assert shape(path) == fresh
    OPENERS[opener](path)  # opening again changes nothing
    assert shape(path) == fresh


@pytest.mark.parametrize("old", ["store v1", "store v2"])
def test_an_old_store_keeps_its_evaluations(tmp_path: Path, old: str) -> None:
    path = old_file(tmp_path / "dw.db", *OLD_FILES[old], evaluation=True)
    store = EventStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION
        (row,) = store.evaluations("m")
        assert row.last_rec == 99
        assert row.point is None  # stored before points were: a restart derives it (windows.py)
        store.add_evaluation(EvaluationRow("m", 1.0, 2.0, 1, 5, 51, 150, 99, {}, 4.0, ("count", 150)))
        with store.transaction():
            stored = store.append([EventRow("m", "e1", 1.0, 1.0, None, 2, "{}")])
        assert stored[0] is not None
    finally:
        store.close()


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("old", ["history v1", "store v1 + history v1", "store v2 + history v1"])
def test_a_version_1_history_gets_its_counts_carried_over_once(tmp_path: Path, old: str, opener: str) -> None:
    path = old_file(tmp_path / "dw.db", *OLD_FILES[old], decisions=True)
    OPENERS[opener](path)
    OPENERS[opener](path)  # a second open must not count again
    history = History(path)
    try:
        assert history.decision_counts() == {"wine": {"cooldown": 3, "no_drift": 5}}
        history.record(Decision("wine", 100.0, "window", "skip", "cooldown"), ModelState(), None, None)  # type: ignore[arg-type]
        assert history.decision_counts() == {"wine": {"cooldown": 4, "no_drift": 5}}
    finally:
        history.close()


@pytest.mark.parametrize("old", ["history v2", "store v2 + history v2"])
def test_a_version_2_history_keeps_its_counts_as_they_were(tmp_path: Path, old: str) -> None:
    path = old_file(tmp_path / "dw.db", *OLD_FILES[old], decisions=True, counts=True)
    open_store(path)
    history = History(path)
    try:
        assert history.decision_counts() == {"wine": {"cooldown": 3, "no_drift": 5}}
        assert len(history.recent_decisions("wine", limit=100)) == len(_DECISIONS)
    finally:
        history.close()


# -- a newer file is refused, clearly -----------------------------------------------------------------


@pytest.mark.parametrize("opener", OPENERS)
def test_a_file_from_a_newer_driftwatch_is_refused_and_left_alone(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "dw.db"
    open_store(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.close()
    before = shape(path)
    with pytest.raises(SchemaVersionError) as raised:
        OPENERS[opener](path)
    assert str(raised.value) == f"{path}: schema version {SCHEMA_VERSION + 1} is newer than this driftwatch knows ({SCHEMA_VERSION})"
    assert shape(path) == before


def test_the_refusal_is_what_serves_store_pre_check_catches() -> None:
    assert issubclass(SchemaVersionError, RuntimeError)  # what serve's store pre-check catches


@pytest.mark.parametrize("opener", OPENERS)
def test_retraining_tables_from_a_newer_old_scheme_are_refused(tmp_path: Path, opener: str) -> None:
    path = old_file(tmp_path / "dw.db", OLD_STORE_V2, OLD_HISTORY_V2.replace("'schema_version', '2'", "'schema_version', '3'"))
    with pytest.raises(SchemaVersionError, match="retraining tables have schema version 3"):
        OPENERS[opener](path)
    with sqlite3.connect(path) as db:  # rolled back: the old versioning is still there
        assert db.execute("SELECT value FROM retrain_meta").fetchall() == [("3",)]
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    db.close()


def test_a_failed_step_rolls_the_whole_upgrade_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_file(tmp_path / "dw.db", OLD_STORE_V1, OLD_HISTORY_V1, decisions=True)
    before = shape(path)
    broken = schema.Migration(3, "broken", MIGRATIONS[2].sql + ";\nCREATE TABLE events (x)")
    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS[:2], broken))
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        open_store(path)
    assert shape(path) == before


def test_a_version_6_file_gains_references_and_keeps_its_evaluations_judged_by_the_config(tmp_path: Path, fresh: dict[str, object]) -> None:
    """Evaluations stored before references were objects were judged against the config's reference (NULL)."""
    path = tmp_path / "dw.db"
    with sqlite3.connect(path) as db:
        for step in MIGRATIONS[:6]:
            db.executescript(step.sql)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (6)")
        db.execute(_EVALUATION)
    db.close()
    store = EventStore(path)
    try:
        (row,) = store.evaluations("m")
    finally:
        store.close()
    assert (shape(path), row.reference_id) == (fresh, None)
