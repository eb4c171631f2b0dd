"""Delayed labels: every label counted once by outcome, joined ones back-filled into their windows.

A real `Monitor` on a real SQLite file; labels go through the wire decoder the API uses.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from monitor.capture.labels import decode_labels
from monitor.core.store import EventStore
from monitor.runtime import LabelResult, Monitor
from tests.monitor.runtime.perf_helpers import (
    NOW,
    classifier_event,
    draw,
    labels_for,
    model_proba,
    stream,
    write_classifier_config,
)
from tests.monitor.runtime.runtime_helpers import Clock

X = draw(200, seed=11)
Y = labels_for(X, seed=12)


def batch(items: list[dict[str, Any]]) -> tuple[Any, Any]:
    return decode_labels(json.dumps({"model": "clf", "labels": items}).encode())


def label(i: int, value: Any = None) -> dict[str, Any]:
    return {"id": f"p-{i}", "label": int(Y[i]) if value is None else value}


async def started(cfg: Any, clock: Clock) -> Monitor:
    mon = Monitor(cfg, clock=clock)
    await mon.start(background=False)
    return mon


async def send(mon: Monitor, items: list[dict[str, Any]]) -> LabelResult:
    return await mon.ingest_labels(*batch(items))


@pytest.fixture
def cfg(tmp_path: Path) -> Any:
    return write_classifier_config(tmp_path)


def test_every_label_gets_exactly_one_outcome(cfg: Any) -> None:
    """Out of order, duplicated, unknown, too late, for a failed call, the wrong count: each counted once."""
    clock = Clock(NOW)

    async def scenario() -> LabelResult:
        mon = await started(cfg, clock)
        try:
            await mon.ingest(stream(X[:60]))
            old = classifier_event(1000, draw(1, seed=1), ts=NOW - 2 * 86400)  # two days before: past the 1d delay
            failed = classifier_event(1001, draw(1, seed=2), ts=NOW - 60, status=500)
            await mon.ingest([old, failed])
            items = [label(i) for i in reversed(range(10, 40))]  # out of order
            items += [label(15), label(16)]  # duplicates inside the batch
            items += [{"id": "p-9999", "label": 1}, {"id": "p-1000", "label": 0}, {"id": "p-1001", "label": 1}]
            items += [{"id": "p-50", "labels": [0, 1]}]  # two labels for a one-instance event
            return await send(mon, items)
        finally:
            await mon.stop()

    result = asyncio.run(scenario())
    assert result.outcomes == {"joined": 30, "duplicate": 2, "unknown_id": 1, "too_late": 1, "event_rejected": 1,
                               "count_mismatch": 1, "invalid": 0}


def test_labels_sent_again_are_duplicates_and_change_nothing(cfg: Any) -> None:
    clock = Clock(NOW)

    async def scenario() -> tuple[LabelResult, LabelResult]:
        mon = await started(cfg, clock)
        try:
            await mon.ingest(stream(X[:40]))
            first = await send(mon, [label(i) for i in range(40)])
            again = await send(mon, [label(i, value=1 - int(Y[i])) for i in range(40)])  # a "correction" is a duplicate too
            return first, again
        finally:
            await mon.stop()

    first, again = asyncio.run(scenario())
    assert (first.outcomes["joined"], again.outcomes["duplicate"], again.outcomes["joined"]) == (40, 40, 0)


def test_outcome_counts_survive_a_restart(cfg: Any) -> None:
    clock = Clock(NOW)

    async def scenario() -> dict[str, int]:
        mon = await started(cfg, clock)
        await mon.ingest(stream(X[:20]))
        await send(mon, [label(i) for i in range(20)] + [{"id": "nope", "label": 1}])
        await mon.stop()
        again = await started(cfg, clock)
        try:
            perf = again.snapshot()["clf"].performance
            assert perf is not None
            return dict(perf.labels)
        finally:
            await again.stop()

    counts = asyncio.run(scenario())
    assert (counts["joined"], counts["unknown_id"]) == (20, 1)


def test_a_multi_instance_event_takes_one_label_per_record(cfg: Any) -> None:
    clock = Clock(NOW)

    async def scenario() -> LabelResult:
        mon = await started(cfg, clock)
        try:
            await mon.ingest([classifier_event(7, X[:5], ts=NOW - 10)])
            return await send(mon, [{"id": "p-7", "labels": [int(v) for v in Y[:5]]}])
        finally:
            await mon.stop()

    assert asyncio.run(scenario()).outcomes["joined"] == 1


def test_late_labels_are_back_filled_into_evaluated_windows(cfg: Any) -> None:
    """Windows evaluated before their labels came are re-evaluated: realized accuracy equals scikit-learn's on them."""
    clock = Clock(NOW)

    async def scenario() -> tuple[list[Any], list[Any]]:
        mon = await started(cfg, clock)
        try:
            for start in range(0, 200, 50):
                await mon.ingest(stream(X[start : start + 50], first_id=start))
                mon.evaluate_due()
            before = mon.performance_history("clf")
            await send(mon, [label(i) for i in reversed(range(100, 200))])
            mon.refresh_performance()
            return before, mon.performance_history("clf")
        finally:
            await mon.stop()

    before, after = asyncio.run(scenario())
    newest = after[0]
    predicted = (model_proba(X[100:200]) > 0.5).astype(int)
    assert [r.n_labelled for r in before] == [0, 0, 0, 0]
    assert [(r.last_rec, r.n_labelled) for r in after] == [(200, 100), (150, 50), (100, 0), (50, 0)]
    assert newest.result["realized"]["accuracy"] == pytest.approx(accuracy_score(Y[100:200], predicted))


def test_the_newest_judged_window_is_exported_and_restored(cfg: Any) -> None:
    clock = Clock(NOW)

    async def scenario() -> tuple[Any, Any]:
        mon = await started(cfg, clock)
        for start in range(0, 200, 50):
            await mon.ingest(stream(X[start : start + 50], first_id=start))
            mon.evaluate_due()
        await send(mon, [label(i) for i in range(100, 200)])
        mon.refresh_performance()
        live = mon.snapshot()["clf"].performance
        await mon.stop()
        again = await started(cfg, clock)
        try:
            return live, again.snapshot()["clf"].performance
        finally:
            await again.stop()

    live, restored = asyncio.run(scenario())
    assert live is not None and restored is not None
    assert restored.realized.to_dict() == live.realized.to_dict()


def test_estimated_performance_needs_no_labels(cfg: Any) -> None:
    clock = Clock(NOW)

    async def scenario() -> Any:
        mon = await started(cfg, clock)
        try:
            await mon.ingest(stream(X[:100]))
            mon.evaluate_due()
            return mon.snapshot()["clf"].performance
        finally:
            await mon.stop()

    perf = asyncio.run(scenario())
    truth_accuracy = float(np.mean(np.maximum(model_proba(X[:100]), 1 - model_proba(X[:100]))))
    assert perf.estimated.estimated["accuracy"] == pytest.approx(truth_accuracy, abs=0.05)


def test_labels_join_a_versions_events_and_judge_that_versions_windows(cfg: Any) -> None:
    """Events of two versions (docs/versions.md): each label finds its event in its version's track."""
    clock = Clock(NOW)

    async def scenario() -> LabelResult:
        mon = await started(cfg, clock)
        try:
            events = stream(X[:120])
            await mon.ingest([msgspec.structs.replace(e, version="1" if i % 2 else "2") for i, e in enumerate(events)])
            return await send(mon, [label(i) for i in range(0, 120)])
        finally:
            await mon.stop()

    result = asyncio.run(scenario())
    store = EventStore(cfg.server.store.path)
    try:
        labelled = store.labels.labelled_ids("clf@2", [f"p-{i}" for i in range(0, 120)])
    finally:
        store.close()
    assert (result.outcomes["joined"], labelled) == (120, {f"p-{i}" for i in range(0, 120, 2)})
