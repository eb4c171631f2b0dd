"""Persistence of retraining decisions, runs and policy state, in the monitor's SQLite file.

The store is the only state a restart needs: a decision, the policy state it produced and (for a
launch) the pending run are written in ONE transaction before anything is launched, so a crash at
any point leaves either nothing or a pending run that the restarted controller launches again
under the same deterministic name (which the API server deduplicates). The tables are created and
migrated by `monitor/core/schema.py`, which owns the whole file's schema.

The SQL is written once, in the dialect SQLite and PostgreSQL share (`?` placeholders are turned
into psycopg's `%s` by the PostgreSQL backend): `retrain.pghistory.PgHistory` is this class on the
fleet's shared database, with only the connection and the schema differing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from monitor.core.schema import migrate
from retrain.policy import Decision, ModelState
from retrain.run import Run

DECISIONS_KEPT = 10_000
"""Decisions listed per model (the newest). One is recorded for every evaluated window, so without a
cap the table would grow for ever; their counts (the metrics) live apart and are never trimmed."""
ACTIVE_STATES = ("pending", "running")
OUTCOMES = ("succeeded", "failed", "deadline_exceeded")

T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """What History's SQL runs on inside one transaction: rows come back as mappings by column name."""

    def execute(self, sql: str, args: Any = ()) -> Cursor: ...


class Backend(Protocol):
    def run(self, work: Callable[[Db], T], *, write: bool) -> T: ...

    def close(self) -> None: ...



@dataclass(frozen=True)
class MlflowLink:
    run_id: str
    model_versions: tuple[tuple[str, str], ...]
    """(registered model name, version) of each version registered from the run."""
    linked_at: float

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "linked_at": self.linked_at,
                "model_versions": [{"name": n, "version": v} for n, v in self.model_versions]}


@dataclass(frozen=True)
class JobRecord:
    name: str
    model: str
    fingerprint: str
    launcher: str
    namespace: str | None
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    pid: int | None
    pid_created: float | None
    log_path: str | None
    detail: str | None
    run: Run
    mlflow: MlflowLink | None = None
    """The MLflow run it was found to be, and the model versions registered from that run (retrain.mlflow)."""

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    model: str
    at: float
    source: str
    action: str
    reason: str
    fingerprint: str | None
    job_name: str | None
    trigger: dict[str, Any] | None


class History:
    """One connection, serialized by a lock: retraining writes are rare and tiny."""

    def __init__(self, path: str | Path, *, keep_decisions: int = DECISIONS_KEPT) -> None:
        self._keep = keep_decisions
        self._backend = self._open(path)

    def _open(self, path: str | Path) -> Backend:
        return _Sqlite(path)

    def close(self) -> None:
        self._backend.close()

    def _write(self, work: Callable[[Db], T]) -> T:
        return self._backend.run(work, write=True)

    def _query(self, work: Callable[[Db], T]) -> T:
        return self._backend.run(work, write=False)

    def _recorded(self, db: Db, decision: Decision) -> None:
        """Hook run inside `record`'s transaction, after its writes (PgHistory fences and advances its cursor)."""

    # -- writes ---------------------------------------------------------------------------------

    def record(self, decision: Decision, state: ModelState, run: Run | None, launcher: str | None,
               namespace: str | None = None) -> None:
        """Persist a decision, the model's new policy state and (for a launch) its pending run, atomically."""

        def work(db: Db) -> None:
            db.execute(
                "INSERT INTO retrain_decisions (model, at, source, action, reason, fingerprint, job_name, trigger)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision.model, decision.at, decision.source, decision.action, decision.reason,
                    decision.fingerprint, run.name if run else None,
                    json.dumps(decision.trigger.to_json()) if decision.trigger else None,
                ),
            )
            db.execute(
                "INSERT INTO retrain_decision_counts (model, action, reason, n) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (model, action, reason) DO UPDATE SET n = retrain_decision_counts.n + 1",
                (decision.model, decision.action, decision.reason),
            )
            db.execute(  # the newest `keep_decisions` stay listed (an index range: ~1 ms at 10k)
                "DELETE FROM retrain_decisions WHERE model = ? AND id <= (SELECT id FROM retrain_decisions"
                " WHERE model = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (decision.model, decision.model, self._keep),
            )
            db.execute(
                "INSERT INTO retrain_state (model, state) VALUES (?, ?)"
                " ON CONFLICT (model) DO UPDATE SET state = excluded.state",
                (decision.model, json.dumps(state.to_json())),
            )
            if run is not None:
                db.execute(
                    "INSERT INTO retrain_jobs (name, model, fingerprint, launcher, namespace, state, created_at, run)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (run.name, run.model, run.fingerprint, launcher, namespace, decision.at, json.dumps(run.to_json())),
                )
            self._recorded(db, decision)

        self._write(work)

    def adopt(self, run: Run, launcher: str, namespace: str | None, at: float) -> bool:
        """Record a running job found in the cluster that this store did not know (another replica's)."""
        return self._write(lambda db: db.execute(
            "INSERT INTO retrain_jobs"
            " (name, model, fingerprint, launcher, namespace, state, created_at, started_at, detail, run)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, ?, 'adopted at start-up', ?) ON CONFLICT DO NOTHING",
            (run.name, run.model, run.fingerprint, launcher, namespace, at, at, json.dumps(run.to_json())),
        ).rowcount == 1)

    def mark_running(self, name: str, at: float, *, pid: int | None = None, pid_created: float | None = None,
                     log_path: str | None = None, detail: str | None = None) -> None:
        self._write(lambda db: db.execute(
            "UPDATE retrain_jobs SET state = CASE state WHEN 'pending' THEN 'running' ELSE state END,"
            " started_at = COALESCE(started_at, ?), pid = COALESCE(?, pid), pid_created = COALESCE(?, pid_created),"
            " log_path = COALESCE(?, log_path), detail = COALESCE(?, detail)"
            " WHERE name = ?",
            (at, pid, pid_created, log_path, detail, name),
        ))

    def finish(self, name: str, outcome: str, at: float, *, exit_code: int | None = None,
               detail: str | None = None) -> bool:
        """Record a terminal outcome once; later reports of the same job are ignored (returns False)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        return self._write(lambda db: db.execute(
            "UPDATE retrain_jobs SET state = ?, finished_at = ?, exit_code = COALESCE(?, exit_code),"
            " started_at = COALESCE(started_at, ?), detail = COALESCE(?, detail)"
            " WHERE name = ? AND state IN ('pending', 'running')",
            (outcome, at, exit_code, at, detail, name),
        ).rowcount == 1)

    def link(self, name: str, link: MlflowLink) -> None:
        """Keep a run's MLflow link (replacing an earlier one: versions registered later are added)."""
        self._write(lambda db: db.execute(
            "INSERT INTO retrain_links (job_name, run_id, model_versions, linked_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_name) DO UPDATE SET run_id = excluded.run_id,"
            " model_versions = excluded.model_versions, linked_at = excluded.linked_at",
            (name, link.run_id, json.dumps([list(v) for v in link.model_versions]), link.linked_at),
        ))

    # -- reads ----------------------------------------------------------------------------------

    def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        return self._query(lambda db: db.execute(sql, args).fetchall())

    def states(self) -> dict[str, ModelState]:
        rows = self._rows("SELECT model, state FROM retrain_state")
        return {r["model"]: ModelState.from_json(json.loads(r["state"])) for r in rows}

    def has_fingerprint(self, fingerprint: str) -> bool:
        return bool(self._rows("SELECT 1 FROM retrain_jobs WHERE fingerprint = ?", (fingerprint,)))

    def active_counts(self) -> dict[str, int]:
        rows = self._rows(
            "SELECT model, COUNT(*) AS n FROM retrain_jobs WHERE state IN ('pending', 'running') GROUP BY model"
        )
        return {r["model"]: int(r["n"]) for r in rows}

    def job(self, name: str) -> JobRecord | None:
        rows = self._rows(_JOBS + " WHERE j.name = ?", (name,))
        return _job(rows[0]) if rows else None

    def jobs(self, *, model: str | None = None, active_only: bool = False) -> list[JobRecord]:
        sql, args = _JOBS + " WHERE 1=1", []
        if model is not None:
            sql += " AND j.model = ?"
            args.append(model)
        if active_only:
            sql += " AND j.state IN ('pending', 'running')"
        return [_job(r) for r in self._rows(sql + " ORDER BY j.created_at, j.name", args)]

    def recent_decisions(self, model: str, limit: int = 50, *, triggered_only: bool = False) -> list[DecisionRecord]:
        """Newest first; `triggered_only` keeps launches and gate skips (what reports show)."""
        sql = "SELECT * FROM retrain_decisions WHERE model = ?"
        if triggered_only:
            sql += " AND action != 'none'"
        rows = self._rows(sql + " ORDER BY id DESC LIMIT ?", (model, limit))
        return [
            DecisionRecord(
                id=r["id"], model=r["model"], at=r["at"], source=r["source"], action=r["action"],
                reason=r["reason"], fingerprint=r["fingerprint"], job_name=r["job_name"],
                trigger=json.loads(r["trigger"]) if r["trigger"] else None,
            )
            for r in rows
        ]

    def decision_counts(self) -> dict[str, dict[str, int]]:
        """{model: {reason: count}} over all decisions ever recorded (also those no longer listed)."""
        out: dict[str, dict[str, int]] = {}
        for r in self._rows("SELECT model, reason, SUM(n) AS n FROM retrain_decision_counts GROUP BY model, reason"):
            out.setdefault(r["model"], {})[r["reason"]] = int(r["n"])
        return out

    def job_counts(self) -> dict[str, dict[str, int]]:
        """{model: {state: count}} over all runs ever recorded."""
        out: dict[str, dict[str, int]] = {}
        for r in self._rows("SELECT model, state, COUNT(*) AS n FROM retrain_jobs GROUP BY model, state"):
            out.setdefault(r["model"], {})[r["state"]] = int(r["n"])
        return out

    def last_triggers(self) -> dict[str, float]:
        out = {}
        for r in self._rows("SELECT model, state FROM retrain_state"):
            last = json.loads(r["state"]).get("last_trigger")
            if last is not None:
                out[r["model"]] = float(last)
        return out


class _Sqlite:
    """The monitor's SQLite file: one connection, serialized by a lock.

    Writes begin IMMEDIATE (the write lock up front, so two writers never deadlock on an upgrade);
    reads begin DEFERRED: a snapshot that in WAL mode never waits for the monitor's ingest
    writer, so a scrape cannot time out behind a long commit."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db, path)  # SchemaVersionError for a file from a newer driftwatch

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def run(self, work: Callable[[Db], T], *, write: bool) -> T:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                out = work(self._db)  # type: ignore[arg-type]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out


_JOBS = ("SELECT j.*, l.run_id AS link_run_id, l.model_versions AS link_versions, l.linked_at AS link_at"
         " FROM retrain_jobs j LEFT JOIN retrain_links l ON l.job_name = j.name")


def _job(row: Mapping[str, Any]) -> JobRecord:
    link = None if row["link_run_id"] is None else MlflowLink(
        row["link_run_id"], tuple((str(n), str(v)) for n, v in json.loads(row["link_versions"])), row["link_at"])
    return JobRecord(
        name=row["name"], model=row["model"], fingerprint=row["fingerprint"], launcher=row["launcher"],
        namespace=row["namespace"], state=row["state"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], exit_code=row["exit_code"], pid=row["pid"], pid_created=row["pid_created"],
        log_path=row["log_path"], detail=row["detail"], run=Run.from_json(json.loads(row["run"])), mlflow=link,
    )
