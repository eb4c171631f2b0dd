"""Sliding windows: grid boundaries, duration limits, min_records, and equality after a rebuild."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.core.config import WindowConfig
from monitor.windows import DueWindow, SlidingWindow


def feed(window: SlidingWindow, sizes: list[int], *, start_seq: int = 1, start_rec: int = 0, ts_step: float = 1.0) -> None:
    """Events of the given record counts; record k carries {"k": k} and event i is stamped i * ts_step."""
    rec = start_rec
    for i, n in enumerate(sizes):
        seq = start_seq + i
        records = [{"k": rec + j + 1} for j in range(n)]
        rec += n
        window.add(seq, seq * ts_step, rec, records, now=seq * ts_step)


def drain(window: SlidingWindow, now: float = 0.0) -> list[DueWindow]:
    out = []
    while (due := window.due(now)) is not None:
        out.append(due)
        window.done(due)
    return out


def keys(w: DueWindow) -> list[Any]:
    return [r["k"] for r in w.records]


def test_count_grid_windows_end_on_step_multiples() -> None:
    w = SlidingWindow(WindowConfig(records=10, step=5, min_records=1))
    feed(w, [3, 3])
    assert w.due(0.0) is not None and keys(w.due(0.0)) == [1, 2, 3, 4, 5]  # type: ignore[arg-type]
    drain(w)
    feed(w, [3, 3, 3], start_seq=3, start_rec=6)  # 15 records: points 10 and 15 passed
    (due,) = drain(w)
    assert due.point == ("count", 15) and keys(due) == list(range(6, 16))  # only the newest point
    assert (due.first_rec, due.last_rec, due.first_seq, due.last_seq) == (6, 15, 2, 5)


def test_min_records_skips_small_windows() -> None:
    w = SlidingWindow(WindowConfig(records=10, step=2, min_records=5))
    feed(w, [2])
    due = w.due(0.0)
    assert due is not None and not w.evaluable(due)
    w.done(due)
    assert w.due(0.0) is None


def test_duration_limits_the_window_by_event_time() -> None:
    w = SlidingWindow(WindowConfig(records=100, duration=3.5, step=10, min_records=1))
    feed(w, [2] * 5)  # events stamped 1..5, records 1..10
    (due,) = drain(w)
    assert keys(due) == [3, 4, 5, 6, 7, 8, 9, 10] and due.start == 2.0  # stamped after 5 - 3.5
    assert w.current_size() == 8


def test_time_grid_windows() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=10.0, step_duration=5.0, min_records=1))
    feed(w, [1] * 12)  # stamped 1..12
    (due,) = drain(w, now=12.0)
    assert due.point == ("time", 10.0) and keys(due) == list(range(1, 11)) and due.end == 10.0
    assert drain(w, now=14.9) == []
    (due,) = drain(w, now=15.0)
    assert keys(due) == [6, 7, 8, 9, 10, 11, 12]


def test_buffer_is_bounded() -> None:
    w = SlidingWindow(WindowConfig(records=50, step=10, min_records=1))
    feed(w, [7] * 1000)
    assert len(w._records) < 50 + 2 * 10 + 7 and w.total == 7000  # records + 2 steps + one event


def test_records_between_only_answers_for_buffered_ranges() -> None:
    w = SlidingWindow(WindowConfig(records=10, step=5, min_records=1))
    feed(w, [5] * 10)
    assert [r["k"] for r in w.records_between(41, 50) or []] == list(range(41, 51))
    assert w.records_between(1, 10) is None


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=60),
    cut=st.integers(0, 60),
    records=st.integers(5, 40),
    step=st.integers(1, 40),
)
def test_windows_after_a_rebuild_equal_those_before(sizes: list[int], cut: int, records: int, step: int) -> None:
    """Stop after `cut` events, rebuild from 'the store' as the service does, continue: same windows."""
    step = min(step, records)
    cfg = WindowConfig(records=records, step=step, min_records=1)
    straight = SlidingWindow(cfg)
    feed(straight, sizes)
    expected = drain(straight)

    cut = min(cut, len(sizes))
    before = SlidingWindow(cfg)
    feed(before, sizes[:cut])
    got = drain(before)
    # Restart: the newest evaluated window and the stored events are all that survive.
    last_rec = got[-1].last_rec if got else 0
    after = SlidingWindow(cfg, last_rec=last_rec)
    total = sum(sizes[:cut])
    needed = after.needed_from(total, 0.0, lambda ts: 0)
    rec = 0
    for i, n in enumerate(sizes):
        rec += n
        if i < cut and rec <= needed:
            continue
        after.add(i + 1, float(i + 1), rec, [{"k": rec - n + j + 1} for j in range(n)], now=float(i + 1))
        if i == cut - 1 or i >= cut:
            got.extend(drain(after))
    # Draining after every event versus once at the end differ only in skipped stale points; the
    # newest window and every window both runs produced at the same point must be identical.
    final = drain(after)
    got.extend(final)
    assert got[-1] == expected[-1] if expected else not got
    by_point = {w.point: w for w in expected}
    for w in got:
        if w.point in by_point:
            assert w == by_point[w.point]


def test_records_stamped_after_the_time_point_take_no_slot_in_its_window() -> None:
    """150 records/s past T before the evaluator looks at T: the window at T still holds `records`."""
    w = SlidingWindow(WindowConfig(records=1000, step_duration=60.0, min_records=800))
    rec = 0
    for k in range(65 * 250):  # 250 records/s from t=0 to t=65, evaluated at t=65
        rec += 1
        w.add(rec, k / 250, rec, [{"k": rec}], now=k / 250)
    due = w.due(65.0)
    assert due is not None and due.point == ("time", 60.0) and w.evaluable(due)
    assert keys(due) == list(range(15002 - 1000, 15002))  # record k+1 is stamped k/250: the 1000 newest <= 60
    assert len(w._records) < 4000  # and the 1250 stamped after T did not cost the buffer its bound


def test_a_time_point_without_new_records_is_not_a_new_window_even_after_a_restart() -> None:
    cfg = WindowConfig(records=500, step_duration=60.0, min_records=1)
    w = SlidingWindow(cfg)
    feed(w, [1] * 500, ts_step=0.01)
    first = w.due(61.0)
    assert first is not None
    w.done(first)
    assert w.due(121.0) is None and w.due(181.0) is None  # the same 500 records: not evaluated again
    restarted = SlidingWindow(cfg, last_rec=first.last_rec, last_end=first.end)
    feed(restarted, [1] * 500, ts_step=0.01)
    assert restarted.due(241.0) is None
    w.add(501, 200.0, 501, [{"k": 501}], now=200.0)  # one new record: the next point is a new window
    (due,) = drain(w, now=241.0)
    assert due.last_rec == 501 and due.n_records == 500


def test_a_timestamp_in_milliseconds_neither_empties_nor_grows_a_duration_window() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=600.0, step_duration=60.0, min_records=100))
    t0 = 1_700_000_000.0
    for k in range(1200):
        w.add(k + 1, t0 + k / 2, k + 1, [{"k": k + 1}], now=t0 + k / 2)
    first = w.due(t0 + 500.0)  # the evaluator has looked once: the clock is known from here on
    assert first is not None
    w.done(first)
    w.add(1201, (t0 + 600) * 1000, 1201, [{"k": 1201}], now=t0 + 600)  # one sender stamps milliseconds
    for k in range(1200, 1210):
        w.add(k + 2, t0 + k / 2, k + 2, [{"k": k + 2}], now=t0 + k / 2)
    due = w.due(t0 + 606)
    assert due is not None and due.point == ("time", t0 + 600 - 20) and w.evaluable(due)
    assert due.n_records == 1161 and due.n_records == sum(1 for k in range(1210) if due.end - 600 < t0 + k / 2 <= due.end)
    assert 1201 not in keys(due)


def test_records_after_a_count_point_do_not_cut_its_duration_window() -> None:
    cfg = WindowConfig(records=None, duration=60.0, step=1000, min_records=1)
    for extra in (0, 300):
        w = SlidingWindow(cfg)
        for k in range(1, 1001 + extra):
            w.add(k, k / 10, k, [{"k": k}], now=k / 10)
        due = w.due(0.0)
        assert due is not None and due.point == ("count", 1000) and keys(due) == list(range(401, 1001))


def test_a_duration_buffer_stays_bounded_by_the_grid() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=10.0, step_duration=5.0, min_records=1))
    for k in range(1, 20_001):
        w.add(k, k / 100, k, [{"k": k}], now=k / 100)
        if k % 100 == 0:
            drain(w, now=k / 100)
    assert len(w._records) < 2 * (10 + 5) * 100 + 64


class BruteForce:
    """The windows exactly as the module docstring defines them, every record kept (the reference)."""

    def __init__(self, cfg: WindowConfig, now: float) -> None:
        self.cfg, self.step = cfg, cfg.effective_step
        self.count_grid = cfg.step is not None or cfg.step_duration is None
        self.grid = float(cfg.step_duration) if cfg.step_duration else 0.0
        self.timed = bool(self.grid) or cfg.duration is not None
        self.last_point, self.last_time, self.evaluated, self.total = 0, 0.0, 0, 0
        self.clock = self.point_clock = now
        self.recs: list[tuple[int, int, float, dict[str, Any]]] = []  # windowed records only

    def add(self, seq: int, ts: float, rec_end: int, records: list[dict[str, Any]], now: float) -> None:
        self.clock = max(self.clock, now)
        start = rec_end - len(records) + 1
        if start <= self.total:
            return
        self.total = rec_end
        if any(r % self.step == 0 for r in range(start, rec_end + 1)):
            self.point_clock = self.clock
        g, d = self.grid, self.cfg.duration or 0.0
        floored = math.floor(self.clock / g) * g if g else self.clock
        if self.timed and ts > floored + g + max(g, d):
            return
        self.recs += [(start + j, seq, ts, r) for j, r in enumerate(records)]

    def due(self, now: float) -> DueWindow | None:
        self.clock = max(self.clock, now)
        cfg = self.cfg
        if self.count_grid:
            p = (self.total // self.step) * self.step
            if p > self.last_point:
                cutoff = self.point_clock - cfg.duration if cfg.duration is not None else -math.inf
                lo = p - cfg.records if cfg.records is not None else -math.inf
                return self.make([s for s in self.recs if lo < s[0] <= p and s[2] > cutoff], ("count", p))
        if self.grid:
            t = math.floor(now / self.grid) * self.grid
            if t > self.last_time:
                lo = t - cfg.duration if cfg.duration is not None else -math.inf
                sel = [s for s in self.recs if lo < s[2] <= t]
                sel = sel[-cfg.records :] if cfg.records is not None else sel
                if not sel or sel[-1][0] <= self.evaluated:
                    self.last_time = t
                    return None
                return self.make(sel, ("time", t))
        return None

    @staticmethod
    def make(sel: list[tuple[int, int, float, dict[str, Any]]], point: tuple[str, float]) -> DueWindow:
        if not sel:
            return DueWindow(0, 0, 0, 0, 0.0, 0.0, [], point)
        ts = [s[2] for s in sel]
        end = max(ts) if point[0] == "count" else point[1]
        return DueWindow(sel[0][0], sel[-1][0], sel[0][1], sel[-1][1], min(ts), end, [s[3] for s in sel], point)

    def done(self, w: DueWindow) -> None:
        if w.point[0] == "count":
            self.last_point = int(w.point[1])
        else:
            self.last_time = w.point[1]
        if w.n_records >= self.cfg.min_records:
            self.evaluated = max(self.evaluated, w.last_rec)
        if self.count_grid and self.grid:
            self.last_point = max(self.last_point, (self.total // self.step) * self.step)


@st.composite
def window_configs(draw: st.DrawFn) -> WindowConfig:
    records = draw(st.none() | st.integers(3, 40))
    duration = draw(st.none() | st.floats(0.5, 30.0)) if records is not None else draw(st.floats(0.5, 30.0))
    step = draw(st.none() | st.integers(1, records or 40))
    step_duration = draw(st.none() | st.floats(0.5, 10.0))
    return WindowConfig(records=records, duration=duration, step=step, step_duration=step_duration, min_records=draw(st.integers(1, min(records or 10, 10))))


# ops: (gap, kind, stamp offset, n): the clock moves by gap; "add" an event stamped clock + offset, or "due"
_OPS = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.05, 0.5, 2.0, 7.0]),
        st.sampled_from(["add", "add", "add", "due"]),
        st.sampled_from([0.0, 0.0, 0.0, -3.0, -40.0, 5.0, 35.0, 80.0, math.inf]),  # inf: stamped in milliseconds
        st.integers(1, 5),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(cfg=window_configs(), ops=_OPS, start=st.floats(0.0, 50.0))
def test_every_due_window_equals_the_definition(cfg: WindowConfig, ops: list[tuple[float, str, float, int]], start: float) -> None:
    """Late, early and millisecond stamps, any grid: the trimmed buffer gives the brute-force windows."""
    w, ref = SlidingWindow(cfg, now=start), BruteForce(cfg, start)
    clock, rec, seq = start, 0, 0
    for gap, kind, offset, n in ops:
        clock += gap
        if kind == "add":
            seq, ts = seq + 1, clock * 1000 if offset == math.inf else clock + offset
            records = [{"k": rec + j + 1} for j in range(n)]
            rec += n
            w.add(seq, ts, rec, records, now=clock)
            ref.add(seq, ts, rec, records, clock)
            continue
        while (got := w.due(clock)) is not None:
            assert got == ref.due(clock)
            w.done(got)
            ref.done(got)
        assert ref.due(clock) is None


def test_far_future_stamps_are_judged_by_the_clock_at_arrival_not_the_last_evaluation() -> None:
    """The evaluator last looked at t0; records stamped at their arrival a minute later are current."""
    w = SlidingWindow(WindowConfig(records=None, duration=2.0, step_duration=1.0, min_records=1), now=0.0)
    assert w.due(0.0) is None
    for k in range(1, 601):
        w.add(k, k / 10, k, [{"k": k}], now=k / 10)
    due = w.due(60.0)
    assert due is not None and keys(due) == list(range(581, 601))


def test_a_count_and_time_grid_does_not_keep_millisecond_stamps() -> None:
    w = SlidingWindow(WindowConfig(records=100, step=50, step_duration=6.0, min_records=10), now=1e9)
    for k in range(1, 20_001):
        t = 1e9 + k / 100
        w.add(k, t * 1000 if k % 10 == 0 else t, k, [{"k": k}], now=t)
        if k % 100 == 0:
            drain(w, now=t)
    assert len(w._records) < 2 * (100 + 50 + 6 * 100) + 64


def test_a_count_point_stamped_ahead_does_not_cut_later_windows() -> None:
    """Point 100 is stamped an hour ahead: the window at 200 still holds every record of the last minute
    (and not that one: it is judged against the clock, like every stamp)."""
    w = SlidingWindow(WindowConfig(records=None, duration=60.0, step=100, min_records=1), now=0.0)
    got = []
    for k in range(1, 201):
        w.add(k, k / 10 + (3600 if k == 100 else 0), k, [{"k": k}], now=k / 10)
        got += drain(w, now=k / 10)
    assert [d.point for d in got] == [("count", 100), ("count", 200)] and keys(got[1]) == [k for k in range(1, 201) if k != 100]


def test_a_count_grid_with_duration_does_not_window_millisecond_stamps() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=60.0, step=500, min_records=100), now=1e9)
    for k in range(1, 30_001):
        t = 1e9 + k / 100
        w.add(k, t * 1000 if k % 10 == 3 else t, k, [{"k": k}], now=t)
        if k % 1000 == 0:
            last = drain(w, now=t)[-1]
    assert last.n_records == sum(1 for k in range(24_001, 30_001) if k % 10 != 3) and len(w._records) < 2 * 6000 + 64


def restarted(cfg: WindowConfig, evaluated: list[DueWindow], now: float, events: list[tuple[int, float, int, list[dict[str, Any]], float]]) -> SlidingWindow:
    """A window rebuilt as recovery.rebuild does: each grid's newest evaluated point restored, and the stored
    events (seq, stamp, rec_end, records, arrival) after `needed_from` replayed at the restart's clock."""
    points: dict[str, float] = {}
    for d in evaluated:
        points[d.point[0]] = max(points.get(d.point[0], -math.inf), d.point[1])
    w = SlidingWindow(cfg, last_rec=max((d.last_rec for d in evaluated), default=0),
                      last_end=evaluated[-1].end if evaluated else 0.0, last_points=points, now=now)

    def first_rec_since(ts: float) -> int:  # EventStore.first_rec_since, over the event list
        first = events[-1][2] if events else 0
        for _, stamp, end, records, arrival in reversed(events):
            if arrival < ts - w.horizon:
                break
            if stamp >= ts:
                first = end - len(records)
        return first

    after = w.needed_from(events[-1][2] if events else 0, now, first_rec_since)
    for seq, ts, end, records, _ in events:
        if end > after:
            w.add(seq, ts, end, records, now=now)
    return w


# Stamps at or before their arrival only: one stamped ahead may be windowed after a restart that was
# not before it (it is judged against the restart's clock: module docstring).
_PAST_OPS = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.05, 0.5, 2.0, 7.0]),
        st.sampled_from(["add", "add", "add", "due"]),
        st.sampled_from([0.0, 0.0, -3.0, -40.0, -200.0, -3600.0]),
        st.integers(1, 5),
    ),
    max_size=80,
)


@settings(max_examples=1000, deadline=None)
@given(cfg=window_configs(), before=_PAST_OPS, after=_PAST_OPS, start=st.floats(0.0, 50.0), idle=st.sampled_from([0.0, 1.0, 30.0, 500.0]))
@example(  # both grids: a count window ending before a later time window's last record
    cfg=WindowConfig(records=3, duration=2.0, step=1, step_duration=2.0, min_records=1),
    before=[(0.05, "add", 0.0, 1), (0.0, "add", -3.0, 1), (0.0, "add", -40.0, 1)], after=[], start=3.0, idle=0.0,
)
@example(  # a restart at 3 * g, which the window floors to period 2
    cfg=WindowConfig(records=3, duration=None, step=None, step_duration=3.344641436545774, min_records=1),
    before=[(7.0, "add", 0.0, 1)], after=[(0.0, "add", -40.0, 1)], start=0.0, idle=0.0,
)
def test_evaluations_after_a_restart_equal_those_without_one(
    cfg: WindowConfig, before: list[tuple[float, str, float, int]], after: list[tuple[float, str, float, int]], start: float, idle: float
) -> None:
    """Any grid, late stamps: a window rebuilt from the last evaluation and the replay gives
    the evaluations the live one gives, none twice (a count point whose own record is outside its
    window included). The restart is in a later time-grid period than the last look, since a time
    point passed over without new records is not stored (module docstring)."""
    live = SlidingWindow(cfg, now=start)
    events: list[tuple[int, float, int, list[dict[str, Any]], float]] = []
    clock, rec, last_look = start, 0, start
    evaluated: list[DueWindow] = []

    def run(ops: list[tuple[float, str, float, int]], windows: list[SlidingWindow]) -> list[list[DueWindow]]:
        nonlocal clock, rec, last_look
        outs: list[list[DueWindow]] = [[] for _ in windows]
        for gap, kind, offset, n in [*ops, (0.0, "due", 0.0, 0)]:
            clock += gap
            if kind == "add":
                rec += n
                events.append((len(events) + 1, clock + offset, rec, [{"k": rec - n + j + 1} for j in range(n)], clock))
                for w in windows:
                    w.add(*events[-1][:4], now=clock)
                continue
            last_look = clock
            for w, out in zip(windows, outs, strict=True):
                out += [d for d in drain(w, clock) if w.evaluable(d)]
        return outs

    evaluated = run(before, [live])[0]
    clock += idle
    if cfg.step_duration:  # the next period as the window floors it (3 * g / g can floor to 2)
        g = cfg.step_duration
        period = math.floor(last_look / g) + 1
        clock = max(clock, period * g)
        while math.floor(clock / g) < period:
            clock = math.nextafter(clock, math.inf)
    rebuilt = restarted(cfg, evaluated, clock, events)
    a, b = run(after, [live, rebuilt])
    assert a == b
    assert not {w.point for w in evaluated} & {w.point for w in b}
