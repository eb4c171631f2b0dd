"""The schema of driftwatch's SQLite file, and every migration of it, in one place.

One file holds the monitor's event log (`monitor/core/store.py`: events, CloudEvent halves, evaluations)
and the retraining history (`retrain/history.py`: decisions, their counts, jobs, policy state).
Both open it through `migrate()`, which brings any file to `SCHEMA_VERSION` by applying the
missing steps of `MIGRATIONS` in order, in one IMMEDIATE transaction (so two openers never
migrate at once), and refuses a file written by a newer driftwatch with `SchemaVersionError`.

The version is the single row of the `schema_version` table. Files written before this module
versioned their two halves apart: the event tables in `schema_version` (1 or 2) and the retraining
tables in `retrain_meta` (key `schema_version`, 1 or 2). `migrate()` adopts both: a version-1
retraining half gets its decision counts carried over (they were COUNT(*) over every decision),
`retrain_meta` is dropped, and the steps the file lacks are applied as usual. The retraining step
creates its tables only where missing, since an older History may have created them already.

To change the schema, append a step to `MIGRATIONS` (never edit a released one) and make the code
that reads the new shape cope with rows written before it. A step with `vacuum` changes a property
of the whole file (a pragma) that only `VACUUM` applies: it runs after the transaction (VACUUM
cannot run inside one), whenever the file lacks the property, so a crash between the two is
repaired at the next open.

Version 4 turns on `auto_vacuum=INCREMENTAL`, so the event store can hand pages freed by
retention back to the file system (`PRAGMA incremental_vacuum`) and the file shrinks to what
it holds. Every file is rebuilt once by `VACUUM` (WAL mode has
written the header before the first table, so not even a new file can simply set it): instant for
a new file, and for an old one it needs free disk space about the size of the file meanwhile.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AUTO_VACUUM", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "SchemaVersionError", "migrate", "schema_version"]


class SchemaVersionError(RuntimeError):
    """The file was written by a newer driftwatch (e.g. after a rollback to an older image)."""


@dataclass(frozen=True)
class Migration:
    version: int
    """The schema version the file has once this step is applied."""
    summary: str
    sql: str
    """`;`-separated statements (no `;` inside a statement)."""
    vacuum: bool = False
    """The step sets a file-wide pragma that `VACUUM` applies, after the transaction (see the module docstring)."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "event log: events, CloudEvent halves waiting for their partner, evaluations",
        """
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
        """,
    ),
    # A count window can end before its grid point (the record at it stamped too late or too far
    # ahead), so a restart that derived the point from last_rec would evaluate the same point again.
    # Rows from before keep NULL and fall back to that derivation.
    Migration(
        2,
        "evaluations: the grid point each evaluation ends at",
        """
        ALTER TABLE evaluations ADD COLUMN point_kind TEXT CHECK (point_kind IN ('count', 'time'));
        ALTER TABLE evaluations ADD COLUMN point REAL;
        """,
    ),
    Migration(
        3,
        "retraining: decisions, their counts, jobs and policy state (adopting tables an older History made)",
        """
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
        """,
    ),
    # Retention deletes rows; without auto-vacuum the freed pages stay in the file for ever, so a
    # file that once grew past `server.store.max_bytes` never came back under it.
    Migration(4, "file: incremental auto-vacuum (freed pages can be returned to the file system)", "", vacuum=True),
    # Labels arrive late: each joined label is stored with its record's ordinal and the prediction it
    # judges (parsed from the event once, at the join), so a window's realized performance is one
    # range read, however long ago its events were trimmed. `performance` holds one row per evaluated
    # window; `stale` marks the windows new labels landed in, re-evaluated by the evaluator.
    Migration(
        5,
        "ground truth: joined labels, label outcome counts, performance of each window",
        """
        CREATE TABLE labels (
            model TEXT NOT NULL,
            rec INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            label TEXT NOT NULL,
            prediction TEXT NOT NULL,
            predicted_at REAL NOT NULL,
            labelled_at REAL,
            received_at REAL NOT NULL,
            PRIMARY KEY (model, rec)
        );
        CREATE INDEX labels_event ON labels (model, event_id);
        CREATE INDEX labels_received ON labels (received_at);
        CREATE TABLE label_counts (
            model TEXT NOT NULL,
            outcome TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (model, outcome)
        );
        CREATE TABLE performance (
            model TEXT NOT NULL,
            first_rec INTEGER NOT NULL,
            last_rec INTEGER NOT NULL,
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            point_kind TEXT,
            point REAL,
            n_records INTEGER NOT NULL,
            n_labelled INTEGER NOT NULL,
            result TEXT NOT NULL,
            evaluated_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            stale INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (model, first_rec, last_rec)
        );
        CREATE INDEX performance_last ON performance (model, last_rec);
        CREATE INDEX performance_stale ON performance (model) WHERE stale = 1
        """,
    ),
    # A retraining run's MLflow run and the model versions registered from it, found by `retrain.mlflow`
    # after the run: beside the run's row, so every replica (PostgreSQL) and a restart see the same link.
    Migration(
        6,
        "retraining: each run's MLflow run and the model versions it produced",
        """
        CREATE TABLE IF NOT EXISTS retrain_links (
            job_name TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            model_versions TEXT NOT NULL,
            linked_at REAL NOT NULL
        );
        """,
    ),
    # References are versioned objects (`monitor/core/referencestore.py`, docs/references.md): each
    # stored once by content (its file beside the store), one current per (model, version), and each
    # evaluation keeps the reference it was judged against (NULL: the config's reference).
    Migration(
        7,
        "references: stored reference objects, the current one per model version, each evaluation's reference",
        """
        CREATE TABLE model_references (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL,
            version TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN ('file', 'mlflow')),
            origin TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            format TEXT NOT NULL CHECK (format IN ('csv', 'parquet')),
            rows INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            path TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (model, version, sha256)
        );
        CREATE TABLE reference_current (
            model TEXT NOT NULL,
            version TEXT NOT NULL DEFAULT '',
            reference_id INTEGER NOT NULL REFERENCES model_references (id),
            from_rec INTEGER NOT NULL,
            set_at REAL NOT NULL,
            PRIMARY KEY (model, version)
        );
        ALTER TABLE evaluations ADD COLUMN reference_id INTEGER
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
_RETRAIN_TABLES = MIGRATIONS[2]
AUTO_VACUUM = "INCREMENTAL"
_INCREMENTAL = 2
"""`PRAGMA auto_vacuum`'s answer for INCREMENTAL."""

_LEGACY_RETRAIN_VERSION = 2
"""The newest version `retrain_meta` ever held (before this module took over the versioning)."""


def migrate(db: sqlite3.Connection, path: str | Path) -> int:
    """Bring the file behind `db` (a connection in autocommit mode) to `SCHEMA_VERSION`; the
    version it had (0 for a new file). `path` is only for messages."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _migrate(db, path)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if any(step.vacuum for step in MIGRATIONS) and db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
        db.execute(f"PRAGMA auto_vacuum={AUTO_VACUUM}")
        db.execute("VACUUM")
    return found


def schema_version(db: sqlite3.Connection) -> int:
    """The version of a migrated file."""
    return int(db.execute("SELECT version FROM schema_version").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: str | Path) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(f"{path}: schema version {current} is newer than this driftwatch knows ({SCHEMA_VERSION})")
    _adopt_legacy_retrain_tables(db, path)
    for step in MIGRATIONS[current:]:
        _apply(db, step)
    if row is None:
        db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    elif current != SCHEMA_VERSION:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    return current


def _apply(db: sqlite3.Connection, step: Migration) -> None:
    for statement in filter(str.strip, step.sql.split(";")):
        db.execute(statement)


def _adopt_legacy_retrain_tables(db: sqlite3.Connection, path: str | Path) -> None:
    """Fold the retraining tables' own versioning (`retrain_meta`, 1 or 2) into the file's."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'retrain_meta'").fetchone() is None:
        return
    row = db.execute("SELECT value FROM retrain_meta WHERE key = 'schema_version'").fetchone()
    legacy = int(row[0]) if row else _LEGACY_RETRAIN_VERSION
    if legacy > _LEGACY_RETRAIN_VERSION:
        raise SchemaVersionError(
            f"{path}: retraining tables have schema version {legacy}, newer than this driftwatch knows ({_LEGACY_RETRAIN_VERSION})"
        )
    if legacy == 1:  # no counts table yet: counts were COUNT(*) over every decision, carry them over
        _apply(db, _RETRAIN_TABLES)  # creates only what is missing: the counts table
        db.execute(
            "INSERT INTO retrain_decision_counts (model, action, reason, n)"
            " SELECT model, action, reason, COUNT(*) FROM retrain_decisions GROUP BY model, action, reason"
        )
    db.execute("DROP TABLE retrain_meta")
