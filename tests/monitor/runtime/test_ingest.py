"""Group-commit ingest against a real SQLite file: counts per outcome, concurrent batches, durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.capture import CapturedEvent
from monitor.core.config import Config
from monitor.core.store import EventStore
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import event, load
from tests.monitor.runtime.runtime_helpers import events, run_monitor, stored_evaluations


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
