"""Model versions judged apart (docs/versions.md): each version the traffic names gets its own windows,
results, verdicts and series; a version switch never mixes two versions in a window, a canary is
judged beside its stable version, tracks are bounded and survive a restart, bad versions are refused
with a precise reason. A real SQLite store, the real engine, real HTTP where a user would use it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.app.api import create_app
from monitor.capture import CapturedEvent, EnvelopeError, decode_batch
from monitor.capture.cloudevents import parse_cloudevent
from monitor.core.config import Config
from monitor.core.store import EventStore
from monitor.exporter.collector import build_registry, render
from monitor.runtime import Monitor, WindowVerdict
from monitor.runtime.tracks import TrackBook
from retrain.controller import RetrainController
from tests.monitor.ingest_helpers import RETRAIN_DRY_RUN, event, load, serve_in_thread
from tests.monitor.runtime.runtime_helpers import Clock, Recorder, events


def versioned(ids: range, version: str, **kw: Any) -> list[CapturedEvent]:
    return events(ids, version=version, **kw)


async def feed(mon: Monitor, batches: list[list[CapturedEvent]], clock: Clock | None = None, step: float = 10.0) -> None:
    for batch in batches:
        await mon.ingest(batch)
        mon.evaluate_due()
        if clock is not None:
            clock.now += step


def window_versions(config: Config, key: str) -> list[set[str | None]]:
    """For each stored window of the track `key`: the versions of the events it was computed on."""
    store = EventStore(config.server.store.path)
    try:
        return [{json.loads(e.raw).get("version") for e in store.accepted_between(key, ev.first_rec, ev.last_rec)}
                for ev in reversed(store.evaluations(key, limit=1000))]
    finally:
        store.close()


def by_version(verdicts: list[WindowVerdict], version: str | None) -> list[WindowVerdict]:
    return [v for v in verdicts if v.version == version]


# -- a version switch mid-stream ------------------------------------------------------------------


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, list[WindowVerdict]]:
    """130 events of version 1, then 200 of version 2 (drifted), one batch at a time."""
    cfg = load(tmp_path_factory.mktemp("switch"))
    recorder = Recorder()

    async def scenario() -> None:
        mon = Monitor(cfg, listeners=[recorder])
        await mon.start(background=False)
        try:
            await feed(mon, [versioned(range(0, 50), "1"), versioned(range(50, 130), "1"),
                             versioned(range(130, 230), "2", shift=3.0), versioned(range(230, 330), "2", shift=3.0)])
        finally:
            await mon.stop()

    asyncio.run(scenario())
    return cfg, recorder.calls


def test_each_version_is_windowed_apart(switch: tuple[Config, list[WindowVerdict]]) -> None:
    cfg, _ = switch
    assert window_versions(cfg, "toy@1") == [{"1"}, {"1"}]


def test_the_new_version_starts_windows_of_its_own(switch: tuple[Config, list[WindowVerdict]]) -> None:
    cfg, _ = switch
    assert window_versions(cfg, "toy@2") == [{"2"}, {"2"}]


def test_the_old_versions_windows_stay_calm(switch: tuple[Config, list[WindowVerdict]]) -> None:
    assert [v.result.dataset.drifted for v in by_version(switch[1], "1")] == [False, False]


def test_the_new_versions_drift_is_seen_from_its_first_window(switch: tuple[Config, list[WindowVerdict]]) -> None:
    assert [v.result.dataset.drifted for v in by_version(switch[1], "2")] == [True, True]


def test_verdicts_name_the_model_and_their_version(switch: tuple[Config, list[WindowVerdict]]) -> None:
    assert [(v.model, v.version) for v in switch[1]] == [("toy", "1"), ("toy", "1"), ("toy", "2"), ("toy", "2")]


def test_unversioned_traffic_keeps_the_models_own_key(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            await feed(mon, [events(range(0, 60))])
            assert [(k, s.version, s.ingested) for k, s in mon.snapshot().items()] == [("toy", None, 60), ("plain", None, 0)]
        finally:
            await mon.stop()

    asyncio.run(scenario())


def test_a_model_whose_traffic_also_names_no_version_answers_for_its_own_track(tmp_path: Path) -> None:
    book = TrackBook(load(tmp_path))
    book.seen("toy", 5, 1.0)
    book.admit("toy", "2", 2.0)
    book.seen("toy@2", 3, 2.0)
    assert book.default("toy") == "toy"


# -- a canary at 10% ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, list[WindowVerdict], list[Any]]:
    """Version 1 serves alone, then version 2 takes every tenth call, drifted; retraining listens (dry run)."""
    home = tmp_path_factory.mktemp("canary")
    cfg = load(home, retrain=RETRAIN_DRY_RUN)
    recorder, clock = Recorder(), Clock()
    controller = RetrainController(cfg, home / "history.db", clock=clock)

    def batch(start: int) -> list[CapturedEvent]:
        return [CapturedEvent.model_validate(event(i, version="2", shift=3.0) if i % 10 == 0 else event(i, version="1"))
                for i in range(start, start + 100)]

    async def scenario() -> None:
        mon = Monitor(cfg, listeners=[recorder, controller], clock=clock)
        await mon.start(background=False)
        try:
            await feed(mon, [versioned(range(10_000, 10_100), "1")], clock)
            await feed(mon, [batch(i) for i in range(0, 1000, 100)], clock)
        finally:
            await mon.stop()

    asyncio.run(scenario())
    decisions = controller.history.recent_decisions("toy", 1000)
    return cfg, recorder.calls, decisions


def test_the_canary_is_judged_on_its_own_windows(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    assert window_versions(canary[0], "toy@2") == [{"2"}, {"2"}]


def test_the_canarys_drift_is_its_own(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    assert {v.result.dataset.drifted for v in by_version(canary[1], "2")} == {True}


def test_the_stable_version_is_not_blamed_for_the_canary(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    stable = by_version(canary[1], "1")
    assert len(stable) >= 9 and {v.result.dataset.drifted for v in stable} == {False}


def test_the_stable_version_is_superseded_once_the_canary_serves(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    stable = by_version(canary[1], "1")
    assert [v.superseded for v in stable] == [False] + [True] * (len(stable) - 1)


def test_the_canary_is_the_newest_serving_version(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    assert {v.superseded for v in by_version(canary[1], "2")} == {False}


def test_retraining_decides_on_the_newest_serving_version_only(canary: tuple[Config, list[WindowVerdict], list[Any]]) -> None:
    _, verdicts, decisions = canary
    newest = [v for v in verdicts if not v.superseded]
    assert len(decisions) == len(newest)


# -- bounded, bad versions, restart ---------------------------------------------------------------


def test_the_least_recently_seen_version_is_retired_beyond_max_tracked(tmp_path: Path) -> None:
    cfg = load(tmp_path, toy={"versions": {"max_tracked": 2}})

    async def scenario() -> None:
        clock = Clock()
        mon = Monitor(cfg, clock=clock)
        await mon.start(background=False)
        try:
            await feed(mon, [versioned(range(0, 10), "a"), versioned(range(10, 20), "b"), versioned(range(20, 30), "a"),
                             versioned(range(30, 40), "c")], clock)
            assert [v["version"] for v in mon.versions("toy")] == ["a", "c"]
            text = render(build_registry(cfg, mon.snapshot, process=False))[0].decode()
            assert sorted(set(re.findall(r'version="([^"]*)"', text)) - {_build_version(text)}) == ["a", "c"]
        finally:
            await mon.stop()

    asyncio.run(scenario())


def _build_version(text: str) -> str:
    found = re.search(r'driftwatch_build_info\{version="([^"]*)"', text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(("version", "detail"), [
    ("v" * 65, "the version is 65 characters long, more than 64"),
    ("v1\x1b[31m", "the version contains a control character"),
    ("v1;drop", "the version may hold only letters, digits and '._+-', starting with a letter or digit"),
    ("   ", "the version is empty"),
])
def test_a_bad_version_rejects_that_event_with_its_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture, version: str, detail: str) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            result = await mon.ingest([*versioned(range(0, 1), version), *versioned(range(1, 2), "ok")])
            assert result.to_dict() == {"accepted": 1, "duplicates": 0, "rejected": 1, "reasons": {"invalid_version": 1}}
        finally:
            await mon.stop()

    with caplog.at_level("WARNING", logger="driftwatch.monitor"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if "event_version_invalid" in r.getMessage()] == [
        f"event_version_invalid model=toy id=ev-0 detail={detail}"]


def test_a_version_with_blanks_around_it_is_trimmed(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            await mon.ingest(versioned(range(0, 3), " 1.2 "))
            assert mon.snapshot()["toy@1.2"].ingested == 3
        finally:
            await mon.stop()

    asyncio.run(scenario())


def test_a_version_beyond_the_envelopes_limit_refuses_the_batch_with_the_field() -> None:
    body = json.dumps({"events": [event(0, version="v" * 257)]}).encode()
    with pytest.raises(EnvelopeError) as err:
        decode_batch(body)
    assert [e["loc"] for e in err.value.detail] == ["events[0].version"]


def test_a_restart_keeps_the_tracks_and_their_windows(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    recorder = Recorder()

    async def first() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            await feed(mon, [versioned(range(0, 60), "1"), versioned(range(60, 130), "2", shift=3.0)])
        finally:
            await mon.stop()

    async def second() -> list[dict[str, Any]]:
        mon = Monitor(cfg, listeners=[recorder])
        await mon.start(background=False)
        try:
            versions = mon.versions("toy")
            await feed(mon, [versioned(range(130, 160), "2", shift=3.0)])
            return versions
        finally:
            await mon.stop()

    asyncio.run(first())
    versions = asyncio.run(second())
    assert [(v["version"], v["events"]) for v in versions] == [("1", 60), ("2", 70)]
    # the second monitor resumes version 2's count grid: its next window ends at record 100, not at 50 again
    assert [(v.version, v.n_records, v.point) for v in recorder.calls] == [("2", 100, ("count", 100.0))]


# -- KServe's logger, metrics, HTTP ---------------------------------------------------------------


def test_kserve_cloudevents_are_tracked_by_revision(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    headers = {"ce-specversion": "1.0", "ce-inferenceservicename": "toy", "ce-source": "toy-predictor-00002-deployment-7cdb7955f8-s244d",
               "content-type": "application/json"}

    async def scenario() -> None:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            for i in range(3):
                ev = event(i)
                await mon.ingest_half(parse_cloudevent({**headers, "ce-id": f"c{i}", "ce-type": "org.kubeflow.serving.inference.request"},
                                                       ev["request"]["body"].encode()))
                await mon.ingest_half(parse_cloudevent({**headers, "ce-id": f"c{i}", "ce-type": "org.kubeflow.serving.inference.response"},
                                                       ev["response"]["body"].encode()))
            assert (mon.snapshot()["toy@00002"].ingested, mon.snapshot()["toy"].ingested) == (3, 0)
        finally:
            await mon.stop()

    asyncio.run(scenario())


def test_only_version_tracks_carry_the_version_label(tmp_path: Path) -> None:
    cfg = load(tmp_path)

    async def scenario() -> str:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            await feed(mon, [events(range(0, 5)), versioned(range(5, 12), "2")])
            return render(build_registry(cfg, mon.snapshot, process=False))[0].decode()
        finally:
            await mon.stop()

    text = asyncio.run(scenario())
    ingested = sorted(line for line in text.splitlines() if line.startswith("driftwatch_events_ingested_total{"))
    assert ingested == ['driftwatch_events_ingested_total{model="plain"} 0.0',
                        'driftwatch_events_ingested_total{model="toy",version="2"} 7.0', 'driftwatch_events_ingested_total{model="toy"} 5.0']


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cfg = load(tmp_path_factory.mktemp("api"))
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        for body in ({"events": [event(i, version="1") for i in range(60)]}, {"events": [event(i, version="2") for i in range(60, 70)]}):
            assert client.post("/v1/events", json=body).status_code == 200  # the canary comes second
        yield client


def test_the_api_lists_a_models_versions(api: httpx.Client) -> None:
    versions = api.get("/v1/models/toy/versions").json()["versions"]
    assert [(v["version"], v["events"], v["superseded"]) for v in versions] == [("1", 60, True), ("2", 10, False)]


def test_the_api_answers_one_versions_drift(api: httpx.Client) -> None:
    view = api.get("/v1/models/toy/drift", params={"version": "1"}).json()
    assert (view["version"], view["ingested"]) == ("1", 60)


def test_without_a_version_the_api_answers_for_the_newest_when_all_traffic_names_one(api: httpx.Client) -> None:
    view = api.get("/v1/models/toy/drift").json()
    assert (view["version"], view["ingested"]) == ("2", 10)


def test_evaluations_without_a_version_say_which_version_they_are(api: httpx.Client) -> None:
    assert api.get("/v1/models/toy/evaluations").json()["version"] == "2"


def test_the_api_refuses_an_untracked_version(api: httpx.Client) -> None:
    r = api.get("/v1/models/toy/drift", params={"version": "9"})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_version")


def test_the_api_refuses_a_malformed_version_with_its_reason(api: httpx.Client) -> None:
    r = api.get("/v1/models/toy/evaluations", params={"version": "1\x00"})
    assert (r.status_code, r.json()) == (422, {"error": "invalid_version", "detail": "the version contains a control character"})


def _evaluated(api: httpx.Client, version: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = api.get("/v1/models/toy/evaluations", params={"version": version}).json()["evaluations"]
        if rows:
            return rows  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"version {version} was never evaluated")


def test_a_versions_evaluations_are_its_own(api: httpx.Client) -> None:
    assert [e["n_records"] for e in _evaluated(api, "1")] == [50]


def test_a_versions_report_is_served_under_model_at_version(api: httpx.Client) -> None:
    window = _evaluated(api, "1")[-1]["window_id"]
    r = api.get("/reports/toy@1.json")
    assert (r.status_code, r.json()["links"]["html"]) == (200, f"/reports/toy@1/{window}")


def test_a_report_of_a_malformed_version_is_a_precise_400(api: httpx.Client) -> None:
    r = api.get("/reports/toy@1;x.json")
    assert (r.status_code, r.json()["detail"]) == (400, "version: the version may hold only letters, digits and '._+-', "
                                                        "starting with a letter or digit")
