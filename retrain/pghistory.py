"""The retraining history on the fleet's PostgreSQL: `History` with another connection and schema.

Every query is `History`'s own (one implementation, written in the dialect both databases share);
this module only adds the connection (`monitor.core.pgstore.PgConnection`: reconnecting once after
a lost connection, then `PgUnavailable`), the tables, and what fleet mode needs beside
them: the evaluation cursor of the leaseholder (`dw_retrain_cursor`, advanced in the same
transaction as the decision an evaluation led to) and the alerts any replica received for the
holder to decide (`dw_retrain_alerts`, marked done in the same transaction as their decision).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import dict_row

from monitor.core.pgstore import PgConnection
from retrain.history import DECISIONS_KEPT, Cursor, Db, History, T
from retrain.policy import Decision

__all__ = ["AlreadyDecided", "LeaseLost", "PgHistory", "QueuedAlert"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retrain_decisions (
    id bigserial PRIMARY KEY,
    model text NOT NULL,
    at double precision NOT NULL,
    source text NOT NULL,
    action text NOT NULL,
    reason text NOT NULL,
    fingerprint text,
    job_name text,
    trigger text
);
CREATE INDEX IF NOT EXISTS retrain_decisions_model ON retrain_decisions (model, id);
CREATE TABLE IF NOT EXISTS retrain_decision_counts (
    model text NOT NULL,
    action text NOT NULL,
    reason text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (model, action, reason)
);
CREATE TABLE IF NOT EXISTS retrain_jobs (
    name text PRIMARY KEY,
    model text NOT NULL,
    fingerprint text NOT NULL UNIQUE,
    launcher text NOT NULL,
    namespace text,
    state text NOT NULL,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    exit_code integer,
    pid integer,
    pid_created double precision,
    log_path text,
    detail text,
    run text NOT NULL
);
CREATE INDEX IF NOT EXISTS retrain_jobs_state ON retrain_jobs (state, model);
CREATE TABLE IF NOT EXISTS retrain_state (model text PRIMARY KEY, state text NOT NULL);
CREATE TABLE IF NOT EXISTS retrain_links (
    job_name text PRIMARY KEY,
    run_id text NOT NULL,
    model_versions text NOT NULL,
    linked_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS dw_retrain_cursor (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_evaluation bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS dw_retrain_alerts (
    id bigserial PRIMARY KEY,
    model text NOT NULL,
    alert_fingerprint text NOT NULL,
    starts_at double precision NOT NULL,
    alertname text NOT NULL,
    report_url text,
    received_at double precision NOT NULL,
    replica text NOT NULL,
    done_at double precision,
    UNIQUE (model, alert_fingerprint, starts_at)
);
"""


class LeaseLost(RuntimeError):
    """A write only the leaseholder may make was attempted without the lease (rolled back)."""


class AlreadyDecided(RuntimeError):
    """The evaluation or alert a decision was for has a recorded decision already (rolled back): a
    retried transaction whose first commit did land, or a second holder."""


class QueuedAlert(NamedTuple):
    """An alert some replica received that the leaseholder has not decided yet."""

    id: int
    model: str
    alert_fingerprint: str
    starts_at: float
    alertname: str
    report_url: str | None


class _Pg:
    """History's connection: a `PgConnection` (rows as dicts) whose transactions see `_Dialect`."""

    def __init__(self, dsn: str, application_name: str, connect_timeout: float) -> None:
        self._conn = PgConnection(dsn, application_name=application_name, setup=_create_schema,
                                  connect_timeout=connect_timeout, row_factory=dict_row)

    def run(self, work: Callable[[Db], T], *, write: bool) -> T:
        return self._conn.run(lambda conn: work(_Dialect(conn)))

    def close(self) -> None:
        self._conn.close()


def _create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SCHEMA)


class _Dialect:
    """History's `?` placeholders as psycopg's `%s` (History's SQL has no other `?` or `%`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Any = ()) -> Cursor:
        return self._conn.execute(sql.replace("?", "%s"), tuple(args))  # type: ignore[arg-type, return-value]


class PgHistory(History):
    """`History` on PostgreSQL, shared by the replicas of a fleet.

    `fence(db)`, when set, runs inside every `record` transaction and raises `LeaseLost` unless this
    replica holds the retraining lease: a replica that lost it cannot record (or so launch) anything.
    Inside `advancing(cursor=..., alert=...)` a recorded decision also moves the evaluation cursor
    to that row and marks that alert done, in the same transaction.
    """

    def __init__(self, dsn: str, *, replica: str = "", connect_timeout: float = 5.0,
                 keep_decisions: int = DECISIONS_KEPT, fence: Callable[[Db], None] | None = None) -> None:
        self._app_name = f"driftwatch-retrain {replica}".strip()
        self._connect_timeout = connect_timeout
        self.replica = replica
        self.fence = fence
        self._advance = threading.local()
        super().__init__(dsn, keep_decisions=keep_decisions)

    def _open(self, path: str | Path) -> _Pg:
        return _Pg(str(path), self._app_name, self._connect_timeout)

    # -- the leaseholder's progress -----------------------------------------------------------------

    def advancing(self, *, cursor: int | None = None, alert: int | None = None) -> _Advancing:
        return _Advancing(self._advance, cursor, alert)

    def _recorded(self, db: Db, decision: Decision) -> None:
        if self.fence is not None:
            self.fence(db)
        _advance(db, getattr(self._advance, "cursor", None), getattr(self._advance, "alert", None), decision.at,
                 strict=True)

    def advance(self, *, cursor: int | None = None, alert: int | None = None, at: float) -> None:
        """Move the cursor / close the alert without a decision (nothing was recorded for them)."""

        def work(db: Db) -> None:
            if self.fence is not None:
                self.fence(db)
            _advance(db, cursor, alert, at)

        self._write(work)

    def start_cursor(self) -> None:
        """The first time retraining runs on this database, it starts after the newest evaluation
        stored (as the embedded controller hears only windows evaluated from its start on); the
        evaluations table must exist (`PgStore` creates it)."""
        self._write(lambda db: db.execute(
            "INSERT INTO dw_retrain_cursor (one, last_evaluation) SELECT true, COALESCE(MAX(id), 0)"
            " FROM dw_evaluations ON CONFLICT DO NOTHING"))

    def cursor(self) -> int:
        """Id of the newest evaluation the leaseholder has decided on."""
        return int(self._rows("SELECT last_evaluation FROM dw_retrain_cursor")[0]["last_evaluation"])

    # -- alerts received by any replica ------------------------------------------------------------

    def queue_alert(self, model: str, alert_fingerprint: str, starts_at: float, alertname: str,
                    report_url: str | None, at: float) -> int:
        """Store a firing alert for the leaseholder (once per fingerprint and start); its id."""

        def work(db: Db) -> int:
            db.execute(
                "INSERT INTO dw_retrain_alerts (model, alert_fingerprint, starts_at, alertname, report_url,"
                " received_at, replica) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (model, alert_fingerprint, starts_at, alertname, report_url, at, self.replica),
            )
            row = db.execute("SELECT id FROM dw_retrain_alerts WHERE model = ? AND alert_fingerprint = ?"
                             " AND starts_at = ?", (model, alert_fingerprint, starts_at)).fetchone()
            return int(row["id"])

        return self._write(work)

    def queued_alerts(self, limit: int = 100) -> list[QueuedAlert]:
        rows = self._rows("SELECT id, model, alert_fingerprint, starts_at, alertname, report_url FROM dw_retrain_alerts"
                          " WHERE done_at IS NULL ORDER BY id LIMIT ?", (limit,))
        return [QueuedAlert(r["id"], r["model"], r["alert_fingerprint"], r["starts_at"], r["alertname"], r["report_url"])
                for r in rows]


class _Advancing:
    def __init__(self, local: threading.local, cursor: int | None, alert: int | None) -> None:
        self._local, self._cursor, self._alert = local, cursor, alert

    def __enter__(self) -> None:
        self._local.cursor, self._local.alert = self._cursor, self._alert

    def __exit__(self, *_: object) -> None:
        self._local.cursor = self._local.alert = None


def _advance(db: Db, cursor: int | None, alert: int | None, at: float, *, strict: bool = False) -> None:
    """Move the cursor to `cursor` / mark `alert` done; `strict`: `AlreadyDecided` if either was already."""
    if cursor is not None:
        moved = db.execute("UPDATE dw_retrain_cursor SET last_evaluation = ? WHERE last_evaluation < ?",
                           (cursor, cursor)).rowcount
        if strict and moved == 0:
            raise AlreadyDecided(f"evaluation {cursor} was decided already")
    if alert is not None:
        closed = db.execute("UPDATE dw_retrain_alerts SET done_at = ? WHERE id = ? AND done_at IS NULL",
                            (at, alert)).rowcount
        if strict and closed == 0:
            raise AlreadyDecided(f"alert {alert} was decided already")
