"""Sliding windows: grid boundaries, duration limits, min_records, and equality after a rebuild."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import WindowConfig
from monitor.windows import DueWindow, SlidingWindow


def feed(window: SlidingWindow, sizes: list[int], *, start_seq: int = 1, start_rec: int = 0, ts_step: float = 1.0) -> None:
    """Events of the given record counts; record k carries {"k": k} and event i is stamped i * ts_step."""
    rec = start_rec
    for i, n in enumerate(sizes):
        seq = start_seq + i
        records = [{"k": rec + j + 1} for j in range(n)]
        rec += n
        window.add(seq, seq * ts_step, rec, records)


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
        after.add(i + 1, float(i + 1), rec, [{"k": rec - n + j + 1} for j in range(n)])
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
        w.add(rec, k / 250, rec, [{"k": rec}])
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
    w.add(501, 200.0, 501, [{"k": 501}])  # one new record: the next point is a new window
    (due,) = drain(w, now=241.0)
    assert due.last_rec == 501 and due.n_records == 500


def test_a_timestamp_in_milliseconds_neither_empties_nor_grows_a_duration_window() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=600.0, step_duration=60.0, min_records=100))
    t0 = 1_700_000_000.0
    for k in range(1200):
        w.add(k + 1, t0 + k / 2, k + 1, [{"k": k + 1}])
    first = w.due(t0 + 500.0)  # the evaluator has looked once: the clock is known from here on
    assert first is not None
    w.done(first)
    w.add(1201, (t0 + 600) * 1000, 1201, [{"k": 1201}])  # one sender stamps milliseconds
    for k in range(1200, 1210):
        w.add(k + 2, t0 + k / 2, k + 2, [{"k": k + 2}])
    due = w.due(t0 + 606)
    assert due is not None and due.point == ("time", t0 + 600 - 20) and w.evaluable(due)
    assert due.n_records == 1161 and due.n_records == sum(1 for k in range(1210) if due.end - 600 < t0 + k / 2 <= due.end)
    assert 1201 not in keys(due)


def test_records_after_a_count_point_do_not_cut_its_duration_window() -> None:
    cfg = WindowConfig(records=None, duration=60.0, step=1000, min_records=1)
    for extra in (0, 300):
        w = SlidingWindow(cfg)
        for k in range(1, 1001 + extra):
            w.add(k, k / 10, k, [{"k": k}])
        due = w.due(0.0)
        assert due is not None and due.point == ("count", 1000) and keys(due) == list(range(401, 1001))


def test_a_duration_buffer_stays_bounded_by_the_grid() -> None:
    w = SlidingWindow(WindowConfig(records=None, duration=10.0, step_duration=5.0, min_records=1))
    for k in range(1, 20_001):
        w.add(k, k / 100, k, [{"k": k}])
        if k % 100 == 0:
            drain(w, now=k / 100)
    assert len(w._records) < 2 * (10 + 5) * 100 + 64
