"""Per-model sliding windows over parsed records (pure: no I/O, no clock of its own).

The specification (grids, due points, timestamps judged against the caller's clock, what the buffer
keeps, what a restart restores) is in docs/windows.md; the property test in tests/monitor/test_windows.py
checks this module against a brute-force reading of it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.core.config import WindowConfig

__all__ = ["DueWindow", "SlidingWindow"]

_SLACK = 64
"""Least growth between two compactions of a time-based buffer (keeps compaction amortized O(1))."""


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

    def __init__(
        self,
        config: WindowConfig,
        *,
        last_rec: int = 0,
        last_end: float = 0.0,
        last_points: Mapping[str, float] | None = None,
        now: float | None = None,
    ) -> None:
        """Restart state: `last_rec`, the newest ordinal any evaluated window held; `last_end`, the
        newest evaluated window's end time; `last_points`, the newest evaluated point of each grid
        (`count`, `time`); `now`, the clock at the restart, so replayed records are judged as live
        ones would be. Points are restored as given, each grid's own: derived from `last_rec`, a
        count point whose window ended before it (late stamps), or that a later time window on both
        grids ended before, would be due again. A grid without a stored point (evaluations from
        before points were stored) derives it from `last_rec` and `last_end`."""
        self.config = config
        self._count_grid = config.step is not None or config.step_duration is None
        self._step = config.effective_step
        self._grid = float(config.step_duration) if config.step_duration else None
        points = last_points or {}
        derived = (last_rec // self._step) * self._step
        self._last_point = max(derived, int(points["count"])) if "count" in points else derived
        self._last_time = math.floor(last_end / self._grid) * self._grid if self._grid else 0.0
        if "time" in points:
            self._last_time = float(points["time"])
        self._evaluated = last_rec
        """Newest ordinal an evaluated window held: a time window holding nothing newer is not new."""
        self._timed = self._grid is not None or config.duration is not None
        """Whether timestamps select records (and so far-future ones are not windowed)."""
        self._clock = -math.inf
        """The largest clock seen (`add`, `due`, a restart): the arrival clock stamps are judged by."""
        self._point_clock = -math.inf
        """The clock when the newest count point's record arrived (ts(p) of a count window with `duration`)."""
        self._total = 0
        self._recs: list[int] = []  # ordinals, ascending (not contiguous: compaction keeps a subset)
        self._seqs: list[int] = []
        self._ts: list[float] = []
        self._records: list[dict[str, Any]] = []
        self._trim_at = 0
        if now is not None:
            self._tick(now)
            self._point_clock = self._clock

    @property
    def total(self) -> int:
        """Ordinal of the newest record seen."""
        return self._total

    @property
    def oldest_seq(self) -> int | None:
        """Sequence number of the oldest buffered record (what a replay must start at), None when empty."""
        return self._seqs[0] if self._seqs else None

    @property
    def horizon(self) -> float:
        """How far beyond its arrival clock a windowed record can be stamped (the far-future rule):
        a record stamped at or after ts that arrived before ts - horizon was never windowed."""
        grid = self._grid or 0.0
        return 2 * grid + max(grid, self.config.duration or 0.0)

    def needed_from(self, total: int, now: float, first_rec_since: Callable[[float], int]) -> int:
        """The ordinal a rebuild at `now` must replay records after.

        `first_rec_since(ts)` is the store's ordinal before the first record stamped at or after ts
        among those that arrived since ts - `horizon` (the older ones were never windowed)."""
        cfg, grid = self.config, self._grid
        counts = total - cfg.records - self._step if cfg.records else 0
        after = counts if self._count_grid else total
        if self._count_grid and cfg.duration is not None and not cfg.records:
            after = first_rec_since(now - cfg.duration)
        if grid:
            point = math.floor(now / grid) * grid  # the first time point a due() after now can end at
            if cfg.duration is not None:
                after = min(after, first_rec_since(point - cfg.duration))
            else:  # the `records` newest stamped at or before the point, and every one after it
                after = min(after, first_rec_since(point) - cfg.records)  # type: ignore[operator]
        return max(0, after)

    def add(self, seq: int, ts: float, rec_end: int, records: Sequence[dict[str, Any]], *, now: float) -> None:
        """Append one event's records, whose ordinals end at `rec_end`, arrived at clock `now`."""
        self._tick(now)
        start = rec_end - len(records) + 1
        if start <= self._total:
            return  # already seen (a rebuild overlapping live ingest)
        self._total = rec_end
        if (rec_end // self._step) * self._step >= start:
            self._point_clock = self._clock
        if self._timed and ts > self._far():
            return  # stamped far beyond the clock: never windowed (see the module docstring)
        self._recs.extend(range(start, rec_end + 1))
        self._seqs.extend([seq] * len(records))
        self._ts.extend([ts] * len(records))
        self._records.extend(records)
        if len(self._ts) >= self._trim_at:
            self._trim()

    def _far(self) -> float:
        grid = self._grid or 0.0
        return self._now_point() + grid + max(grid, self.config.duration or 0.0)

    def _now_point(self) -> float:
        """The clock floored to the time grid (the clock itself without one)."""
        return math.floor(self._clock / self._grid) * self._grid if self._grid else self._clock

    def _tick(self, now: float) -> None:
        self._clock = max(self._clock, now)

    def _trim(self) -> None:
        """Drop what no window that is not yet due can select (see the module docstring)."""
        pure_count = self._count_grid and not self._grid and self.config.duration is None
        if pure_count:  # what is needed is a suffix of ordinals: one bisect and a C-level delete
            drop = bisect_right(self._recs, self._floor_rec(self._next_point()))
            del self._recs[:drop], self._seqs[:drop], self._ts[:drop], self._records[:drop]
            self._trim_at = len(self._ts) + self._step
            return
        n = len(self._ts)
        need = [False] * n
        if self._count_grid:
            self._mark_count(need)
        if self._grid:
            self._mark_time(need)
        keep = [i for i in range(n) if need[i]]
        if len(keep) < n:
            if not keep or keep[0] == n - len(keep):  # a suffix: delete in place
                drop = n - len(keep)
                del self._recs[:drop], self._seqs[:drop], self._ts[:drop], self._records[:drop]
            else:
                self._recs = [self._recs[i] for i in keep]
                self._seqs = [self._seqs[i] for i in keep]
                self._ts = [self._ts[i] for i in keep]
                self._records = [self._records[i] for i in keep]
        self._trim_at = len(keep) + max(_SLACK, len(keep) // 2)

    def _next_point(self) -> int:
        """The smallest count point a window not yet handled can end at."""
        point = (self._total // self._step) * self._step
        return point if point > self._last_point else self._last_point + self._step

    def _floor_rec(self, p: int) -> float:
        """Ordinals at or below this are older than `records` before count point `p` (and the gauge's)."""
        return min(p, self._total) - self.config.records if self.config.records else -math.inf

    def _mark_count(self, need: list[bool]) -> None:
        p = self._next_point()
        floor_rec = self._floor_rec(p)
        cutoff = self._cutoff(self._point_clock if p <= self._total else self._clock)
        for i, (rec, ts) in enumerate(zip(self._recs, self._ts, strict=True)):
            if rec > p or (rec > floor_rec and ts > cutoff):
                need[i] = True

    def _mark_time(self, need: list[bool]) -> None:
        """Records the window at any T' >= the next time point can select.

        With `records`, the newest `records` stamped in (next - duration, next] are kept; an older
        record is needed only if stamped later than the earliest of those (without `duration`, never):
        at any later T' where it qualifies, those do too, and they are newer.
        """
        assert self._grid is not None
        nxt = max(self._last_time + self._grid, self._now_point())
        duration, limit = self.config.duration, self.config.records
        lo = nxt - duration if duration is not None else -math.inf
        counted, earliest = 0, math.inf
        for i in range(len(self._ts) - 1, -1, -1):
            ts = self._ts[i]
            if ts > nxt:  # bounded by the far-future rule
                need[i] = True
            elif ts > lo:
                if limit is None or counted < limit:
                    need[i] = True
                    counted += 1
                    earliest = min(earliest, ts)
                elif duration is not None and ts > earliest:
                    need[i] = True

    def _cutoff(self, clock: float) -> float:
        """Count windows with `duration`: records stamped at or before this are out."""
        return clock - self.config.duration if self.config.duration is not None else -math.inf

    def _count_slice(self, last: int, cutoff: float) -> list[int]:
        """Buffer indices of the count window ending at ordinal `last`, stamped after `cutoff`."""
        hi = bisect_right(self._recs, last)
        lo = bisect_right(self._recs, last - self.config.records) if self.config.records is not None else 0
        return [i for i in range(lo, hi) if self._ts[i] > cutoff]

    def _time_slice(self, end: float) -> list[int]:
        """Buffer indices of the time window ending at `end`: the newest `records` in (end - duration, end]."""
        lo = end - self.config.duration if self.config.duration is not None else -math.inf
        picked: list[int] = []
        for i in range(len(self._ts) - 1, -1, -1):
            if lo < self._ts[i] <= end:
                picked.append(i)
                if len(picked) == self.config.records:
                    break
        picked.reverse()
        return picked

    def records_between(self, first_rec: int, last_rec: int) -> list[dict[str, Any]] | None:
        """Buffered records with ordinals in [first_rec, last_rec], or None if not all are buffered."""
        lo, hi = bisect_left(self._recs, first_rec), bisect_right(self._recs, last_rec)
        if first_rec > last_rec or hi - lo != last_rec - first_rec + 1:
            return None
        return self._records[lo:hi]

    def current_size(self) -> int:
        """Records the next window would hold with what is buffered now (the `window_records` gauge)."""
        if not self._records:
            return 0
        if self._grid and self._clock > -math.inf:
            return len(self._time_slice(max(self._now_point(), self._last_time) + self._grid))
        return len(self._count_slice(self._total, self._cutoff(self._clock)))

    def due(self, now: float) -> DueWindow | None:
        """The newest grid point not yet handled, as a window, or None. Call `done()` after it.

        A time point whose window holds no record newer than the last evaluated window's is passed
        over here (marked handled, nothing returned)."""
        self._tick(now)
        if self._count_grid:
            point = (self._total // self._step) * self._step
            if point > self._last_point:
                return self._window(self._count_slice(point, self._cutoff(self._point_clock)), ("count", point))
        if self._grid:
            t = math.floor(now / self._grid) * self._grid
            if t > self._last_time:
                idx = self._time_slice(t)
                if not idx or self._recs[idx[-1]] <= self._evaluated:
                    self._last_time = t
                    return None
                return self._window(idx, ("time", t))
        return None

    def _window(self, idx: list[int], point: tuple[str, float]) -> DueWindow:
        if not idx:
            return DueWindow(0, 0, 0, 0, 0.0, 0.0, [], point)
        ts = [self._ts[i] for i in idx]
        return DueWindow(
            first_rec=self._recs[idx[0]],
            last_rec=self._recs[idx[-1]],
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
        if self.evaluable(window):
            self._evaluated = max(self._evaluated, window.last_rec)
        if self._count_grid and self._grid:  # both grids: one evaluation serves both
            self._last_point = max(self._last_point, (self._total // self._step) * self._step)
