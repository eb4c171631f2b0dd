"""Profiling the references in a child process (`driftwatch serve`) changes nothing a user sees.

Each scenario runs twice on the same traffic: a monitor that profiles here, and one that profiles
in a spawned child and keeps the products pickled until the first due window. Their stored
evaluations, restored results and performance must be equal, and so must their profiling errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from monitor.capture.labels import decode_labels
from monitor.core.store import EventStore
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import load
from tests.monitor.runtime.perf_helpers import NOW, draw, labels_for, stream, write_classifier_config
from tests.monitor.runtime.runtime_helpers import Clock, events, run_monitor, stored_evaluations

BUDGET = {"false_alarm_budget": {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5}}
BATCHES = [events(range(i, i + 37), shift=0.0 if i < 150 else 0.5) for i in range(0, 444, 37)]


def test_windows_evaluated_after_profiling_in_a_child_equal_those_profiled_here(tmp_path: Path) -> None:
    """A calibrated model: its detector (CUSUM and all) crosses the process boundary intact."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    here, child = load(tmp_path / "a", toy=BUDGET), load(tmp_path / "b", toy=BUDGET)

    async def scenario() -> None:
        for cfg, in_child in ((here, False), (child, True)):
            mon, _ = await run_monitor(cfg, BATCHES, profile_in_child=in_child)
            await mon.stop()

    asyncio.run(scenario())
    assert stored_evaluations(child) == stored_evaluations(here)


def test_a_restart_profiled_in_a_child_restores_the_last_result_and_goes_on_alike(tmp_path: Path) -> None:
    """The child re-evaluates the last stored window with the stored CUSUM state, as start-up does here."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight, restarted = load(tmp_path / "a", toy=BUDGET), load(tmp_path / "b", toy=BUDGET)
    restored: dict[str, Any] = {}

    async def scenario() -> None:
        mon, _ = await run_monitor(straight, BATCHES)
        await mon.stop()
        first, _ = await run_monitor(restarted, BATCHES[:9])
        restored["before"] = first.snapshot()["toy"].result.to_dict()  # type: ignore[union-attr]
        await first.stop()
        second, _ = await run_monitor(restarted, [], profile_in_child=True)
        restored["after"] = second.snapshot()["toy"].result.to_dict()  # type: ignore[union-attr]
        for batch in BATCHES[9:]:
            await second.ingest(batch)
            second.evaluate_due()
        await second.stop()

    asyncio.run(scenario())
    assert restored["after"] == restored["before"]
    assert stored_evaluations(restarted) == stored_evaluations(straight)


def _performance_rows(path: Path) -> list[tuple[int, int, str]]:
    store = EventStore(path)
    try:
        return [(r.last_rec, r.n_labelled, json.dumps(r.result, sort_keys=True)) for r in store.labels.history("clf", 100)]
    finally:
        store.close()


def test_performance_after_profiling_in_a_child_equals_performance_profiled_here(tmp_path: Path) -> None:
    """Estimated and realized performance, with labels landing after the windows were evaluated."""
    x, y = draw(200, seed=11), labels_for(draw(200, seed=11), seed=12)
    labels = {"model": "clf", "labels": [{"id": f"p-{i}", "label": int(y[i])} for i in range(200)]}
    configs = []

    async def scenario(cfg: Any, in_child: bool) -> None:
        mon = Monitor(cfg, clock=Clock(NOW), profile_in_child=in_child)
        await mon.start(background=False)
        try:
            for start in range(0, 200, 50):
                await mon.ingest(stream(x[start : start + 50], first_id=start))
                mon.evaluate_due()
            await mon.ingest_labels(*decode_labels(json.dumps(labels).encode()))
            mon.refresh_performance()
        finally:
            await mon.stop()

    for name, in_child in (("a", False), ("b", True)):
        (tmp_path / name).mkdir()
        cfg = write_classifier_config(tmp_path / name)
        configs.append(cfg)
        asyncio.run(scenario(cfg, in_child))
    here, child = (_performance_rows(c.server.store.path) for c in configs)
    assert len(here) >= 3 and child == here


def test_a_reference_the_child_cannot_read_is_the_same_error_logged_here(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The model is reported unprofiled with the same error, and the child's log line reaches this process."""
    cfg = load(tmp_path)
    cfg.model("toy").reference.path.unlink()
    errors = []

    async def scenario(in_child: bool) -> None:
        mon = Monitor(cfg, profile_in_child=in_child)
        await mon.start(background=False)
        errors.append(dict(mon.profile_errors))
        await mon.stop()

    asyncio.run(scenario(False))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="driftwatch.monitor"):
        asyncio.run(scenario(True))
    assert errors[1] == errors[0] and "toy" in errors[1]
    assert any(r.getMessage().startswith("reference_profile_failed model=toy") for r in caplog.records)
