"""Restart recovery: windows and results after a restart equal those without one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitor.capture import CapturedEvent
from monitor.core.config import Config
from monitor.core.store import EventStore
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import event, load
from tests.monitor.runtime.runtime_helpers import Clock, Recorder, events, run_monitor, stored_evaluations

BUDGET = {"false_alarm_budget": {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5}}


@pytest.mark.parametrize(
    ("toy", "shift", "restart_after"),
    # The calibrated case restarts when the CUSUM before the last window is already above zero (a
    # mild shift accumulates over windows): re-evaluating that window from a reset CUSUM would
    # give another verdict.
    [(None, 3.0, 5), (BUDGET, 0.5, 9)],
    ids=["fixed-thresholds", "calibrated-cusum"],
)
def test_windows_and_results_after_a_restart_equal_those_without_one(
    tmp_path: Path, toy: dict[str, Any] | None, shift: float, restart_after: int
) -> None:
    """Also for a budgeted model, whose CUSUM evidence carries over the restart (neither reset nor
    counted twice), so its later verdicts are those it would have reached without one."""
    straight_dir, restart_dir = tmp_path / "a", tmp_path / "b"
    straight_dir.mkdir()
    restart_dir.mkdir()
    cfg_a, cfg_b = load(straight_dir, toy=toy), load(restart_dir, toy=toy)
    batches = [events(range(i, i + 37), shift=0.0 if i < 150 else shift) for i in range(0, 444, 37)]

    async def scenario() -> None:
        straight, _ = await run_monitor(cfg_a, batches)
        await straight.stop()
        first, _ = await run_monitor(cfg_b, batches[:restart_after])
        before = first.snapshot()["toy"]
        await first.stop()
        second, _ = await run_monitor(cfg_b, [])
        after = second.snapshot()["toy"]
        # The restarted monitor exports what it had before, with no new traffic yet.
        assert after.window == before.window and after.window_records == before.window_records
        assert after.result is not None and after.result.to_dict() == before.result.to_dict()  # type: ignore[union-attr]
        for batch in batches[restart_after:]:
            await second.ingest(batch)
            second.evaluate_due()
        await second.stop()

    asyncio.run(scenario())
    a, b = stored_evaluations(cfg_a), stored_evaluations(cfg_b)
    assert len(a) >= 5 and a == b


async def snapshots_across_a_restart(cfg: Config, batch: list[CapturedEvent], clock: Clock,
                                     idle: float = 0.0) -> tuple[Any, Any]:
    """The model's snapshot after ingesting `batch`, and after a restart `idle` seconds later."""
    first, _ = await run_monitor(cfg, [batch], clock=clock)
    before = first.snapshot()["toy"]
    await first.stop()
    clock.now += idle
    second, _ = await run_monitor(cfg, [], clock=clock)
    after = second.snapshot()["toy"]
    await second.stop()
    return before, after


def test_a_restart_restores_the_time_windows_selection_not_its_record_range(tmp_path: Path) -> None:
    """Records stamped after the grid point but arriving among the window's own are not in it live;
    the result restored after a restart is computed from the same records, not the ordinal range."""
    cfg = load(tmp_path, window={"records": None, "duration": "10m", "step_duration": "1m", "min_records": 10})
    base = 1_800_000_000.0  # a multiple of 60
    clock = Clock(base + 62.5)
    stamps = [base + 30 + i for i in range(20)] + [base + 61.5] * 10 + [base + 55 + i / 10 for i in range(20)]
    batch = [CapturedEvent.model_validate(event(i, ts=ts, shift=4.0 if ts > base + 60 else 0.0)) for i, ts in enumerate(stamps)]

    before, after = asyncio.run(snapshots_across_a_restart(cfg, batch, clock))
    assert before.window is not None and before.window.n_records == 40 and before.result is not None
    assert after.window == before.window
    assert after.result is not None and after.result.to_dict() == before.result.to_dict()


def test_a_restart_after_a_quiet_spell_restores_the_last_result(tmp_path: Path) -> None:
    """Half an hour without traffic, then a restart: the last window's records are replayed anyway,
    so the drift it found is still reported (a firing alert does not resolve by itself)."""
    cfg = load(tmp_path, window={"records": None, "duration": "10m", "step_duration": "1m", "min_records": 10})
    base = 1_800_000_000.0
    clock = Clock(base + 62.5)
    batch = [CapturedEvent.model_validate(event(i, ts=base + i, shift=4.0)) for i in range(60)]

    before, after = asyncio.run(snapshots_across_a_restart(cfg, batch, clock, idle=1800))
    assert before.result is not None and before.result.dataset.drifted
    assert after.window == before.window
    assert after.result is not None and after.result.to_dict() == before.result.to_dict()


def test_a_late_event_does_not_cut_the_replay_of_a_restart_short(tmp_path: Path) -> None:
    """The newest stored event is stamped an hour late: the rebuild still replays the minute before it."""
    base = 1_800_000_000.0
    batch = [CapturedEvent.model_validate(event(i, ts=base + 10 + i)) for i in range(40)]
    late = [CapturedEvent.model_validate(event(99, ts=base - 3600))]

    async def window_at_the_next_point(restart: bool) -> Any:
        (root := tmp_path / str(restart)).mkdir()
        cfg = load(root, window={"records": None, "duration": "10m", "step_duration": "1m", "min_records": 10})
        clock = Clock(base + 50)
        mon = Monitor(cfg, clock=clock)
        await mon.start(background=False)
        await mon.ingest(batch)
        await mon.ingest(late)
        if restart:
            await mon.stop()
            mon = Monitor(cfg, clock=clock)
            await mon.start(background=False)
        clock.now = base + 62.5
        mon.evaluate_due()
        window = mon.snapshot()["toy"].window
        await mon.stop()
        return window

    async def scenario() -> None:
        live = await window_at_the_next_point(restart=False)
        assert live is not None and live.n_records == 40
        assert await window_at_the_next_point(restart=True) == live

    asyncio.run(scenario())


def test_a_count_point_outside_its_own_window_is_evaluated_once_across_a_restart(tmp_path: Path) -> None:
    """Record 100 (the count point) is stamped an hour late, so its window ends at record 99: the
    restart restores point 100 itself and neither stores nor reports that window again."""
    cfg = load(tmp_path, window={"records": 100, "step": 50, "duration": "10m", "min_records": 20})
    base = 1_800_000_000.0
    clock, recorder = Clock(base + 200), Recorder()
    batch = [CapturedEvent.model_validate(event(i, ts=base - 3600 if i == 99 else base + i)) for i in range(100)]

    async def scenario() -> None:
        first, _ = await run_monitor(cfg, [batch], clock=clock, listeners=[recorder])
        assert first.evaluate_due() == 0
        await first.stop()
        clock.now += 5
        second, _ = await run_monitor(cfg, [], clock=clock, listeners=[recorder])
        assert second.evaluate_due() == 0
        await second.ingest(events(range(100, 150), ts=base + 210))  # the next point is evaluated as usual
        assert second.evaluate_due() == 1
        await second.stop()

    asyncio.run(scenario())
    assert [v.point for v in recorder.calls] == [("count", 100), ("count", 150)]
    store = EventStore(cfg.server.store.path)
    try:
        assert [(e.first_rec, e.last_rec, e.point) for e in reversed(store.evaluations("toy"))] == [(1, 99, ("count", 100.0)), (51, 150, ("count", 150.0))]
    finally:
        store.close()


def test_a_restart_rereads_the_last_window_not_everything_since_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After one evaluated window, a trickle whose windows all stay below min_records: the start-up
    parses the last window's records and the 10 minutes its next windows need, not every retained
    event since that window, and still restores its result."""
    cfg = load(tmp_path, window={"records": None, "duration": "10m", "step_duration": "1m", "min_records": 10})
    base = 1_800_000_000.0
    clock = Clock(base + 62.5)
    first_window = [CapturedEvent.model_validate(event(i, ts=base + i, shift=4.0)) for i in range(60)]
    trickle = []
    for b in range(6):  # 300 records, one every 2 minutes: 5 per window
        batch = []
        for i in range(1000 + 50 * b, 1050 + 50 * b):
            clock.now += 120
            batch.append(CapturedEvent.model_validate(event(i, ts=clock.now)))
        trickle.append(batch)
    clock.now = base + 62.5

    async def scenario() -> tuple[Any, Any]:
        first, _ = await run_monitor(cfg, [first_window], clock=clock)
        for batch in trickle:
            clock.now = batch[-1].timestamp
            await first.ingest(batch)
            assert first.evaluate_due() == 0
        before = first.snapshot()["toy"]
        await first.stop()
        with caplog.at_level("INFO", logger="driftwatch.monitor"):
            second, _ = await run_monitor(cfg, [], clock=clock)
        after = second.snapshot()["toy"]
        await second.stop()
        return before, after

    before, after = asyncio.run(scenario())
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("window_rebuilt model=toy ")]
    fields = dict(kv.split("=") for kv in line.split()[1:])
    assert fields["records_total"] == "360" and fields["restored"] == "True"
    assert int(fields["replayed"]) <= 6 and fields["reread"] == "60"  # 10 minutes of the trickle; the last window
    assert after.window == before.window and after.window_records == before.window_records
    assert after.result is not None and after.result.to_dict() == before.result.to_dict()
