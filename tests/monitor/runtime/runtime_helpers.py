"""Shared by the runtime tests: events, a settable clock, a monitor run batch by batch, the stored evaluations."""

from __future__ import annotations

import json
from typing import Any

from monitor.capture import CapturedEvent
from monitor.core.config import Config
from monitor.core.store import EventStore
from monitor.runtime import Monitor, WindowVerdict
from tests.monitor.ingest_helpers import event


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


class Recorder:
    def __init__(self) -> None:
        self.calls: list[WindowVerdict] = []

    def on_verdict(self, verdict: WindowVerdict) -> None:
        self.calls.append(verdict)
