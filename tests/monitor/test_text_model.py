"""A `protocol: openai` model with `type: text` columns through the whole monitor: captured chat
calls posted to `POST /v1/events`, descriptors computed where records become the engine's frame,
windows evaluated against the reference's texts, results in the API, metrics and reports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ingest_helpers import serve_in_thread
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.api import create_app
from monitor.app.demo import chat
from monitor.core.config import load_config

WINDOW = 300
PROMPT_DESCRIPTORS = ("prompt.non_ascii_share", "prompt.oov_share")


def write_config(tmp_path: Path) -> Path:
    chat.reference(1000, seed=1).to_csv(tmp_path / "reference.csv", index=False)
    data = {
        "version": 1,
        "server": {"evaluation_interval": "50ms", "store": {"path": "store/driftwatch.db"}},
        "models": [{
            "name": "chat",
            "protocol": "openai",
            "features": [{"name": "prompt", "type": "text", "source": {"field": "prompt"}}],
            "outputs": [{"name": "completion", "type": "text", "source": {"field": "completion"}}],
            "reference": {"path": "reference.csv"},
            "window": {"records": WINDOW, "step": WINDOW, "min_records": 100},
        }],
    }
    path = tmp_path / "driftwatch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def chat_event(i: int, prompt: str, *, streamed: bool) -> dict[str, Any]:
    """A captured chat call as the sidecar ships it (a streamed answer arrives reassembled)."""
    completion = chat.answer(prompt)
    request = {"model": "toy-chat", "stream": streamed,
               "messages": [{"role": "system", "content": "You are a weather assistant."}, {"role": "user", "content": prompt}]}
    response = {"object": "chat.completion", "model": "toy-chat",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": completion}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": chat.count_tokens(prompt), "completion_tokens": chat.count_tokens(completion)}}
    body = {"encoding": "utf-8", "truncated": False, "content_type": "application/json"}
    return {
        "id": f"chat-{i}", "model": "chat", "timestamp": 1_700_000_000.0 + i, "status": 200, "method": "POST",
        "path": "/v1/chat/completions",
        "request": {**body, "body": json.dumps(request)}, "response": {**body, "body": json.dumps(response)},
    }


def wait_for(client: httpx.Client, windows: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        evaluations = client.get("/v1/models/chat/evaluations").json()["evaluations"]
        if len(evaluations) >= windows:
            return list(evaluations)
        assert time.monotonic() < deadline, evaluations
        time.sleep(0.1)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]]:
    """Two windows of English prompts like the reference's (another seed), then one of German ones."""
    cfg = load_config(write_config(tmp_path_factory.mktemp("text")))
    english, german = chat.prompts(2 * WINDOW, "english", seed=2), chat.prompts(WINDOW, "german", seed=3)
    events = [chat_event(i, p, streamed=i % 2 == 0) for i, p in enumerate([*english, *german])]
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        accepted = []
        for k in range(3):  # one window at a time: the monitor evaluates the newest due window
            accepted.append(client.post("/v1/events", json={"events": events[k * WINDOW : (k + 1) * WINDOW]}).json())
            evaluations = wait_for(client, k + 1)
        yield client, evaluations, {"accepted": accepted}


def drifted(evaluation: dict[str, Any]) -> set[str]:
    return {name for name, f in evaluation["result"]["features"].items() if f["drifted"]}


def test_every_call_is_accepted(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    _, _, seen = monitored
    assert [a["accepted"] for a in seen["accepted"]] == [WINDOW] * 3


def test_the_descriptors_are_the_engines_columns(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    _, evaluations, _ = monitored
    assert {"prompt.chars", "prompt.script", "completion.gen_ai.usage.output_tokens"} <= set(evaluations[0]["result"]["features"])


def test_unchanged_prompts_do_not_alarm(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    _, evaluations, _ = monitored
    assert [drifted(ev) for ev in evaluations[:2]] == [set(), set()]


def test_a_language_change_drifts_the_prompt_descriptors(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    _, evaluations, _ = monitored
    assert set(PROMPT_DESCRIPTORS) <= drifted(evaluations[2])


def test_a_language_change_is_dataset_drift(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    _, evaluations, _ = monitored
    assert [ev["result"]["dataset"]["drifted"] for ev in evaluations] == [False, False, True]


def test_descriptor_drift_is_exported_by_feature(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    client, _, _ = monitored
    families = text_string_to_metric_families(client.get("/metrics").text)
    flagged = {s.labels["feature"] for f in families for s in f.samples
               if s.name == "driftwatch_feature_drift_detected" and s.value == 1.0}
    assert set(PROMPT_DESCRIPTORS) <= flagged


def test_the_report_shows_the_descriptors(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    client, _, _ = monitored
    page = client.get("/reports/chat", params={"format": "json"})
    assert set(PROMPT_DESCRIPTORS) <= set(page.json()["result"]["features"])


def test_the_report_page_renders_the_descriptors(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    client, _, _ = monitored
    page = client.get("/reports/chat")
    assert (page.status_code, "prompt.non_ascii_share" in page.text) == (200, True)


def test_a_call_that_is_not_a_chat_is_rejected_with_its_reason(monitored: tuple[httpx.Client, list[dict[str, Any]], dict[str, Any]]) -> None:
    client, _, _ = monitored
    bad = {**chat_event(9000, "hello", streamed=False), "request": {
        "body": json.dumps({"model": "toy-chat", "messages": "hello"}), "encoding": "utf-8", "truncated": False}}
    assert client.post("/v1/events", json={"events": [bad]}).json()["reasons"] == {"schema_mismatch": 1}
