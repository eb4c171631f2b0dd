"""KServe CloudEvents halves: joined in either order, expired, counted, kept across a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.capture import CapturedEvent
from monitor.capture.cloudevents import parse_cloudevent
from monitor.core.store import EventStore, PendingHalf
from monitor.runtime import Monitor
from tests.monitor.ingest_helpers import load
from tests.monitor.runtime.runtime_helpers import Clock


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
