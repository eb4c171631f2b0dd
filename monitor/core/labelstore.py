"""Ground truth in the SQLite file: joined labels, their outcome counts, each window's performance.

The tables (schema v5, `monitor/core/schema.py`) share the event store's connection and writer
thread: `EventStore.labels` is the one instance, and every write runs inside the store's
`transaction()`, so a label batch is acknowledged only once it and its counts are durable.

- `labels`: one row per labelled record, keyed by the record's ordinal (the window machinery's
  numbering), holding the label and the prediction it judges. A label joins its event once; the
  row is self-contained, so a window's realized performance survives the event's retention.
- `label_counts`: every label received, by outcome, counted in the transaction that decided it
  (exactly once, across restarts).
- `performance`: one row per evaluated window (its `PerformanceResult` as JSON). `stale` marks
  windows that gained labels since the row was computed; the evaluator recomputes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["LabelRow", "LabelTables", "PerformanceRow"]

_MAX_REC = 2**63 - 1


class LabelRow(NamedTuple):
    """One labelled record: `prediction` is `{"prediction": v, "probabilities": [...] | None}`."""

    model: str
    rec: int
    event_id: str
    label: Any
    prediction: Mapping[str, Any]
    predicted_at: float
    labelled_at: float | None
    received_at: float


@dataclass(frozen=True, slots=True)
class PerformanceRow:
    model: str
    first_rec: int
    last_rec: int
    window_start: float
    window_end: float
    point: tuple[str, float] | None
    n_records: int
    n_labelled: int
    result: dict[str, Any]
    """`PerformanceResult.to_dict()`."""
    evaluated_at: float
    updated_at: float
    stale: bool = False


_PERF_COLUMNS = ("model, first_rec, last_rec, window_start, window_end, point_kind, point, n_records, n_labelled, "
                 "result, evaluated_at, updated_at, stale")


def _perf_row(row: tuple[Any, ...]) -> PerformanceRow:
    m, fr, lr, ws, we, kind, point, n, nl, result, at, upd, stale = row
    return PerformanceRow(m, fr, lr, ws, we, None if kind is None else (kind, point), n, nl, json.loads(result), at, upd, bool(stale))


class LabelTables:
    """Reads and writes of the ground-truth tables on the event store's connection (its writer thread)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # -- labels -------------------------------------------------------------------------------------

    def labelled_ids(self, model: str, ids: Sequence[str]) -> set[str]:
        """Which of the event ids already have their labels."""
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self._db.execute(
                f"SELECT DISTINCT event_id FROM labels WHERE model = ? AND event_id IN ({marks})", (model, *chunk)))
        return found

    def add(self, rows: Iterable[LabelRow]) -> int:
        """Insert labelled records (inside the store's transaction); the rows written."""
        params = [
            (r.model, r.rec, r.event_id, json.dumps(r.label), json.dumps(r.prediction, allow_nan=True),
             r.predicted_at, r.labelled_at, r.received_at)
            for r in rows
        ]
        self._db.executemany(
            "INSERT OR IGNORE INTO labels (model, rec, event_id, label, prediction, predicted_at, labelled_at, received_at)"
            " VALUES (?,?,?,?,?,?,?,?)", params)
        return len(params)

    def window(self, model: str, first_rec: int, last_rec: int) -> list[dict[str, Any]]:
        """The labelled records of a window, oldest first: `{"label", "prediction", "probabilities"}` each."""
        out = []
        for label, prediction in self._db.execute(
            "SELECT label, prediction FROM labels WHERE model = ? AND rec BETWEEN ? AND ? ORDER BY rec",
            (model, first_rec, last_rec),
        ):
            p = json.loads(prediction)
            out.append({"label": json.loads(label), "prediction": p.get("prediction"), "probabilities": p.get("probabilities")})
        return out

    def count_in(self, model: str, first_rec: int, last_rec: int) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM labels WHERE model = ? AND rec BETWEEN ? AND ?", (model, first_rec, last_rec)).fetchone()[0])

    # -- outcome counts -------------------------------------------------------------------------------

    def count(self, model: str, outcomes: Mapping[str, int]) -> None:
        """Add to the durable per-outcome counts (inside the transaction that decided the outcomes)."""
        self._db.executemany(
            "INSERT INTO label_counts (model, outcome, n) VALUES (?,?,?)"
            " ON CONFLICT (model, outcome) DO UPDATE SET n = n + excluded.n",
            [(model, outcome, n) for outcome, n in outcomes.items() if n],
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Labels received so far, by model and outcome."""
        out: dict[str, dict[str, int]] = {}
        for model, outcome, n in self._db.execute("SELECT model, outcome, n FROM label_counts"):
            out.setdefault(model, {})[outcome] = int(n)
        return out

    # -- performance of windows ---------------------------------------------------------------------

    def mark_stale(self, model: str, ranges: Iterable[tuple[int, int]]) -> None:
        """Windows holding any of the record ranges gained labels: recompute them (inside a transaction)."""
        self._db.executemany(
            "UPDATE performance SET stale = 1 WHERE model = ? AND first_rec <= ? AND last_rec >= ? AND stale = 0",
            [(model, last, first) for first, last in ranges],
        )

    def put(self, row: PerformanceRow) -> None:
        """Store (or replace) a window's performance. Stale at once when labels landed in the window
        after `row.n_labelled` were read: the write and that check are one transaction."""
        kind, point = row.point if row.point is not None else (None, None)
        stale = self.count_in(row.model, row.first_rec, row.last_rec) != row.n_labelled
        self._db.execute(
            f"INSERT INTO performance ({_PERF_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (model, first_rec, last_rec) DO UPDATE SET result = excluded.result,"
            " n_labelled = excluded.n_labelled, updated_at = excluded.updated_at, stale = excluded.stale",
            (row.model, row.first_rec, row.last_rec, row.window_start, row.window_end, kind, point, row.n_records,
             row.n_labelled, json.dumps(row.result, allow_nan=True), row.evaluated_at, row.updated_at, int(stale)),
        )

    def stale(self, model: str, limit: int = 50) -> list[PerformanceRow]:
        """Windows to recompute, oldest first."""
        rows = self._db.execute(
            f"SELECT {_PERF_COLUMNS} FROM performance WHERE model = ? AND stale = 1 ORDER BY last_rec LIMIT ?", (model, limit)
        ).fetchall()
        return [_perf_row(r) for r in rows]

    def history(self, model: str, limit: int = 100, up_to: int | None = None) -> list[PerformanceRow]:
        """The model's newest windows' performance (ending at or before record `up_to`), newest first."""
        rows = self._db.execute(
            f"SELECT {_PERF_COLUMNS} FROM performance WHERE model = ? AND last_rec <= ? ORDER BY last_rec DESC, first_rec DESC LIMIT ?",
            (model, _MAX_REC if up_to is None else up_to, limit),
        ).fetchall()
        return [_perf_row(r) for r in rows]

    # -- retention ----------------------------------------------------------------------------------

    def trim(self, older_than: float) -> None:
        """Labels received, and windows evaluated, before `older_than` (inside a transaction)."""
        self._db.execute("DELETE FROM labels WHERE received_at < ?", (older_than,))
        self._db.execute("DELETE FROM performance WHERE evaluated_at < ?", (older_than,))
