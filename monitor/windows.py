"""Per-model sliding windows over parsed records (pure: no I/O, no clock of its own).

Records of a model are numbered 1, 2, 3, … in commit order (the store's `rec_end` ordinals), so
window boundaries are a function of the data, not of when the evaluation loop happens to run:

- count grid (`step`, or neither step setting): a window is due at every multiple of
  `effective_step` records; the window ending at ordinal p holds the last `records` records up
  to p, and with `duration` only those stamped after ts(p) - duration.
- time grid (`step_duration`): a window is due at every multiple of `step_duration` seconds
  (epoch-aligned, on the caller's clock); the window ending at T holds records stamped in
  (T - duration, T], at most the last `records` of them.

When several grid points passed since the last evaluation, only the newest is due (an evaluation
is a snapshot of now; catching up on stale ones would only delay it). Windows with fewer than
`min_records` records are skipped. After a restart the same grid points give the same windows, as
long as the buffer is refilled with the same records (`SlidingWindow.needed_from`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import WindowConfig

__all__ = ["DueWindow", "SlidingWindow"]


@dataclass(frozen=True, slots=True)
class DueWindow:
    """A window to evaluate: its records and where they sit (ordinals, store seqs, timestamps)."""

    first_rec: int
    last_rec: int
    first_seq: int
    last_seq: int
    start: float
    end: float
    records: list[dict[str, Any]]
    point: tuple[str, float]
    """The grid point (`count` ordinal or `time` seconds) this window ends at."""

    @property
    def n_records(self) -> int:
        return len(self.records)


class SlidingWindow:
    """The recent records of one model and the bookkeeping of which grid points were evaluated."""

    def __init__(self, config: WindowConfig, *, last_rec: int = 0, last_end: float = 0.0) -> None:
        """`last_rec`/`last_end`: the newest evaluated window's last ordinal and end time (restart)."""
        self.config = config
        self._count_grid = config.step is not None or config.step_duration is None
        self._step = config.effective_step
        self._last_point = (last_rec // self._step) * self._step
        self._last_time = math.floor(last_end / config.step_duration) * config.step_duration if config.step_duration else 0.0
        self._first = 1  # ordinal of _seqs[0]
        self._seqs: list[int] = []
        self._ts: list[float] = []
        self._records: list[dict[str, Any]] = []

    @property
    def total(self) -> int:
        """Ordinal of the newest record seen."""
        return self._first + len(self._records) - 1

    def needed_from(self, total: int, now: float) -> tuple[int, float | None]:
        """What a rebuild must replay: records after this ordinal, and/or stamped after this time."""
        after = max(0, total - (self.config.records or 0) - self._step) if self.config.records else 0
        horizon = None
        if self.config.duration is not None and not self.config.records:
            horizon = now - self.config.duration - (self.config.step_duration or 0.0)
        return after, horizon

    def add(self, seq: int, ts: float, rec_end: int, records: Sequence[dict[str, Any]]) -> None:
        """Append one event's records, whose ordinals end at `rec_end` (gaps restart the buffer)."""
        start = rec_end - len(records) + 1
        if start != self.total + 1:
            if start <= self.total:
                return  # already seen (a rebuild overlapping live ingest)
            self._first, self._seqs, self._ts, self._records = start, [], [], []
        self._seqs.extend([seq] * len(records))
        self._ts.extend([ts] * len(records))
        self._records.extend(records)
        self._trim()

    def _trim(self) -> None:
        """Keep what the next due window can need: `records + step` records, or `duration + step`.

        A count window trims only once a whole step can go: deleting from the front of a list moves
        the rest, so trimming on every event would cost O(buffer) per event.
        """
        drop = 0
        if self.config.records is not None:
            drop = max(0, len(self._records) - self.config.records - self._step)
            if drop < self._step:
                return
        elif self.config.duration is not None and self._ts:
            horizon = self._ts[-1] - self.config.duration - (self.config.step_duration or 0.0)
            while drop < len(self._ts) and self._ts[drop] <= horizon:  # arrival order, not sorted by ts
                drop += 1
        if drop:
            del self._seqs[:drop], self._ts[:drop], self._records[:drop]
            self._first += drop

    def _slice(self, last: int, start_after: float | None, end_at: float | None) -> tuple[int, list[int]]:
        """Buffer indices of the window ending at ordinal `last` (inclusive), filtered by time."""
        hi = last - self._first + 1
        lo = max(0, hi - self.config.records) if self.config.records is not None else 0
        idx = range(lo, hi)
        if start_after is not None or end_at is not None:
            lo_t = -math.inf if start_after is None else start_after
            hi_t = math.inf if end_at is None else end_at
            picked = [i for i in idx if lo_t < self._ts[i] <= hi_t]
            if self.config.records is not None and end_at is not None:
                picked = picked[-self.config.records :]
            return hi, picked
        return hi, list(idx)

    def records_between(self, first_rec: int, last_rec: int) -> list[dict[str, Any]] | None:
        """Buffered records with ordinals in [first_rec, last_rec], or None if not all are buffered."""
        if first_rec < self._first or last_rec > self.total or first_rec > last_rec:
            return None
        return self._records[first_rec - self._first : last_rec - self._first + 1]

    def current_size(self) -> int:
        """Records in the window ending at the newest record (the `window_records` gauge)."""
        if not self._records:
            return 0
        cutoff = self._ts[-1] - self.config.duration if self.config.duration is not None else None
        return len(self._slice(self.total, cutoff, None)[1])

    def due(self, now: float) -> DueWindow | None:
        """The newest grid point not yet handled, as a window, or None. Call `done()` after it."""
        if self._count_grid:
            point = (self.total // self._step) * self._step
            if point > self._last_point and point >= self._first:
                ts_end = self._ts[point - self._first]
                cutoff = ts_end - self.config.duration if self.config.duration is not None else None
                return self._window(self._slice(point, cutoff, None)[1], ("count", point))
        if self.config.step_duration:
            t = math.floor(now / self.config.step_duration) * self.config.step_duration
            if t > self._last_time and self._records:
                cutoff = t - self.config.duration if self.config.duration is not None else None
                return self._window(self._slice(self.total, cutoff, t)[1], ("time", t))
        return None

    def _window(self, idx: list[int], point: tuple[str, float]) -> DueWindow:
        if not idx:
            return DueWindow(0, 0, 0, 0, 0.0, 0.0, [], point)
        ts = [self._ts[i] for i in idx]
        return DueWindow(
            first_rec=self._first + idx[0],
            last_rec=self._first + idx[-1],
            first_seq=self._seqs[idx[0]],
            last_seq=self._seqs[idx[-1]],
            start=min(ts),
            end=max(ts) if point[0] == "count" else point[1],
            records=[self._records[i] for i in idx],
            point=point,
        )

    def evaluable(self, window: DueWindow) -> bool:
        return window.n_records >= self.config.min_records

    def done(self, window: DueWindow) -> None:
        """Mark the window's grid point handled (evaluated or skipped for too few records)."""
        kind, value = window.point
        if kind == "count":
            self._last_point = int(value)
        else:
            self._last_time = value
        if self._count_grid and self.config.step_duration:  # both grids: one evaluation serves both
            self._last_point = max(self._last_point, (self.total // self._step) * self._step)
