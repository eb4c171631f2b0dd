"""The durable event log and monitor state: one SQLite file in WAL mode, the only state a restart needs.

- `events`: every captured event of a configured model, accepted or rejected (with its reason), as
  the normalized wire JSON. Parsed records are not stored: re-parsing the few thousand events of a
  window at start-up is cheaper than writing every record twice on the ingest path (see
  benchmarks/ingest.py). `rec_end` is the model's cumulative record count through the event,
  assigned at insert, so window boundaries survive restarts and retention.
- `ce_pending`: CloudEvent halves waiting for their partner (so a restart does not lose them).
- `evaluations`: every evaluated window and its `DriftResult.to_dict()`.

Durability: `synchronous=FULL` by default: a commit is fsynced before the caller acknowledges.
`NORMAL` (opt-in: `server.store.synchronous: normal`) survives a process crash but can lose the
last acknowledged transactions on power loss; benchmarks/ingest.py measures both.

Not thread-safe by itself: the service drives it from one writer thread. Other components (the
retraining history) open their own connections to the same file; WAL plus `busy_timeout` lets
them coexist. The file's schema and its migrations, these tables' and the retraining history's,
are `monitor/core/schema.py`'s.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from monitor.core import schema

__all__ = ["EvaluationRow", "EventRow", "EventStore", "PendingHalf", "StoredEvent"]


class EventRow(NamedTuple):
    """An event to append: `reason` None means accepted with `n_records` records."""

    model: str
    id: str
    ts: float
    received_at: float
    reason: str | None
    n_records: int
    raw: str


class StoredEvent(NamedTuple):
    seq: int
    model: str
    id: str
    ts: float
    reason: str | None
    n_records: int
    rec_end: int | None
    raw: str


@dataclass(frozen=True, slots=True)
class PendingHalf:
    model: str
    id: str
    kind: Literal["request", "response"]
    received_at: float
    half: str
    """The half as JSON (see monitor.capture.cloudevents.Half for its shape)."""


@dataclass(frozen=True, slots=True)
class EvaluationRow:
    model: str
    window_start: float
    window_end: float
    first_seq: int
    last_seq: int
    first_rec: int
    last_rec: int
    n_records: int
    result: dict[str, Any]
    evaluated_at: float
    point: tuple[str, float] | None = None
    """The grid point the window ends at (`DueWindow.point`); None in rows stored before schema v2."""


_EVENT_COLUMNS = ("seq", "model", "id", "ts", "received_at", "reason", "n_records", "rec_end", "raw")
_INSERT_ROWS = 100
"""Rows per INSERT statement. One statement per row (executemany) releases and retakes the GIL
for every row, and each retake waits behind the thread handling requests, which made appends
several times slower beside a busy Python thread (`python benchmarks/ingest.py` measures ingest). 100 rows × 9 columns stays far below SQLite's variable limit."""


@cache
def _insert_sql(n_rows: int) -> str:
    row = "(" + ",".join("?" * len(_EVENT_COLUMNS)) + ")"
    return f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES {','.join([row] * n_rows)}"


_EVALUATION_COLUMNS = (
    "model, window_start, window_end, first_seq, last_seq, first_rec, last_rec, n_records, result, evaluated_at, point_kind, point"
)
_STORED_COLUMNS = "seq, model, id, ts, reason, n_records, rec_end, raw"
"""StoredEvent's fields, in order."""
_MAX_REC = 2**63 - 1


def _evaluation_row(row: tuple[Any, ...]) -> EvaluationRow:
    m, start, end, fs, ls, fr, lr, n, result, at, kind, point = row
    return EvaluationRow(m, start, end, fs, ls, fr, lr, n, json.loads(result), at, None if kind is None else (kind, point))


class EventStore:
    """The SQLite event log. Use from one thread at a time (see module docstring)."""

    def __init__(self, path: str | Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._rec_totals: dict[str, int] = {}
        self._migrate()
        self._rec_totals = dict(
            self._db.execute("SELECT model, MAX(rec_end) FROM events WHERE rec_end IS NOT NULL GROUP BY model").fetchall()
        )

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        schema.migrate(self._db, self.path)  # SchemaVersionError (a RuntimeError) for a newer file

    @property
    def schema_version(self) -> int:
        return schema.schema_version(self._db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable transaction: committed (and fsynced) when the block exits without error."""
        totals = self._rec_totals
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._rec_totals = totals
            raise

    # -- events ------------------------------------------------------------------------------------

    def record_total(self, model: str) -> int:
        """The model's cumulative accepted-record count (the ordinal of its newest record)."""
        return self._rec_totals.get(model, 0)

    def append(self, rows: Sequence[EventRow]) -> list[StoredEvent | None]:
        """Insert new events (call inside `transaction()`); None marks a duplicate id.

        Duplicates are found with one indexed query per model, and within the batch itself, so
        only new accepted events advance the model's record ordinal.
        """
        existing: set[tuple[str, str]] = set()
        by_model: dict[str, list[str]] = {}
        for r in rows:
            by_model.setdefault(r.model, []).append(r.id)
        for model, ids in by_model.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                existing.update(
                    (model, found)
                    for (found,) in self._db.execute(f"SELECT id FROM events WHERE model = ? AND id IN ({marks})", (model, *chunk))
                )
        seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        totals = self._rec_totals.copy()
        out: list[StoredEvent | None] = []
        params: list[Any] = []
        for r in rows:
            key = (r.model, r.id)
            if key in existing:
                out.append(None)
                continue
            existing.add(key)
            seq += 1
            rec_end = None
            if r.reason is None:
                rec_end = totals.get(r.model, 0) + r.n_records
                totals[r.model] = rec_end
            out.append(StoredEvent(seq, r.model, r.id, r.ts, r.reason, r.n_records, rec_end, r.raw))
            params += (seq, r.model, r.id, r.ts, r.received_at, r.reason, r.n_records, rec_end, r.raw)
        width = len(_EVENT_COLUMNS)
        for i in range(0, len(params), _INSERT_ROWS * width):
            chunk = params[i : i + _INSERT_ROWS * width]
            self._db.execute(_insert_sql(len(chunk) // width), chunk)
        self._rec_totals = totals
        return out

    def contains(self, model: str, event_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM events WHERE model = ? AND id = ?", (model, event_id)).fetchone() is not None

    def accepted_since(self, model: str, after_rec: int) -> Iterator[StoredEvent]:
        """Accepted events holding records with ordinal > `after_rec`, oldest first (window rebuild)."""
        cur = self._db.execute(
            f"SELECT {_STORED_COLUMNS} FROM events WHERE model = ? AND rec_end > ? ORDER BY rec_end",
            (model, after_rec),
        )
        for row in cur:
            yield StoredEvent(*row)

    def first_rec_since(self, model: str, ts: float, received_since: float = -math.inf) -> int:
        """The ordinal before the first of the model's records stamped at or after `ts`, among the
        events received at or after `received_since` (duration windows' rebuild).

        Walks back from the newest event until one received before `received_since`, so a bounded
        recent stretch is scanned, however the stamps are ordered; exact as long as the server's
        clock did not step back (events are committed in the order they are received).
        """
        cur = self._db.execute(
            "SELECT rec_end - n_records, ts, received_at FROM events WHERE model = ? AND rec_end IS NOT NULL ORDER BY rec_end DESC",
            (model,),
        )
        first = self.record_total(model)
        for start, event_ts, received_at in cur:
            if received_at < received_since:
                break
            if event_ts >= ts:
                first = start
        cur.close()
        return int(first)

    def count_events(self, model: str | None = None) -> dict[str | None, int]:
        """Stored events by reason (None = accepted), for tests and operators."""
        sql = "SELECT reason, COUNT(*) FROM events" + (" WHERE model = ?" if model else "") + " GROUP BY reason"
        return dict(self._db.execute(sql, (model,) if model else ()).fetchall())

    # -- CloudEvent halves --------------------------------------------------------------------------

    def take_half(self, model: str, event_id: str, kind: str) -> PendingHalf | None:
        """Remove and return a pending half (call inside `transaction()`)."""
        row = self._db.execute(
            "DELETE FROM ce_pending WHERE model = ? AND id = ? AND kind = ? RETURNING model, id, kind, received_at, half",
            (model, event_id, kind),
        ).fetchone()
        return PendingHalf(*row) if row else None

    def put_half(self, half: PendingHalf) -> bool:
        """Keep a half until its partner arrives; False if the same half is already pending."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO ce_pending (model, id, kind, received_at, half) VALUES (?,?,?,?,?)",
            (half.model, half.id, half.kind, half.received_at, half.half),
        )
        return cur.rowcount == 1

    def take_expired_halves(self, received_before: float, limit: int = 1000) -> list[PendingHalf]:
        """Remove and return halves that waited too long (call inside `transaction()`)."""
        rows = self._db.execute(
            "DELETE FROM ce_pending WHERE rowid IN (SELECT rowid FROM ce_pending WHERE received_at < ?"
            " ORDER BY received_at LIMIT ?) RETURNING model, id, kind, received_at, half",
            (received_before, limit),
        ).fetchall()
        return sorted((PendingHalf(*r) for r in rows), key=lambda h: (h.received_at, h.model, h.id, h.kind))

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM ce_pending").fetchone()[0])

    # -- evaluations --------------------------------------------------------------------------------

    def add_evaluation(self, row: EvaluationRow) -> None:
        with self.transaction():
            kind, point = row.point if row.point is not None else (None, None)
            self._db.execute(
                f"INSERT INTO evaluations ({_EVALUATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.model, row.window_start, row.window_end, row.first_seq, row.last_seq, row.first_rec,
                    row.last_rec, row.n_records, json.dumps(row.result, allow_nan=True), row.evaluated_at, kind, point,
                ),
            )

    def evaluations(self, model: str, limit: int = 100) -> list[EvaluationRow]:
        """The model's latest evaluations, newest first."""
        rows = self._db.execute(
            f"SELECT {_EVALUATION_COLUMNS} FROM evaluations WHERE model = ? ORDER BY id DESC LIMIT ?", (model, limit)
        ).fetchall()
        return [_evaluation_row(row) for row in rows]

    def evaluation_at(self, model: str, last_rec: int) -> EvaluationRow | None:
        """The newest evaluation of the model's window ending at record `last_rec` (one row parsed)."""
        row = self._db.execute(
            f"SELECT {_EVALUATION_COLUMNS} FROM evaluations WHERE model = ? AND last_rec = ? ORDER BY id DESC LIMIT 1",
            (model, last_rec),
        ).fetchone()
        return None if row is None else _evaluation_row(row)

    def window_evaluations(self, model: str, limit: int, up_to: int | None = None) -> list[EvaluationRow]:
        """The latest `limit` windows ending at or before record `up_to`, newest first, each window's
        newest evaluation only: picked on the (model, last_rec) index, so only returned rows are parsed."""
        rows = self._db.execute(
            f"SELECT {_EVALUATION_COLUMNS} FROM evaluations WHERE id IN ("
            " SELECT MAX(id) FROM evaluations WHERE model = ? AND last_rec <= ?"
            " GROUP BY last_rec ORDER BY last_rec DESC LIMIT ?) ORDER BY last_rec DESC",
            (model, _MAX_REC if up_to is None else up_to, limit),
        ).fetchall()
        return [_evaluation_row(row) for row in rows]

    def accepted_between(self, model: str, first_rec: int, last_rec: int) -> Iterator[StoredEvent]:
        """Accepted events holding records with ordinals in [`first_rec`, `last_rec`], oldest first.

        Bounded on the (model, rec_end) index by the first event reaching `last_rec`, so reading an
        old window never walks the rest of the store."""
        cur = self._db.execute(
            f"SELECT {_STORED_COLUMNS} FROM events WHERE model = ? AND rec_end >= ? AND rec_end <= ("
            "  SELECT MIN(rec_end) FROM events WHERE model = ? AND rec_end >= ?) ORDER BY rec_end",
            (model, first_rec, model, last_rec),
        )
        for row in cur:
            yield StoredEvent(*row)

    # -- retention ----------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes in use (freed pages are reused, so the file itself does not shrink)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0] - self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * self._db.execute("PRAGMA page_size").fetchone()[0])

    def trim(self, *, older_than: float, max_bytes: int, batch: int = 2000) -> int:
        """Delete one batch of the oldest events past the age or size limit; the count deleted.

        Small batches in their own transactions keep ingest latency flat: the caller repeats
        until it returns 0, letting ingest transactions interleave.
        """
        with self.transaction():
            deleted = self._db.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < ? ORDER BY seq LIMIT ?)",
                (older_than, batch),
            ).rowcount
            if not deleted and self.used_bytes() > max_bytes:
                deleted = self._db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (batch,)
                ).rowcount
            self._db.execute("DELETE FROM evaluations WHERE evaluated_at < ?", (older_than,))
        return int(deleted)
