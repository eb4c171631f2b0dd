"""OpenAI-compatible traffic through a real sidecar process: streams forwarded at the upstream's
pace and byte for byte, captured once they end (reassembled), timed in the sidecar's metrics."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sidecar_servers import Collector, OpenAIServer, Sidecar, metric, wait_for

from monitor.capture.openai import parse_request, parse_response

Start = Callable[..., Sidecar]
CHAT = {"model": "toy", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 20}


@pytest.fixture(scope="module")
def openai_server() -> Iterator[OpenAIServer]:
    server = OpenAIServer().start()
    yield server
    server.stop()


def stream_events(client: httpx.Client, path: str, body: dict, headers: dict[str, str]) -> tuple[list[float], bytes]:
    """POST and read the SSE body as it arrives: (monotonic arrival time of each complete event, body bytes)."""
    arrivals: list[float] = []
    data = b""
    with client.stream("POST", path, json=body, headers=headers) as r:
        assert r.status_code == 200
        for piece in r.iter_raw():
            data += piece
            while data.count(b"\n\n") > len(arrivals):
                arrivals.append(time.monotonic())
    return arrivals, data


def sentinel(client: httpx.Client, collector: Collector) -> list[dict]:
    """Events ship in capture order: once a later non-streamed call arrives, earlier captures would have."""
    client.post("/v1/completions", json={"model": "toy", "prompt": "end"}, headers={"x-request-id": "sentinel", "x-chunks": "1"})
    wait_for(lambda: any(e["id"] == "sentinel" for e in collector.events()))
    return [e for e in collector.events() if e["id"] != "sentinel"]


def test_a_stream_reaches_the_client_at_the_upstreams_pace_byte_for_byte_and_is_captured_reassembled(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")  # default capture paths
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        arrivals, received = stream_events(client, "/v1/chat/completions", CHAT, {"x-chunks": "20", "x-delay": "0.05", "x-request-id": "s1"})
        events = sentinel(client, collector)
        text = httpx.get(f"{sidecar.url}/driftwatch/metrics").text
    sent_times, sent = openai_server.sent[-1]
    assert received == bytes(sent)
    assert len(arrivals) == len(sent_times) == 23  # role, 20 content chunks, usage, [DONE]
    # Each event reaches the client when the upstream wrote it (50 ms apart), not when the stream ends.
    lags = [a - s for a, s in zip(arrivals, sent_times, strict=True)]
    assert max(lags) < 0.2, lags  # generous for a shared machine, still 5x below the stream's length
    assert arrivals[1] < sent_times[-1] - 0.8
    [event] = events
    assert event["id"] == "s1" and event["path"] == "/v1/chat/completions"
    assert event["generation"]["operation"] == "chat" and event["generation"]["streamed"] is True
    assert event["generation"]["events"] == 23
    assert 0 < event["generation"]["time_to_first_token_seconds"] < event["latency_seconds"]
    assert event["response"]["content_type"] == "application/json" and event["response"]["truncated"] is False
    answer = parse_response("chat", json.loads(event["response"]["body"]))
    assert answer.completion == "".join(f"tok{i} é€😀 " for i in range(20))
    assert answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (7, 20)  # type: ignore[union-attr]
    assert parse_request("chat", json.loads(event["request"]["body"])).prompt == "system: be brief\nuser: hi"
    assert metric(text, "driftwatch_sidecar_time_to_first_token_seconds_count", model="wine", operation="chat") == 1
    assert metric(text, "driftwatch_sidecar_time_per_output_token_seconds_count", model="wine", operation="chat") == 1
    # 19 gaps of 50 ms after the first token over 19 further tokens: about 50 ms per output token.
    tpot = metric(text, "driftwatch_sidecar_time_per_output_token_seconds_sum", model="wine", operation="chat")
    assert 0.045 < tpot < 0.2
    assert metric(text, "driftwatch_sidecar_token_usage_tokens_sum", model="wine", operation="chat", type="output") == 20


def test_a_stream_cut_inside_characters_and_lines_is_reassembled_whole(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")
    body = {"model": "toy", "prompt": "once", "stream": True}
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        _, received = stream_events(client, "/v1/completions", body, {"x-chunks": "6", "x-split": "1", "x-request-id": "split"})
        [event] = sentinel(client, collector)
    assert received == bytes(openai_server.sent[-1][1])
    answer = parse_response("text_completion", json.loads(event["response"]["body"]))
    assert answer.completion == "".join(f"tok{i} é€😀 " for i in range(6))
    assert answer.finish_reason == "length"
    assert answer.usage is None  # not asked for (no include_usage): none reported, none invented


def test_non_streamed_chat_completions_and_embeddings_keep_their_bodies_and_are_timed(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        chat = client.post("/v1/chat/completions", json={**CHAT, "stream": False}, headers={"x-request-id": "c", "x-chunks": "3"})
        completion = client.post("/openai/v1/completions", json={"prompt": ["a", "b"]}, headers={"x-request-id": "t", "x-chunks": "2"})
        embeddings = client.post("/v1/embeddings", json={"model": "e", "input": ["one", "three"]}, headers={"x-request-id": "e"})
        client.get("/v1/models")  # not a generative call: passes through uncaptured
        events = {e["id"]: e for e in sentinel(client, collector)}
        text = httpx.get(f"{sidecar.url}/driftwatch/metrics").text
    assert set(events) == {"c", "t", "e"}
    assert json.loads(events["c"]["response"]["body"]) == chat.json()  # kept as the model server sent it
    assert json.loads(events["t"]["response"]["body"]) == completion.json()
    assert json.loads(events["e"]["response"]["body"]) == embeddings.json()
    assert parse_response("embeddings", json.loads(events["e"]["response"]["body"])).vectors == ([3.0, 0.5, -1.0], [5.0, 0.5, -1.0])
    assert parse_request("embeddings", json.loads(events["e"]["request"]["body"])).inputs == ("one", "three")
    assert [events[k]["generation"]["operation"] for k in "cte"] == ["chat", "text_completion", "embeddings"]
    assert not any(events[k]["generation"]["streamed"] for k in "cte")
    assert metric(text, "driftwatch_sidecar_output_tokens_per_second_count", model="wine", operation="chat") == 1
    assert metric(text, "driftwatch_sidecar_time_to_first_token_seconds_count", model="wine", operation="chat") == 0  # streamed only
    assert metric(text, "driftwatch_sidecar_token_usage_tokens_sum", model="wine", operation="embeddings", type="input") == 6


def test_a_client_leaving_mid_stream_closes_the_upstream_and_nothing_is_captured(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")
    request = json.dumps(CHAT).encode()
    with socket.create_connection(("127.0.0.1", sidecar.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-chunks: 40\r\n"
                  b"x-delay: 0.05\r\nx-request-id: gone\r\nContent-Length: %d\r\n\r\n%s" % (len(request), request))
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
    time.sleep(0.3)
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        events = sentinel(client, collector)
    assert events == []
    # The upstream noticed (the sidecar closed its connection): its writes failed and it stopped.
    written = len(openai_server.sent[-1][0])
    time.sleep(0.3)
    assert len(openai_server.sent[-1][0]) == written < 40
    assert sidecar.proc is not None and sidecar.proc.poll() is None


def test_an_error_event_mid_stream_is_forwarded_and_captured_as_an_error(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        _, received = stream_events(client, "/v1/chat/completions", CHAT, {"x-chunks": "6", "x-fail": "error-event", "x-request-id": "err"})
        [event] = sentinel(client, collector)
        text = httpx.get(f"{sidecar.url}/driftwatch/metrics").text
    assert b"engine died" in received
    answer = parse_response("chat", json.loads(event["response"]["body"]))
    assert answer.error == "engine died"
    assert answer.finish_reason is None
    assert metric(text, "driftwatch_sidecar_time_to_first_token_seconds_count", model="wine", operation="chat") == 0  # not a success


def test_an_upstream_reset_mid_stream_aborts_the_client_and_captures_nothing(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms")
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            stream_events(client, "/v1/chat/completions", CHAT, {"x-chunks": "8", "x-fail": "reset", "x-request-id": "reset"})
        events = sentinel(client, collector)
    assert events == []
    assert sidecar.proc is not None and sidecar.proc.poll() is None


def test_a_stream_beyond_the_capture_limit_is_forwarded_whole_and_captured_truncated(
    openai_server: OpenAIServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(openai_server.url, collector.url, "--linger", "20ms", "--max-capture-bytes", "4KiB")
    piece = "x" * 1000 + "{i}"
    with httpx.Client(base_url=sidecar.url, timeout=30) as client:
        _, received = stream_events(client, "/v1/chat/completions", CHAT, {"x-chunks": "2000", "x-piece": piece, "x-request-id": "big"})
        [event] = sentinel(client, collector)
    assert received == bytes(openai_server.sent[-1][1])
    assert len(received) > 2_000_000
    body = json.loads(event["response"]["body"])
    answer = parse_response("chat", body)
    assert answer.truncated is True
    assert answer.completion == "".join(piece.replace("{i}", str(i)) for i in range(2000))[:4096]
    assert answer.finish_reason == "stop" and answer.usage.output_tokens == 2000  # type: ignore[union-attr]  # read past the limit
