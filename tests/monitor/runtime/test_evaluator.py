"""The evaluator: drift found in shifted traffic, verdicts to every listener, failures that stop nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from monitor.capture import CapturedEvent
from monitor.runtime import Monitor, WindowVerdict
from tests.monitor.ingest_helpers import RETRAIN_DRY_RUN, event, load
from tests.monitor.runtime.runtime_helpers import Recorder, events, run_monitor, stored_evaluations


def test_drift_is_detected_in_shifted_traffic(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon, _ = await run_monitor(cfg, [events(range(0, 100), shift=5.0)])
        try:
            result = mon.snapshot()["toy"].result
            assert result is not None and result.dataset.drifted
            assert {"f0", "f1", "f2"} <= {f.name for f in result.drifted_features()}
        finally:
            await mon.stop()

    asyncio.run(scenario())


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def on_verdict(self, verdict: WindowVerdict) -> None:
        self.calls += 1
        raise RuntimeError("listener down")


def test_listeners_hear_every_verdict(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    recorder = Recorder()

    async def scenario() -> None:
        mon, _ = await run_monitor(cfg, [events(range(0, 100), shift=5.0)], listeners=[recorder])
        await mon.stop()

    asyncio.run(scenario())
    (verdict,) = recorder.calls
    assert verdict.model == "toy"
    assert verdict.n_records == 100
    assert verdict.result.dataset.drifted
    assert verdict.result.dataset.drift_share > 0.5
    assert "f2" in verdict.drifted_columns
    assert verdict.window_start <= verdict.window_end
    assert verdict.point == ("count", 100)
    stored = stored_evaluations(cfg)
    assert len(stored) == 1
    assert json.loads(stored[0][-1]) == verdict.result.to_dict()


def test_a_listener_that_raises_stops_neither_evaluation_nor_other_listeners(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = load(tmp_path)
    failing, recorder = Failing(), Recorder()

    async def scenario() -> None:
        mon, _ = await run_monitor(cfg, [events(range(0, 100)), events(range(100, 200), shift=5.0)],
                                   listeners=[failing, recorder])
        try:
            assert mon.snapshot()["toy"].result is not None
        finally:
            await mon.stop()

    asyncio.run(scenario())
    assert failing.calls == 2
    assert [v.point for v in recorder.calls] == [("count", 100), ("count", 200)]
    assert len(stored_evaluations(cfg)) == 2
    assert "verdict_listener_error model=toy listener=Failing" in caplog.text


def test_a_window_that_cannot_be_evaluated_is_skipped_and_other_models_go_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            await mon.ingest(events(range(0, 50)) + [CapturedEvent.model_validate(event(i, model="plain")) for i in range(50)])
            with mon._state.lock:  # a value parsing no longer produces (an int pandas cannot hold), but older versions did
                mon._state.models["toy"].window.records_between(50, 50)[0]["f0"] = 10**400  # type: ignore[index]
            assert mon.evaluate_due() == 1  # `plain` evaluated, `toy`'s window skipped
            assert mon.snapshot()["plain"].result is not None and mon.snapshot()["toy"].result is None
            assert "window_evaluation_failed model=toy" in caplog.text
            await mon.ingest(events(range(100, 200)))
            assert mon.evaluate_due() == 1 and mon.snapshot()["toy"].result is not None  # once it slid out: evaluated
        finally:
            await mon.stop()

    asyncio.run(scenario())


def test_missing_reference_leaves_the_monitor_unready_but_ingesting(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    (tmp_path / "reference.csv").unlink()

    async def scenario() -> None:
        mon, results = await run_monitor(cfg, [events(range(0, 60))])
        try:
            assert not mon.ready and set(mon.profile_errors) == {"toy", "plain"}
            assert results[0].accepted == 60 and mon.snapshot()["toy"].result is None
        finally:
            await mon.stop()

    asyncio.run(scenario())


def test_one_far_future_event_does_not_switch_off_window_retraining(tmp_path: Path) -> None:
    """Window order is the record order, not the senders' clocks: a single event stamped far in the
    future once made every later window "stale" for the retraining policy, for good."""
    from retrain.controller import RetrainController

    cfg = load(tmp_path, retrain={**RETRAIN_DRY_RUN, "consecutive_windows": 3}, window={"records": 100, "min_records": 10})
    controller = RetrainController(cfg, tmp_path / "retrain.db")

    async def scenario() -> None:
        mon = Monitor(cfg, listeners=[controller])
        await mon.start(background=False)
        try:
            for b in range(4):
                far = {99: 1_700_000_000.0 + 1e11}  # the first window's newest event, stamped in the year 5200
                await mon.ingest([CapturedEvent.model_validate(event(i, shift=5.0, ts=far.get(i))) for i in range(b * 100, b * 100 + 100)])
                mon.evaluate_due()
        finally:
            await mon.stop()

    try:
        asyncio.run(scenario())
        decisions = [(d.action, d.reason) for d in reversed(controller.history.recent_decisions("toy"))]
    finally:
        controller.stop()
    assert decisions[:3] == [("none", "streak_building"), ("none", "streak_building"), ("skip", "dry_run")], decisions
    assert ("none", "stale_window") not in decisions
