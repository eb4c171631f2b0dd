"""Captured OpenAI-compatible calls → records of a `protocol: openai` model (pure parsing)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.capture import CapturedEvent, ModelSchema, Rejected, event_records
from monitor.core.config import parse_config

CONFIG = {"models": [{"name": "chat", "protocol": "openai", "reference": {"path": "r.csv"},
                      "features": [{"name": "prompt", "type": "text", "source": {"field": "prompt"}}],
                      "outputs": [{"name": "completion", "type": "text", "source": {"field": "completion"}}]}]}
SCHEMA = ModelSchema.from_config(parse_config(CONFIG).models[0])
CHAT = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                                   {"role": "assistant", "content": "Hello!"},
                                   {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url"}]}]}
ANSWER = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 12, "completion_tokens": 2}}


def event(request: Any, response: Any | None, path: str = "/v1/chat/completions", status: int = 200) -> CapturedEvent:
    def body(value: Any) -> dict[str, Any]:
        return {"body": json.dumps(value), "encoding": "utf-8", "truncated": False}

    return CapturedEvent.model_validate({"id": "e", "model": "chat", "timestamp": 1.0, "status": status, "path": path,
                                         "request": body(request), **({"response": body(response)} if response is not None else {})})


def test_a_chat_call_is_one_record_of_the_users_text_the_answer_and_the_usage() -> None:
    assert event_records(SCHEMA, event(CHAT, ANSWER)) == [{
        "prompt": "Hi there\nWeather?", "prompt.gen_ai.usage.input_tokens": 12,
        "completion": "Sunny.", "completion.gen_ai.usage.output_tokens": 2}]


def test_a_completions_call_reads_its_prompt_and_text() -> None:
    answer = {"object": "text_completion", "choices": [{"index": 0, "text": " world", "finish_reason": "length"}]}
    (record,) = event_records(SCHEMA, event({"model": "m", "prompt": "Hello"}, answer, "/openai/v1/completions"))
    assert (record["prompt"], record["completion"]) == ("Hello", " world")


def test_usage_the_server_did_not_report_is_missing() -> None:
    (record,) = event_records(SCHEMA, event(CHAT, {k: v for k, v in ANSWER.items() if k != "usage"}))
    assert (record["prompt.gen_ai.usage.input_tokens"], record["completion.gen_ai.usage.output_tokens"]) == (None, None)


def test_a_call_without_its_answer_has_a_prompt_and_no_completion() -> None:
    (record,) = event_records(SCHEMA, event(CHAT, None))
    assert (record["prompt"], record["completion"]) == ("Hi there\nWeather?", None)


def test_without_a_path_the_body_says_the_operation() -> None:
    (record,) = event_records(SCHEMA, event(CHAT, ANSWER, path=""))
    assert record["completion"] == "Sunny."


@pytest.mark.parametrize(("request_body", "response", "path", "reason"), [
    ({"model": "m", "messages": "hi"}, ANSWER, "/v1/chat/completions", "schema_mismatch"),
    ({"model": "m", "input": "hi"}, {"data": []}, "/v1/embeddings", "schema_mismatch"),
    ({"model": "m"}, ANSWER, "/v1/models/chat:predict", "schema_mismatch"),
    (CHAT, {**ANSWER, "error": {"message": "out of memory"}}, "/v1/chat/completions", "upstream_error"),
])
def test_what_is_not_a_chat_or_completion_is_rejected_with_its_reason(request_body: Any, response: Any, path: str, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        event_records(SCHEMA, event(request_body, response, path))
    assert exc.value.reason == reason
