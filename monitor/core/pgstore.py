"""Shared state of fleet mode in PostgreSQL (psycopg 3): evaluations, replay checkpoints, the lease.

One evaluation per (model, grid point): the unique key makes the fleet evaluate every point once
even when two replicas briefly both hold a partition during a rebalance (the second insert is
refused, and that replica neither publishes nor notifies). Each evaluation is stored in the same
transaction as its model's checkpoint: the Kafka offset and record ordinal its window replays from
(docs/scale-out.md). Every call reconnects once after a lost connection (a database restart), so
a replica recovers by itself; a second failure is raised to the caller, which retries later.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.core.labelstore import PerformanceRow
from monitor.core.store import EvaluationRow

if TYPE_CHECKING:  # imported where a connection is made: the embedded monitor never loads psycopg
    import psycopg

__all__ = ["Checkpoint", "LabelledEvent", "PgConnection", "PgStore", "PgUnavailable", "Prediction"]

log = logging.getLogger("driftwatch.pgstore")

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS dw_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS dw_evaluations (
    id bigserial PRIMARY KEY,
    model text NOT NULL,
    point_kind text NOT NULL CHECK (point_kind IN ('count', 'time')),
    point double precision NOT NULL,
    window_start double precision NOT NULL,
    window_end double precision NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    first_rec bigint NOT NULL,
    last_rec bigint NOT NULL,
    n_records integer NOT NULL,
    result jsonb NOT NULL,
    evaluated_at double precision NOT NULL,
    replica text NOT NULL,
    partition integer,
    first_base bigint,
    UNIQUE (model, point_kind, point)
);
CREATE INDEX IF NOT EXISTS dw_evaluations_model ON dw_evaluations (model, id);
CREATE TABLE IF NOT EXISTS dw_checkpoints (
    model text PRIMARY KEY,
    topic text NOT NULL,
    partition integer NOT NULL,
    replay_offset bigint NOT NULL,
    replay_rec bigint NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS dw_partitions (
    topic text NOT NULL,
    partition integer NOT NULL,
    replay_offset bigint NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""
_MIGRATE_V2 = """
ALTER TABLE dw_evaluations ADD COLUMN IF NOT EXISTS performance jsonb;
ALTER TABLE dw_evaluations ADD COLUMN IF NOT EXISTS n_labelled integer;
ALTER TABLE dw_evaluations ADD COLUMN IF NOT EXISTS perf_updated_at double precision;
ALTER TABLE dw_evaluations ADD COLUMN IF NOT EXISTS perf_stale boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS dw_evaluations_stale ON dw_evaluations (model, last_rec) WHERE perf_stale;
CREATE TABLE IF NOT EXISTS dw_predictions (
    model text NOT NULL,
    event_id text NOT NULL,
    ts double precision NOT NULL,
    first_rec bigint,
    last_rec bigint,
    rejected text,
    predictions jsonb NOT NULL,
    PRIMARY KEY (model, event_id)
);
CREATE INDEX IF NOT EXISTS dw_predictions_ts ON dw_predictions (model, ts);
CREATE TABLE IF NOT EXISTS dw_labels (
    model text NOT NULL,
    event_id text NOT NULL,
    first_rec bigint NOT NULL,
    last_rec bigint NOT NULL,
    items jsonb NOT NULL,
    predicted_at double precision NOT NULL,
    labelled_at double precision,
    received_at double precision NOT NULL,
    PRIMARY KEY (model, event_id)
);
CREATE INDEX IF NOT EXISTS dw_labels_recs ON dw_labels (model, last_rec);
CREATE TABLE IF NOT EXISTS dw_label_counts (
    model text NOT NULL,
    outcome text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (model, outcome)
);
CREATE TABLE IF NOT EXISTS dw_label_batches (
    batch_id text PRIMARY KEY,
    model text NOT NULL,
    received_at double precision NOT NULL
);
"""
"""Version 2 (ground truth in fleet mode): each evaluation's performance beside it, the predictions
labels join to, the labels, their outcome counts and the label batches already processed. Every
statement is idempotent, so it brings a version-1 database (or a new one) to version 2."""
_COLUMNS = "model, window_start, window_end, first_seq, last_seq, first_rec, last_rec, n_records, result, evaluated_at, point_kind, point"
_LOCK_SCHEMA = 0x64770001
"""Advisory lock key serializing schema creation across replicas starting together."""

T = TypeVar("T")


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be reached (after one reconnect); the caller retries later."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a model's window replays from: the first Kafka offset it still needs, and the record
    ordinal before that offset's first record (ordinals are counted on from there)."""

    model: str
    partition: int
    replay_offset: int
    replay_rec: int


@dataclass(frozen=True, slots=True)
class Prediction:
    """A captured event of a model with a `performance` section, as labels join to it: its records'
    ordinals (None when it was rejected, with the reason) and each record's prediction
    (`{"prediction": v, "probabilities": [...] | None}`)."""

    model: str
    event_id: str
    ts: float
    first_rec: int | None
    last_rec: int | None
    rejected: str | None
    predictions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    """An event's labels as stored: one item per record, `{"label", "prediction", "probabilities"}`."""

    model: str
    event_id: str
    first_rec: int
    last_rec: int
    items: list[dict[str, Any]]
    predicted_at: float
    labelled_at: float | None
    received_at: float


class PgConnection:
    """One connection, serialized by a lock (calls are short), opened lazily and reconnected once
    after a loss: a database restart is ridden out; a second failure is `PgUnavailable`.

    `setup` runs in the first transaction of every new connection (create the tables), under a
    transaction-level advisory lock so replicas starting together do not race on the DDL."""

    def __init__(self, dsn: str, *, application_name: str, setup: Callable[[psycopg.Connection[Any]], None],
                 connect_timeout: float = 5.0, row_factory: Any = None) -> None:
        self._dsn, self._name, self._setup = dsn, application_name, setup
        self._timeout, self._row_factory = connect_timeout, row_factory
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        extra = {"row_factory": self._row_factory} if self._row_factory is not None else {}
        conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=max(1, math.ceil(self._timeout)),
                               application_name=self._name, **extra)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_SCHEMA,))
            self._setup(conn)
        return conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` in one transaction, reconnecting once if the connection was lost."""
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect()
                    with self._conn.transaction():
                        return work(self._conn)
                except psycopg.OperationalError as exc:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise PgUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}") from None
                    log.warning("postgres_reconnect application=%s error=%s", self._name, type(exc).__name__)
            raise AssertionError("unreachable")


def _create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SCHEMA)
    row = conn.execute("SELECT max(version) FROM dw_schema").fetchone()
    version = row[0] if row is not None and row[0] is not None else None
    if version is not None and version > SCHEMA_VERSION:
        raise RuntimeError(f"the database's driftwatch schema is version {version}, newer than this version's "
                           f"{SCHEMA_VERSION}: upgrade the replicas")
    conn.execute(_MIGRATE_V2)
    if version is None:
        conn.execute("INSERT INTO dw_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
    elif version < SCHEMA_VERSION:
        conn.execute("UPDATE dw_schema SET version = %s", (SCHEMA_VERSION,))
        log.info("postgres_schema_migrated from=%d to=%d", version, SCHEMA_VERSION)


class PgStore:
    """The fleet's evaluations, checkpoints and lease over one `PgConnection`."""

    def __init__(self, dsn: str, *, replica: str = "", connect_timeout: float = 5.0) -> None:
        self.replica = replica
        self._conn = PgConnection(dsn, application_name=f"driftwatch {replica}".strip(), setup=_create_schema,
                                  connect_timeout=connect_timeout)
        self._run = self._conn.run

    def close(self) -> None:
        self._conn.close()

    # -- evaluations ---------------------------------------------------------------------------------

    def add_evaluation(self, row: EvaluationRow, checkpoints: Iterable[Checkpoint], topic: str, *,
                       partition: int | None = None, first_base: int | None = None,
                       performance: PerformanceRow | None = None) -> bool:
        """Store an evaluation with its model's checkpoint; False (nothing stored) when another replica
        already evaluated this grid point. `partition` and `first_base` (the ordinal before the first
        record of the event at offset `first_seq`) let a report re-read the window's records from Kafka."""
        assert row.point is not None, "fleet evaluations always have a grid point"
        kind, point = row.point
        marks = list(checkpoints)

        def work(conn: psycopg.Connection[Any]) -> bool:
            inserted = conn.execute(
                f"INSERT INTO dw_evaluations ({_COLUMNS}, replica, partition, first_base)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (model, point_kind, point) DO NOTHING RETURNING id",
                (row.model, row.window_start, row.window_end, row.first_seq, row.last_seq, row.first_rec, row.last_rec,
                 row.n_records, json.dumps(row.result, allow_nan=True), row.evaluated_at, kind, point, self.replica,
                 partition, first_base),
            ).fetchone()
            if inserted is None:
                return False
            if performance is not None:
                _put_performance(conn, performance, inserted[0])
            _put_checkpoints(conn, marks, topic, row.evaluated_at)
            return True

        return self._run(work)

    def evaluations(self, model: str, limit: int = 100) -> list[EvaluationRow]:
        """The model's latest evaluations, newest first."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM dw_evaluations WHERE model = %s ORDER BY id DESC LIMIT %s", (model, limit)
        ).fetchall())
        return [_evaluation(r) for r in rows]

    def latest_evaluations(self, models: Sequence[str]) -> dict[str, EvaluationRow]:
        """Each of these models' newest evaluation, in one query (models never evaluated are absent)."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT DISTINCT ON (model) {_COLUMNS} FROM dw_evaluations WHERE model = ANY(%s) ORDER BY model, id DESC",
            (list(models),)).fetchall())
        return {r[0]: _evaluation(r) for r in rows}

    def all_evaluations(self, models: Sequence[str]) -> dict[str, list[EvaluationRow]]:
        """Every stored evaluation of these models, oldest first (tests, `driftwatch` tooling)."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM dw_evaluations WHERE model = ANY(%s) ORDER BY id", (list(models),)
        ).fetchall())
        out: dict[str, list[EvaluationRow]] = {m: [] for m in models}
        for r in rows:
            out[r[0]].append(_evaluation(r))
        return out

    def evaluations_after(self, after_id: int, limit: int = 500) -> list[tuple[int, EvaluationRow]]:
        """(id, evaluation) of the stored evaluations with an id above `after_id`, in id order, that
        can no longer be preceded by another: the retraining leaseholder's feed (retrain/fleet.py).

        Ids are drawn when an insert starts, so one may commit after a higher one. A SHARE lock on
        the table waits for the inserts in flight (and holds new ones back for the instant it takes
        to read the newest id); every row up to that id is then committed or never will be, and
        the gaps below it are final (a refused or rolled-back insert), never skipped by mistake."""

        def horizon(conn: psycopg.Connection[Any]) -> int:
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute("LOCK TABLE dw_evaluations IN SHARE MODE")
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM dw_evaluations").fetchone()[0])  # type: ignore[index]

        upto = self._run(horizon)
        if upto <= after_id:
            return []
        rows = self._run(lambda conn: conn.execute(
            f"SELECT id, {_COLUMNS} FROM dw_evaluations WHERE id > %s AND id <= %s ORDER BY id LIMIT %s",
            (after_id, upto, limit),
        ).fetchall())
        return [(r[0], _evaluation(r[1:])) for r in rows]

    def evaluation_at(self, model: str, last_rec: int) -> EvaluationRow | None:
        """The newest evaluation of the window ending at record `last_rec` (EventStore's, for reports)."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM dw_evaluations WHERE model = %s AND last_rec = %s ORDER BY id DESC LIMIT 1",
            (model, last_rec)).fetchall())
        return _evaluation(rows[0]) if rows else None

    def window_evaluations(self, model: str, limit: int, up_to: int | None = None) -> list[EvaluationRow]:
        """The latest `limit` windows ending at or before record `up_to`, newest first, each window's
        newest evaluation only (EventStore's, for reports)."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM dw_evaluations WHERE id IN ("
            " SELECT MAX(id) FROM dw_evaluations WHERE model = %s AND last_rec <= %s"
            " GROUP BY last_rec ORDER BY last_rec DESC LIMIT %s) ORDER BY last_rec DESC",
            (model, up_to if up_to is not None else 2**63 - 1, limit)).fetchall())
        return [_evaluation(r) for r in rows]

    def window_source(self, model: str, last_rec: int) -> tuple[int, int] | None:
        """(partition, ordinal before the first record of the event at `first_seq`) of that window: where
        its events are in Kafka and how to number their records again; None if not recorded."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT partition, first_base FROM dw_evaluations WHERE model = %s AND last_rec = %s"
            " AND partition IS NOT NULL ORDER BY id DESC LIMIT 1", (model, last_rec)).fetchall())
        return (rows[0][0], rows[0][1]) if rows else None

    def evaluated_points(self, model: str) -> tuple[dict[str, float], int]:
        """The newest evaluated point of each grid and the newest evaluated ordinal (as EventStore's)."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT point_kind, MAX(point), MAX(last_rec) FROM dw_evaluations WHERE model = %s GROUP BY point_kind", (model,)
        ).fetchall())
        return {kind: point for kind, point, _ in rows}, max((rec for *_, rec in rows), default=0)

    def trim_evaluations(self, models: Sequence[str], older_than: float) -> int:
        """Delete these models' evaluations made before `older_than`, except each grid's newest (a
        replica that takes a model over resumes from it); the number deleted."""
        return self._run(lambda conn: conn.execute(
            "DELETE FROM dw_evaluations e WHERE e.model = ANY(%s) AND e.evaluated_at < %s AND e.id NOT IN ("
            " SELECT MAX(id) FROM dw_evaluations WHERE model = ANY(%s) GROUP BY model, point_kind)",
            (list(models), older_than, list(models))).rowcount)

    # -- performance of windows ---------------------------------------------------------------------

    def performance_history(self, model: str, limit: int = 100, up_to: int | None = None) -> list[PerformanceRow]:
        """The model's newest windows' performance (ending at or before record `up_to`), newest first."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_PERF_COLUMNS} FROM dw_evaluations WHERE model = %s AND performance IS NOT NULL AND last_rec <= %s"
            " ORDER BY last_rec DESC, first_rec DESC, id DESC LIMIT %s",
            (model, _MAX_REC if up_to is None else up_to, limit)).fetchall())
        return [_performance(r) for r in rows]

    def stale_performance(self, model: str, limit: int = 50) -> list[PerformanceRow]:
        """Windows that gained labels since their performance was computed, oldest first."""
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_PERF_COLUMNS} FROM dw_evaluations WHERE model = %s AND perf_stale ORDER BY last_rec, id LIMIT %s",
            (model, limit)).fetchall())
        return [_performance(r) for r in rows]

    def put_performance(self, row: PerformanceRow) -> None:
        """Store a window's recomputed performance; stale at once if labels landed in it after
        `row.n_labelled` were read (the write and that check are one transaction)."""
        self._run(lambda conn: _put_performance(conn, row, None))

    def labelled_window(self, model: str, first_rec: int, last_rec: int) -> list[dict[str, Any]]:
        """The labelled records of ordinals `first_rec..last_rec`, oldest first: `{"label", "prediction",
        "probabilities"}` each (what `LabelledRecords.from_rows` takes)."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT first_rec, items FROM dw_labels WHERE model = %s AND first_rec <= %s AND last_rec >= %s ORDER BY first_rec",
            (model, last_rec, first_rec)).fetchall())
        out: list[dict[str, Any]] = []
        for first, items in rows:
            lo, hi = max(first_rec - first, 0), min(last_rec - first, len(items) - 1)
            out += items[lo : hi + 1]
        return out

    # -- predictions and labels ----------------------------------------------------------------------

    def add_predictions(self, rows: Sequence[Prediction]) -> None:
        """Keep these events' predictions for their labels (a replayed event is stored once)."""
        if not rows:
            return

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO dw_predictions (model, event_id, ts, first_rec, last_rec, rejected, predictions)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (model, event_id) DO NOTHING",
                    [(r.model, r.event_id, r.ts, r.first_rec, r.last_rec, r.rejected, json.dumps(r.predictions, allow_nan=True))
                     for r in rows])

        self._run(work)

    def add_labels(self, batch_id: str, model: str, ids: Sequence[str],
                   decide: Callable[[dict[str, Prediction], set[str]], tuple[list[LabelledEvent], dict[str, int]]],
                   received_at: float) -> dict[str, int] | None:
        """Process one label batch exactly once, in one transaction: `decide(predictions, labelled_ids)`
        gives the events' labels to store and the batch's outcome counts; the labels, the counts, the
        windows they make stale and the batch id are committed together. None (nothing done) when
        the batch was processed already (a replay after a rebalance, or a second owner during one)."""

        def work(conn: psycopg.Connection[Any]) -> dict[str, int] | None:
            first = conn.execute(
                "INSERT INTO dw_label_batches (batch_id, model, received_at) VALUES (%s,%s,%s)"
                " ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id", (batch_id, model, received_at)).fetchone()
            if first is None:
                return None
            found = {r[1]: Prediction(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(
                "SELECT model, event_id, ts, first_rec, last_rec, rejected, predictions FROM dw_predictions"
                " WHERE model = %s AND event_id = ANY(%s)", (model, list(ids))).fetchall()}
            labelled = {r[0] for r in conn.execute(
                "SELECT event_id FROM dw_labels WHERE model = %s AND event_id = ANY(%s)", (model, list(ids))).fetchall()}
            events, outcomes = decide(found, labelled)
            with conn.cursor() as cur:
                if events:
                    cur.executemany(
                        "INSERT INTO dw_labels (model, event_id, first_rec, last_rec, items, predicted_at, labelled_at,"
                        " received_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (model, event_id) DO NOTHING",
                        [(e.model, e.event_id, e.first_rec, e.last_rec, json.dumps(e.items, allow_nan=True), e.predicted_at,
                          e.labelled_at, e.received_at) for e in events])
                    cur.executemany(
                        "UPDATE dw_evaluations SET perf_stale = true WHERE model = %s AND performance IS NOT NULL"
                        " AND first_rec <= %s AND last_rec >= %s AND NOT perf_stale",
                        [(model, e.last_rec, e.first_rec) for e in events])
                counted = [(model, outcome, n) for outcome, n in outcomes.items() if n]
                if counted:
                    cur.executemany(
                        "INSERT INTO dw_label_counts (model, outcome, n) VALUES (%s,%s,%s)"
                        " ON CONFLICT (model, outcome) DO UPDATE SET n = dw_label_counts.n + EXCLUDED.n", counted)
            return outcomes

        return self._run(work)

    def count_labels(self, model: str, outcomes: Mapping[str, int]) -> None:
        """Add to a model's outcome counts outside a batch (labels of a batch refused whole: `invalid`)."""
        counted = [(model, outcome, n) for outcome, n in outcomes.items() if n]

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO dw_label_counts (model, outcome, n) VALUES (%s,%s,%s)"
                                " ON CONFLICT (model, outcome) DO UPDATE SET n = dw_label_counts.n + EXCLUDED.n", counted)

        if counted:
            self._run(work)

    def label_counts(self, models: Sequence[str]) -> dict[str, dict[str, int]]:
        """Labels received so far, by model and outcome."""
        out: dict[str, dict[str, int]] = {}
        for model, outcome, n in self._run(lambda conn: conn.execute(
                "SELECT model, outcome, n FROM dw_label_counts WHERE model = ANY(%s)", (list(models),)).fetchall()):
            out.setdefault(model, {})[outcome] = int(n)
        return out

    def trim_labels(self, predictions_before: Mapping[str, float], older_than: float) -> int:
        """Each model's predictions made before its cut-off (their labels would be too late), and
        labels and processed batch ids received before `older_than`; the rows deleted."""

        def work(conn: psycopg.Connection[Any]) -> int:
            n = 0
            for model, cut in predictions_before.items():
                n += conn.execute("DELETE FROM dw_predictions WHERE model = %s AND ts < %s", (model, cut)).rowcount
            models = list(predictions_before)
            n += conn.execute("DELETE FROM dw_labels WHERE model = ANY(%s) AND received_at < %s", (models, older_than)).rowcount
            n += conn.execute("DELETE FROM dw_label_batches WHERE model = ANY(%s) AND received_at < %s",
                              (models, older_than)).rowcount
            return n

        return self._run(work)

    # -- checkpoints ---------------------------------------------------------------------------------

    def put_checkpoints(self, topic: str, partitions: dict[int, int], checkpoints: Iterable[Checkpoint], now: float) -> None:
        """Each partition's replay offset and its models' checkpoints, in one transaction (consistent)."""
        marks = list(checkpoints)

        def work(conn: psycopg.Connection[Any]) -> None:
            for partition, offset in partitions.items():
                conn.execute(
                    "INSERT INTO dw_partitions (topic, partition, replay_offset, updated_at) VALUES (%s,%s,%s,%s)"
                    " ON CONFLICT (topic, partition) DO UPDATE SET replay_offset = EXCLUDED.replay_offset,"
                    " updated_at = EXCLUDED.updated_at",
                    (topic, partition, offset, now),
                )
            _put_checkpoints(conn, marks, topic, now)

        self._run(work)

    def replay_from(self, topic: str, partition: int) -> tuple[int | None, dict[str, Checkpoint]]:
        """The partition's replay offset (None: from its beginning) and its models' checkpoints."""

        def work(conn: psycopg.Connection[Any]) -> tuple[int | None, dict[str, Checkpoint]]:
            row = conn.execute("SELECT replay_offset FROM dw_partitions WHERE topic = %s AND partition = %s",
                               (topic, partition)).fetchone()
            marks = conn.execute("SELECT model, partition, replay_offset, replay_rec FROM dw_checkpoints"
                                 " WHERE topic = %s AND partition = %s", (topic, partition)).fetchall()
            return (None if row is None else row[0]), {m: Checkpoint(m, p, o, r) for m, p, o, r in marks}

        return self._run(work)

    # -- leases --------------------------------------------------------------------------------------

    def try_lease(self, key: int) -> bool:
        """Hold the session-level advisory lock `key` on this connection (True if held now).

        The lock lives as long as the connection: a replica that dies or loses the database loses
        it, and another replica's next `try_lease` takes it over."""
        return bool(self._run(lambda conn: conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]))  # type: ignore[index]

    def adopt_namespaces(self, keys: Mapping[str, str]) -> dict[str, int]:
        """Move the rows of models that gained a namespace to their new key (`{name: namespace/name}`) in every
        driftwatch table with a `model` column (retraining's too), in one transaction, unless the new key has evaluations or
        checkpoints already (another replica moved them first); the embedded store's `adopt_namespaces` twin.
        Returns the evaluations moved per model."""

        def work(conn: psycopg.Connection[Any]) -> dict[str, int]:
            tables = [t for (t,) in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_name = 'model' AND (table_name LIKE 'dw\\_%' OR table_name LIKE 'retrain\\_%') "
                "ORDER BY table_name").fetchall()]
            moved: dict[str, int] = {}
            for old, new in keys.items():
                if old == new or conn.execute("SELECT 1 FROM dw_evaluations WHERE model = %s UNION ALL "
                                              "SELECT 1 FROM dw_checkpoints WHERE model = %s LIMIT 1", (new, new)).fetchone():
                    continue
                row = conn.execute("SELECT count(*) FROM dw_evaluations WHERE model = %s", (old,)).fetchone()
                n = int(row[0]) if row else 0
                from psycopg import sql

                for table in tables:
                    conn.execute(sql.SQL("UPDATE {} SET model = %s WHERE model = %s").format(sql.Identifier(table)), (new, old))
                if n:
                    moved[old] = n
            return moved

        return self._run(work)

    def ping(self) -> bool:
        try:
            self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        except PgUnavailable:
            return False
        return True


def _put_checkpoints(conn: psycopg.Connection[Any], marks: list[Checkpoint], topic: str, now: float) -> None:
    for c in marks:
        conn.execute(
            "INSERT INTO dw_checkpoints (model, topic, partition, replay_offset, replay_rec, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (model) DO UPDATE SET topic = EXCLUDED.topic,"
            " partition = EXCLUDED.partition, replay_offset = EXCLUDED.replay_offset,"
            " replay_rec = EXCLUDED.replay_rec, updated_at = EXCLUDED.updated_at",
            (c.model, topic, c.partition, c.replay_offset, c.replay_rec, now),
        )


_MAX_REC = 2**63 - 1
_PERF_COLUMNS = ("model, first_rec, last_rec, window_start, window_end, point_kind, point, n_records, n_labelled, "
                 "performance, evaluated_at, perf_updated_at, perf_stale")


def _put_performance(conn: psycopg.Connection[Any], row: PerformanceRow, evaluation_id: int | None) -> None:
    """A window's performance onto its evaluation row(s): the one just inserted, or every evaluation
    of that window (a count and a time grid may both have evaluated it)."""
    where, args = ("id = %s", (evaluation_id,)) if evaluation_id is not None else (
        "model = %s AND first_rec = %s AND last_rec = %s", (row.model, row.first_rec, row.last_rec))
    conn.execute(
        "UPDATE dw_evaluations SET performance = %s, n_labelled = %s, perf_updated_at = %s,"
        " perf_stale = (SELECT COALESCE(SUM(LEAST(l.last_rec, %s) - GREATEST(l.first_rec, %s) + 1), 0) FROM dw_labels l"
        "  WHERE l.model = %s AND l.first_rec <= %s AND l.last_rec >= %s) <> %s"
        f" WHERE {where}",
        (json.dumps(row.result, allow_nan=True), row.n_labelled, row.updated_at, row.last_rec, row.first_rec, row.model,
         row.last_rec, row.first_rec, row.n_labelled, *args))


def _performance(row: tuple[Any, ...]) -> PerformanceRow:
    m, fr, lr, ws, we, kind, point, n, nl, result, at, upd, stale = row
    return PerformanceRow(m, fr, lr, ws, we, (kind, int(point) if kind == "count" else point), n, nl or 0, result, at,
                          upd if upd is not None else at, bool(stale))


def _evaluation(row: tuple[Any, ...]) -> EvaluationRow:
    m, start, end, fs, ls, fr, lr, n, result, at, kind, point = row
    return EvaluationRow(m, start, end, fs, ls, fr, lr, n, result, at, (kind, int(point) if kind == "count" else point))
