"""The Monitor against a real SQLite file: counting, evaluation, CloudEvent joins, restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from ingest_helpers import RETRAIN_DRY_RUN, event, load

from monitor.capture import CapturedEvent
from monitor.capture.cloudevents import parse_cloudevent
from monitor.config import Config
from monitor.runtime import Monitor, WindowVerdict
from monitor.store import EventStore, PendingHalf


def events(ids: range, **kw: Any) -> list[CapturedEvent]:
    return [CapturedEvent.model_validate(event(i, **kw)) for i in ids]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run_monitor(config: Config, batches: list[list[CapturedEvent]], **kw: Any) -> tuple[Monitor, list[Any]]:
    mon = Monitor(config, **kw)
    await mon.start(background=False)
    results = []
    for batch in batches:
        results.append(await mon.ingest(batch))
        mon.evaluate_due()
    return mon, results


def stored_evaluations(config: Config, model: str = "toy") -> list[tuple[Any, ...]]:
    store = EventStore(config.server.store.path)
    try:
        return [(e.first_rec, e.last_rec, e.first_seq, e.last_seq, e.n_records, e.window_start, e.window_end, json.dumps(e.result, sort_keys=True))
                for e in reversed(store.evaluations(model, limit=1000))]
    finally:
        store.close()


def test_counts_and_evaluation(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon, results = await run_monitor(cfg, [
            events(range(0, 60)),
            events(range(50, 70)) + events(range(900, 902), model="ghost"),
            [CapturedEvent.model_validate(event(5000, request={"body": "{oops"})), CapturedEvent.model_validate(event(5001, status=503))],
        ])
        try:
            assert [r.to_dict() for r in results] == [
                {"accepted": 60, "duplicates": 0, "rejected": 0, "reasons": {}},
                {"accepted": 10, "duplicates": 10, "rejected": 2, "reasons": {"unknown_model": 2}},
                {"accepted": 0, "duplicates": 0, "rejected": 2, "reasons": {"invalid_json": 1, "upstream_error": 1}},
            ]
            snap = mon.snapshot()["toy"]
            assert snap.ingested == 70 and snap.rejected == {"invalid_json": 1, "upstream_error": 1}
            assert snap.window is not None and (snap.window.n_records, snap.window.first_seq, snap.window.last_seq) == (50, 1, 50)
            assert snap.result is not None and set(snap.result.features) == {"f0", "f1", "f2", "color", "score"}
            assert snap.window_records == 70 and mon.unknown_model_events == 2
        finally:
            await mon.stop()

    asyncio.run(scenario())
    assert len(stored_evaluations(cfg)) == 1


def test_concurrent_batches_are_each_answered_and_stored_once(tmp_path: Path) -> None:
    """Batches in flight together share a commit, yet each gets its own counts; overlaps count once."""
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            batches = [events(range(20 * k, 20 * k + 30)) for k in range(12)]  # each overlaps the next by 10 ids
            batches.append(events(range(5000, 5005), model="ghost"))
            results = await asyncio.gather(*(mon.ingest(b) for b in batches))
        finally:
            await mon.stop()
        assert [r.accepted + r.duplicates for r in results[:-1]] == [30] * 12
        assert sum(r.accepted for r in results) == 250 and sum(r.duplicates for r in results) == 110
        assert results[-1].to_dict() == {"accepted": 0, "duplicates": 0, "rejected": 5, "reasons": {"unknown_model": 5}}
        assert mon.snapshot()["toy"].ingested == 250

    asyncio.run(scenario())
    store = EventStore(cfg.server.store.path)
    try:
        assert store.count_events("toy") == {None: 250}
        assert sorted(int(e.id.rsplit("-", 1)[-1]) for e in store.accepted_since("toy", 0)) == list(range(250))
    finally:
        store.close()


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


class Recorder:
    def __init__(self) -> None:
        self.calls: list[WindowVerdict] = []

    def on_verdict(self, verdict: WindowVerdict) -> None:
        self.calls.append(verdict)


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


def kserve(kind: str, ce_id: str, body: dict[str, Any], model: str = "toy") -> Any:
    headers = {
        "content-type": "application/json", "ce-specversion": "1.0", "ce-id": ce_id,
        "ce-type": f"org.kubeflow.serving.inference.{kind}", "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": model, "ce-namespace": "ml", "ce-component": "predictor", "ce-endpoint": "default",
        "ce-metadata": "{}",
    }
    return parse_cloudevent(headers, json.dumps(body).encode())


def test_cloudevent_halves_join_in_either_order_and_expire(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    clock = Clock()
    req = {"instances": [[0.1, 5.0, 3.0, "red"]]}
    resp = {"predictions": [{"score": 0.5}]}

    async def scenario() -> None:
        mon = Monitor(cfg, clock=clock)
        await mon.start(background=False)
        try:
            assert (await mon.ingest_half(kserve("request", "a", req))).status == "pending"
            assert (await mon.ingest_half(kserve("response", "a", resp))).status == "joined"
            assert (await mon.ingest_half(kserve("response", "b", resp))).status == "pending"
            assert (await mon.ingest_half(kserve("response", "b", resp))).status == "duplicate"
            assert (await mon.ingest_half(kserve("request", "b", req))).status == "joined"
            assert (await mon.ingest_half(kserve("request", "a", req))).status == "duplicate"
            await mon.ingest_half(kserve("request", "lonely-req", req))
            await mon.ingest_half(kserve("response", "lonely-resp", resp))
            assert mon._expire_halves() == 0  # not yet past the join timeout
            clock.now += 2.0
            assert mon._expire_halves() == 2
            snap = mon.snapshot()["toy"]
            assert snap.ingested == 2 and snap.rejected == {"unmatched_request": 1, "unmatched_response": 1}
            assert snap.window_records == 3  # the lonely request still gives features
        finally:
            await mon.stop()
        store = EventStore(cfg.server.store.path)
        assert store.count_events("toy") == {None: 3, "unmatched_response": 1} and store.pending_count() == 0
        joined = next(e for e in store.accepted_since("toy", 0) if e.id == "a")
        assert json.loads(CapturedEvent.model_validate_json(joined.raw).response.body) == resp  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_an_unusable_pending_half_is_counted_and_blocks_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A half the join cannot store (here: a lone surrogate an older version let into the file)
    once failed the whole expiry transaction on every tick, which also stopped evaluation."""
    cfg = load(tmp_path)
    clock = Clock()
    poison = {"model": "toy", "id": "bad", "kind": "request", "time": None,
              "body": {"body": "{}", "encoding": "utf-8", "truncated": False, "content_type": None},
              "context": {"namespace": "a\ud800"}}

    async def scenario() -> None:
        mon = Monitor(cfg, clock=clock)
        await mon.start(background=False)
        try:
            side = EventStore(cfg.server.store.path)  # what an older driftwatch left in the file
            with side.transaction():
                side.put_half(PendingHalf("toy", "bad", "request", clock.now, json.dumps(poison)))
            side.close()
            await mon.ingest_half(kserve("request", "good", {"instances": [[0.1, 5.0, 3.0, "red"]]}))
            clock.now += 2.0
            assert mon._expire_halves() == 2
            snap = mon.snapshot()["toy"]
            assert snap.rejected == {"parse_error": 1, "unmatched_request": 1} and snap.window_records == 1
            assert mon._expire_halves() == 0  # gone, not retried on every tick
            assert "cloudevent_half_unusable" in caplog.text and "ud800" not in caplog.text
        finally:
            await mon.stop()

    asyncio.run(scenario())


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


def test_pending_halves_survive_a_restart(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        await mon.ingest_half(kserve("response", "r1", {"predictions": [{"score": 0.2}]}))
        await mon.stop()
        mon = Monitor(cfg)
        await mon.start(background=False)
        outcome = await mon.ingest_half(kserve("request", "r1", {"instances": [[0.1, 5.0, 3.0, "red"]]}))
        assert outcome.status == "joined" and outcome.reason is None
        assert mon.snapshot()["toy"].ingested == 1
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


def test_store_durability_follows_the_config(tmp_path: Path) -> None:
    """`full` (default) fsyncs each ingest commit; `normal` is the measured, documented opt-in."""
    for setting, pragma in (("full", 2), ("normal", 1)):
        d = tmp_path / setting
        d.mkdir()
        cfg = load(d, server={"store": {"path": "s.db", "synchronous": setting}})

        async def scenario(cfg: Config = cfg) -> int:
            mon = Monitor(cfg)
            await mon.start(background=False)
            try:
                return int(mon._state.require_store()._db.execute("PRAGMA synchronous").fetchone()[0])
            finally:
                await mon.stop()

        assert asyncio.run(scenario()) == pragma


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
