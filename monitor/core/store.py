"""The durable event log and monitor state: one SQLite file in WAL mode, the only state a restart needs.

- `events`: every captured event of a configured model, accepted or rejected (with its reason), as
  the normalized wire JSON. Parsed records are not stored: re-parsing the few thousand events of a
  window at start-up is cheaper than writing every record twice on the ingest path (see
  benchmarks/ingest.py). `rec_end` is the model's cumulative record count through the event,
  assigned at insert, so window boundaries survive restarts and retention.
- `ce_pending`: CloudEvent halves waiting for their partner (so a restart does not lose them).
- `evaluations`: every evaluated window and its `DriftResult.to_dict()`.
- labels and each window's performance: `monitor/core/labelstore.py`, on this connection (`labels`).

Durability: `synchronous=FULL` by default: a commit is fsynced before the caller acknowledges.
`NORMAL` (opt-in: `server.store.synchronous: normal`) survives a process crash but can lose the
last acknowledged transactions on power loss; benchmarks/ingest.py measures both.

Size: every ingest transaction first deletes the oldest events that would push the bytes in use
past `max_bytes - wal_limit` (`make_room`: the rows reuse the freed pages at once), `trim()` (the
periodic pass) and `trim_to_size()` (when something else grew) do the same outside ingest. The
file has `auto_vacuum=INCREMENTAL` (schema v4), so pages freed by trims go back to the file
system, and the WAL is checkpointed at `wal_limit` and truncated back to it
(`journal_size_limit`). File plus WAL stay within `max_bytes + size_slack(...)` (docs/deploy.md). A full disk (SQLITE_FULL) is
`StoreFull`: the transaction is rolled back, nothing is acknowledged, and the next transaction
tries again.

Not thread-safe by itself: the service drives it from one writer thread. Other components (the
retraining history) open their own connections to the same file; WAL plus `busy_timeout` lets
them coexist. The file's schema and its migrations, these tables' and the retraining history's,
are `monitor/core/schema.py`'s.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from monitor.core import schema
from monitor.core.labelstore import LabelTables, PerformanceRow

__all__ = [
    "EVALUATIONS_KEPT",
    "EvaluationRow",
    "EventRow",
    "EventStore",
    "PendingHalf",
    "StoreFull",
    "StoredEvent",
    "disk_bytes",
    "size_slack",
    "wal_limit",
]

EVALUATIONS_KEPT = 10_000
"""Evaluations kept per model (the newest), besides the age limit: one is stored per window."""
_MIN_WAL, _MAX_WAL = 64 * 1024, 4 * 1024**2
_ROW_OVERHEAD = 128
"""Bytes an event row takes besides its `raw` JSON (other columns, cell header, its index entries), roughly."""
_RETRY_AFTER = 10


def disk_bytes(path: str | Path) -> int:
    """What the store takes on disk now: the file plus its WAL (what `max_bytes` bounds)."""
    total = 0
    for name in (Path(path), Path(f"{path}-wal")):
        try:
            total += name.stat().st_size
        except FileNotFoundError:
            pass
    return total


def size_slack(max_bytes: int, largest_batch: int = 0) -> int:
    """How far the file plus its WAL may exceed `max_bytes` under sustained ingest: twice the larger
    of `wal_limit(max_bytes)` and the largest ingest batch (its events' bytes).

    The database keeps its bytes in use under `max_bytes - wal_limit` at every ingest commit
    (`make_room`), and one transaction takes at most `wal_limit` bytes of queued batches (a larger
    single batch goes alone), so the WAL holds about one transaction: its rows plus the pages its
    deletes touch, under twice its bytes. 2 MiB → 256 KiB; 64 MiB → 8 MiB (batches under 4 MiB)."""
    return 2 * max(wal_limit(max_bytes), largest_batch)


def wal_limit(max_bytes: int) -> int:
    """The WAL's share of `max_bytes`: a sixteenth, between 64 KiB and 4 MiB. The WAL is checkpointed
    at that size and truncated back to it, and the database keeps its bytes in use under the rest."""
    return max(_MIN_WAL, min(_MAX_WAL, max_bytes // 16))


class StoreFull(RuntimeError):
    """The disk (or the volume) is full: the transaction was rolled back and nothing it held is stored.

    Retry after `retry_after` seconds; the store writes again as soon as space returns."""

    retry_after = _RETRY_AFTER

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: database or disk is full")
        self.path = path


def _is_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "database or disk is full" in str(exc)


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
    reference_id: int | None = None
    """The stored reference (`monitor.core.referencestore`) the window was judged against; None: the config's."""


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
    "model, window_start, window_end, first_seq, last_seq, first_rec, last_rec, n_records, result, evaluated_at, point_kind, point,"
    " reference_id"
)
_STORED_COLUMNS = "seq, model, id, ts, reason, n_records, rec_end, raw"
"""StoredEvent's fields, in order."""
_MAX_REC = 2**63 - 1


def _evaluation_row(row: tuple[Any, ...]) -> EvaluationRow:
    m, start, end, fs, ls, fr, lr, n, result, at, kind, point, ref = row
    return EvaluationRow(m, start, end, fs, ls, fr, lr, n, json.loads(result), at, None if kind is None else (kind, point), ref)


class EventStore:
    """The SQLite event log. Use from one thread at a time (see module docstring)."""

    def __init__(
        self, path: str | Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL", max_bytes: int = 1024**3,
    ) -> None:
        """`max_bytes` sizes the WAL (`wal_limit`); the limit itself is enforced by `trim`/`trim_to_size`."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.wal_limit = wal_limit(max_bytes)
        self.closed = False
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA journal_size_limit={self.wal_limit}")
        self._db.execute(f"PRAGMA wal_autocheckpoint={max(8, self.wal_limit // self._page_size)}")
        self._rec_totals: dict[str, int] = {}
        self._migrate()
        self.labels = LabelTables(self._db)
        """The ground-truth tables (use inside `transaction()` for writes, on the same thread)."""
        self._rec_totals = dict(
            self._db.execute("SELECT model, MAX(rec_end) FROM events WHERE rec_end IS NOT NULL GROUP BY model").fetchall()
        )

    def close(self) -> None:
        self.closed = True
        self._db.close()

    def adopt_namespaces(self, keys: Mapping[str, str]) -> dict[str, int]:
        """Move the rows of models that gained a namespace to their new key (`{name: namespace/name}`),
        in every table that has a `model` column (events, halves, evaluations, labels, retraining),
        in one transaction. Only when the new key has no events yet: a store already keyed by
        namespace is left as it is. Returns the events moved per model (logged by the caller)."""
        tables = [t for (t,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if any(col[1] == "model" for col in self._db.execute(f'PRAGMA table_info("{t}")'))]
        moved: dict[str, int] = {}
        with self.transaction():
            for old, new in keys.items():
                if old == new or self._db.execute("SELECT 1 FROM events WHERE model = ? LIMIT 1", (new,)).fetchone():
                    continue
                n = self._db.execute("SELECT COUNT(*) FROM events WHERE model = ?", (old,)).fetchone()[0]
                if not n:
                    continue
                for table in tables:
                    self._db.execute(f'UPDATE "{table}" SET model = ? WHERE model = ?', (new, old))
                moved[old] = int(n)
        for old, new in ((o, keys[o]) for o in moved):
            if old in self._rec_totals:
                self._rec_totals[new] = self._rec_totals.pop(old)
        return moved

    def _migrate(self) -> None:
        schema.migrate(self._db, self.path)  # SchemaVersionError (a RuntimeError) for a newer file

    @property
    def schema_version(self) -> int:
        return schema.schema_version(self._db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable transaction: committed (and fsynced) when the block exits without error."""
        totals = self._rec_totals
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._rec_totals = totals
                raise
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise StoreFull(self.path) from exc
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

    def events_by_id(self, model: str, ids: Sequence[str]) -> dict[str, StoredEvent]:
        """The model's stored events with these ids (accepted or rejected), by id."""
        found: dict[str, StoredEvent] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT {_STORED_COLUMNS} FROM events WHERE model = ? AND id IN ({marks})", (model, *chunk)):
                found[row[2]] = StoredEvent(*row)
        return found

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

    def keys_of(self, model: str, separator: str) -> list[tuple[str, float, float, int]]:
        """(key, first and last `received_at`, events) of `model` itself and of every key `model` +
        `separator` + anything (its version tracks, monitor/runtime/tracks.py), read on the events'
        (model, id) index."""
        low = model + separator
        high = low[:-1] + chr(ord(separator) + 1)
        return [(str(k), float(a), float(b), int(n)) for k, a, b, n in self._db.execute(
            "SELECT model, MIN(received_at), MAX(received_at), COUNT(*) FROM events"
            " WHERE model = ? OR (model >= ? AND model < ?) GROUP BY model", (model, low, high))]

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

    def add_evaluation(self, row: EvaluationRow, performance: PerformanceRow | None = None) -> None:
        """Store an evaluated window, with its performance (one transaction)."""
        with self.transaction():
            if performance is not None:
                self.labels.put(performance)
            kind, point = row.point if row.point is not None else (None, None)
            self._db.execute(
                f"INSERT INTO evaluations ({_EVALUATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.model, row.window_start, row.window_end, row.first_seq, row.last_seq, row.first_rec,
                    row.last_rec, row.n_records, json.dumps(row.result, allow_nan=True), row.evaluated_at, kind, point,
                    row.reference_id,
                ),
            )

    def put_performance(self, row: PerformanceRow) -> None:
        """Store a window's recomputed performance (its own transaction)."""
        with self.transaction():
            self.labels.put(row)

    def evaluations(self, model: str, limit: int = 100) -> list[EvaluationRow]:
        """The model's latest evaluations, newest first."""
        rows = self._db.execute(
            f"SELECT {_EVALUATION_COLUMNS} FROM evaluations WHERE model = ? ORDER BY id DESC LIMIT ?", (model, limit)
        ).fetchall()
        return [_evaluation_row(row) for row in rows]

    def evaluated_points(self, model: str) -> tuple[dict[str, float], int]:
        """The newest evaluated point of each grid and the newest evaluated ordinal: what a rebuilt
        window resumes from (on both grids the newest evaluation alone does not say both)."""
        rows = self._db.execute(
            "SELECT point_kind, MAX(point), MAX(last_rec) FROM evaluations WHERE model = ? GROUP BY point_kind", (model,)
        ).fetchall()
        return {kind: point for kind, point, _ in rows if kind is not None}, max((rec for *_, rec in rows), default=0)

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
        """Bytes of the database in use (its pages, wherever they are: file or WAL, minus free ones)."""
        pages = self._pragma("page_count") - self._pragma("freelist_count")
        return pages * self._page_size

    def size_bytes(self) -> int:
        """What the store takes on disk: the database file plus its WAL."""
        total = 0
        for name in (self.path, Path(f"{self.path}-wal")):
            try:
                total += os.stat(name).st_size
            except FileNotFoundError:
                pass
        return total

    def size_target(self, max_bytes: int) -> int:
        """Bytes in use above which size retention deletes: `max_bytes` less the WAL's share."""
        return max(self._page_size, max_bytes - wal_limit(max_bytes))

    def over_size(self, max_bytes: int) -> bool:
        """Cheap (one pragma): is the database, free pages included, past `size_target`? Checked
        after every ingest commit; true after a lower limit or other tables' growth, not in steady
        ingest (`make_room` keeps the pages in use under the target and the rows reuse free ones)."""
        return self._pragma("page_count") * self._page_size > self.size_target(max_bytes)

    def trim(self, *, older_than: float, max_bytes: int, batch: int = 2000, events_older_than: float | None = None) -> int:
        """One step of the periodic retention pass; the events deleted (repeat until 0).

        Oldest events first: those received before `older_than`, then, once none is, as many as
        bring the bytes in use back under `size_target(max_bytes)`. Also, every call: evaluations
        evaluated before `older_than` and beyond the newest `EVALUATIONS_KEPT` per model, retraining
        decisions made before `older_than` (the retraining history keeps at most its newest 10 000
        per model besides). Small batches in their own transactions keep ingest latency flat: the
        caller repeats until it returns 0, letting ingest transactions interleave. Events are kept
        until `events_older_than` when given (earlier than `older_than`: labels may still join them).
        """
        with self.transaction():
            deleted = self._db.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < ? ORDER BY seq LIMIT ?)",
                (older_than if events_older_than is None else min(older_than, events_older_than), batch),
            ).rowcount
            if not deleted:
                deleted = self._delete_for_size(max_bytes, batch)
            self._db.execute("DELETE FROM evaluations WHERE evaluated_at < ?", (older_than,))
            for (model,) in self._db.execute("SELECT DISTINCT model FROM evaluations").fetchall():
                self._db.execute(
                    "DELETE FROM evaluations WHERE model = ? AND id <= (SELECT id FROM evaluations"
                    " WHERE model = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (model, model, EVALUATIONS_KEPT),
                )
            self._db.execute("DELETE FROM retrain_decisions WHERE at < ?", (older_than,))
            self.labels.trim(older_than)
        self._release()
        return int(deleted)

    def trim_to_size(self, max_bytes: int, *, batch: int = 2000) -> int:
        """Between the periodic passes, when `over_size`: delete the oldest events (at most `batch`)
        that bring the bytes in use under `size_target(max_bytes)`, give the free pages back to the
        file system and checkpoint the WAL; the events deleted (0 once in use is under the target)."""
        if not self.over_size(max_bytes):
            return 0
        with self.transaction():
            deleted = self._delete_for_size(max_bytes, batch)
        self._release()
        return deleted

    def make_room(self, rows: Sequence[EventRow], max_bytes: int) -> int:
        """Inside the ingest transaction, before `append(rows)`: delete the oldest events that leave
        room for `rows` under `size_target(max_bytes)`; the events deleted. The pages they free are
        reused by the rows at once, so the file does not grow past its limit between checks."""
        return self._delete_for_size(max_bytes, len(rows), sum(len(r.raw) + _ROW_OVERHEAD for r in rows))

    def _delete_for_size(self, max_bytes: int, batch: int, incoming: int = 0) -> int:
        """Inside a transaction: the oldest events past the size target (counting `incoming` bytes
        about to be written), or, when no event is left, the oldest evaluations. Deletes a 32nd of
        the limit more than the excess, so the next delete is not due at the very next commit."""
        used, target = self.used_bytes() + incoming, self.size_target(max_bytes)
        if used <= target:
            return 0
        excess = used - target + max_bytes // 32
        first, last = self._db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        if first is None:
            return int(self._db.execute(
                "DELETE FROM evaluations WHERE id IN (SELECT id FROM evaluations ORDER BY id LIMIT ?)", (max(1, batch // 20),)
            ).rowcount)
        per_event = max(1.0, (used - incoming) / (last - first + 1))
        n = max(1, min(max(batch, 2000), math.ceil(excess / per_event)))
        return int(self._db.execute("DELETE FROM events WHERE seq < ?", (first + n,)).rowcount)

    def _release(self) -> None:
        """Give free pages back to the file system, checkpoint (the file shrinks then) and truncate the
        WAL, which the vacuum filled with moved pages: never waiting for readers."""
        try:
            if self._pragma("freelist_count"):
                self._db.executescript("PRAGMA incremental_vacuum;")  # stepped to the end (execute() frees one page)
            self._db.execute("PRAGMA busy_timeout=0")  # a reader in the way: try again at the next trim, never wait
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                self._db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise StoreFull(self.path) from exc
            raise

    def _pragma(self, name: str) -> int:
        return int(self._db.execute(f"PRAGMA {name}").fetchone()[0])
