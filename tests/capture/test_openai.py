"""OpenAI-compatible payloads: requests, answers, and streams reassembled from pieces cut anywhere."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.capture.openai import SSEDecoder, StreamAssembler, operation_of, parse_request, parse_response, usage_of
from monitor.capture.payload import Rejected


def sse(*payloads: Any, sep: str = "\n") -> bytes:
    """A vLLM-style stream: each payload as `data: ...` and a blank line."""
    out = ""
    for p in payloads:
        out += f"data: {p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)}{sep}{sep}"
    return out.encode()


def chat_chunk(content: str | None = None, finish: str | None = None, role: str | None = None, index: int = 0) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


USAGE = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
         "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
STREAM = sse(chat_chunk("", role="assistant"), chat_chunk("Grüß "), chat_chunk("Gott 👋"), chat_chunk("!", finish="stop"), USAGE, "[DONE]")


def assemble(pieces: list[bytes], max_chars: int = 1 << 20, operation: Any = "chat") -> StreamAssembler:
    a = StreamAssembler(operation, max_chars)
    for piece in pieces:
        a.feed(piece)
    return a


@pytest.mark.parametrize(("path", "operation"), [
    ("/v1/chat/completions", "chat"), ("/v1/completions", "text_completion"), ("/v1/embeddings", "embeddings"),
    ("/openai/v1/chat/completions", "chat"), ("/v1/models", None), ("/v1/chat/completions/x", None), ("/xv1/completions", None),
])
def test_the_operation_is_read_off_the_path(path: str, operation: str | None) -> None:
    assert operation_of(path) == operation


def test_a_chat_request_gives_its_prompt_by_role_model_and_parameters() -> None:
    req = parse_request("chat", {
        "model": "llama", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 64, "temperature": 0.2,
        "messages": [{"role": "system", "content": "Be terse."},
                     {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "image_url", "image_url": {"url": "x"}},
                                                  {"type": "text", "text": "this?"}]}],
    })
    assert req.prompt == "system: Be terse.\nuser: What is this?"
    assert (req.model, req.stream, req.include_usage, req.max_tokens, req.temperature) == ("llama", True, True, 64, 0.2)


def test_a_completions_request_joins_its_prompts_and_an_embeddings_request_lists_its_inputs() -> None:
    assert parse_request("text_completion", {"prompt": ["a", "b"]}).prompt == "a\nb"
    assert parse_request("embeddings", {"input": "one"}).inputs == ("one",)
    assert parse_request("embeddings", {"input": [[1, 2], [3]]}).inputs == ()  # token ids are not text
    assert parse_request("text_completion", {"prompt": "p"}).stream is False


@pytest.mark.parametrize(("operation", "body"), [
    ("chat", []), ("chat", {"messages": "hi"}), ("chat", {"messages": ["hi"]}), ("text_completion", {"prompt": 3}),
    ("embeddings", {"input": []}), ("embeddings", {}), ("embeddings", {"input": [{}]}), ("text_completion", {"prompt": [[1], []]}),
])
def test_a_request_of_another_shape_is_rejected(operation: Any, body: Any) -> None:
    with pytest.raises(Rejected) as info:
        parse_request(operation, body)
    assert info.value.reason == "schema_mismatch"


def test_a_non_streamed_chat_answer_gives_completion_finish_reason_and_usage() -> None:
    answer = parse_response("chat", {"id": "c", "object": "chat.completion", "model": "m", "choices": [
        {"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "length"},
        {"index": 0, "message": {"role": "assistant", "content": "first"}, "finish_reason": "stop"},
    ], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}})
    assert answer.completions == ("first", "second")
    assert answer.finish_reasons == ("stop", "length")
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (5, 9)  # type: ignore[union-attr]
    assert answer.truncated is False and answer.error is None


def test_embeddings_come_back_in_index_order_from_floats_or_base64() -> None:
    vec = np.array([0.25, -1.5, 3.0], dtype="<f4")
    answer = parse_response("embeddings", {"data": [
        {"index": 1, "embedding": base64.b64encode(vec.tobytes()).decode()}, {"index": 0, "embedding": [1, 2.5]},
    ]})
    assert answer.vectors == ([1.0, 2.5], [0.25, -1.5, 3.0])


def test_usage_alone_is_read_from_a_large_answer_and_absent_usage_is_none() -> None:
    body = json.dumps({"data": [{"embedding": [0.1] * 768}] * 4, "usage": {"prompt_tokens": 8, "total_tokens": 8}}).encode()
    assert usage_of(body) is not None and usage_of(body).input_tokens == 8  # type: ignore[union-attr]
    assert usage_of(b'{"choices": []}') is None
    assert usage_of(b"not json") is None


def test_a_stream_reassembles_into_the_non_streamed_shape() -> None:
    a = assemble([STREAM])
    answer = parse_response("chat", a.body())
    assert answer.completion == "Grüß Gott 👋!"
    assert answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (12, 3)  # type: ignore[union-attr]
    assert a.done is True and a.events == 6
    assert a.content_events == 3  # the role-only first chunk carries no token
    assert json.loads(a.encoded()) == a.body()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_cut_of_the_stream_gives_the_same_reassembly(cuts: list[int]) -> None:
    """Pieces split mid-line, mid-`data:`, inside a multi-byte character or between CR and LF."""
    bounds = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert assemble(pieces).body() == assemble([STREAM]).body()


def test_every_single_byte_piece_of_a_crlf_stream_reassembles_too() -> None:
    stream = sse(chat_chunk("é€"), chat_chunk("😀", finish="stop"), "[DONE]", sep="\r\n")
    a = assemble([stream[i:i + 1] for i in range(len(stream))])
    assert parse_response("chat", a.body()).completion == "é€😀"


def test_comments_other_fields_multi_line_data_and_cr_line_ends_follow_the_sse_rules() -> None:
    d = SSEDecoder(1000)
    events = d.feed(b": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: a\ndata:b\r\rdata\n\n")
    assert events == [b"a\nb", b""]
    assert d.feed(b"data: tail-without-blank-line") == []  # an event ends only at a blank line


def test_an_error_event_is_recorded_and_events_that_are_not_json_are_counted() -> None:
    a = assemble([sse(chat_chunk("part"), "{not json", "[1, 2]", {"error": {"message": "engine died", "code": 500}}, "[DONE]")
                  + b'data: {"choices": [{"delta": {"content": "\xff"}}]}\n\n'])
    answer = parse_response("chat", a.body())
    assert answer.error == "engine died"
    assert answer.completion == "part"
    assert a.invalid == 3  # not JSON, JSON of another shape, not UTF-8


def test_content_beyond_the_limit_is_dropped_and_marked_but_the_end_is_still_read() -> None:
    chunks = [chat_chunk("abcdefghij") for _ in range(100)]
    a = assemble([sse(*chunks, chat_chunk("", finish="length"), USAGE, "[DONE]")], max_chars=25)
    answer = parse_response("chat", a.body())
    assert answer.completion == "abcdefghij" * 2 + "abcde"
    assert answer.truncated is True
    assert answer.finish_reason == "length" and answer.usage is not None


def test_a_line_without_end_cannot_grow_memory() -> None:
    d = SSEDecoder(100)
    for _ in range(1000):
        d.feed(b"data: " + b"x" * 1000)
    assert d.truncated is True
    assert sum(map(len, d._line)) <= 100
    assert d.feed(b"\n\ndata: ok\n\n") == [b"ok"]  # the stream recovers at the next line


def test_several_choices_are_kept_apart_and_a_completions_stream_reads_text() -> None:
    a = assemble([sse(chat_chunk("x", index=1), chat_chunk("y", index=0), chat_chunk("z", index=1, finish="stop"))])
    assert parse_response("chat", a.body()).completions == ("y", "xz")
    text = {"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": "hello", "finish_reason": "length"}]}
    b = assemble([sse(text, "[DONE]")], operation="text_completion")
    answer = parse_response("text_completion", b.body())
    assert (answer.completion, answer.finish_reason) == ("hello", "length")


def tool_chunk(index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None,
               finish: str | None = None) -> dict[str, Any]:
    function = {k: v for k, v in (("name", name), ("arguments", arguments)) if v is not None}
    call: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        call |= {"id": id, "type": "function"}
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": finish}]}


TOOL_STREAM = sse(
    chat_chunk(role="assistant"),
    tool_chunk(0, id="call_a", name="get_weather", arguments=""),
    tool_chunk(0, arguments='{"city": '), tool_chunk(1, id="call_b", name="get_time", arguments='{"tz": "CET"}'),
    tool_chunk(0, arguments='"Wien"}'), chat_chunk(finish="tool_calls"), "[DONE]",
)


def test_streamed_tool_calls_are_reassembled_as_the_non_streamed_answer_has_them() -> None:
    message = assemble([TOOL_STREAM]).body()["choices"][0]["message"]
    assert message["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Wien"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
    ]


def test_a_tool_call_stream_keeps_its_finish_reason() -> None:
    assert parse_response("chat", assemble([TOOL_STREAM]).body()).finish_reason == "tool_calls"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TOOL_STREAM)), max_size=12))
def test_any_cut_of_a_tool_call_stream_gives_the_same_calls(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(TOOL_STREAM)]
    pieces = [TOOL_STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert assemble(pieces).body() == assemble([TOOL_STREAM]).body()


def test_tool_call_arguments_count_toward_the_limit() -> None:
    a = assemble([sse(tool_chunk(0, id="c", name="f", arguments="x" * 40), "[DONE]")], max_chars=25)
    (call,) = a.body()["choices"][0]["message"]["tool_calls"]
    assert (call["function"]["arguments"], a.body()["truncated"]) == ("x" * 25, True)


def test_a_refusal_is_reassembled_apart_from_the_content() -> None:
    refusal = [{"id": "r", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"refusal": part}}]}
               for part in ("I can't ", "help with that.")]
    assert assemble([sse(*refusal, "[DONE]")]).body()["choices"][0]["message"]["refusal"] == "I can't help with that."
