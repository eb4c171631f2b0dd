"""Time to first byte of a streamed chat answer, side by side: a streaming OpenAI-compatible toy
server called directly, and through `driftwatch sidecar` with capture on (the stream reassembled
after each forwarded read, shipped to a local collector) and with capture off, at concurrency 1.

    python benchmarks/sidecar_streaming.py [--requests 500] [--rounds 5] [--chunks 16] [--gap-ms 2]
    python benchmarks/sidecar_streaming.py --reassembly

`--reassembly` times, without servers, what the sidecar spends per event after forwarding it:
`StreamAssembler.feed` on a vLLM-sized chunk, beside the floor of decoding the same JSON alone.

Each request is `POST /v1/chat/completions` with `"stream": true`; the server answers vLLM's event
sequence (a role-only chunk, `--chunks` content chunks `--gap-ms` apart, a usage chunk, `[DONE]`).
The client is a raw keep-alive socket: TTFB is from the request's `sendall` to the arrival of the
first body bytes (the first `data:` event), TTLB to the terminating chunk. Rounds interleave the
targets so the shared machine's load falls on all of them alike; the table shows the median and
p99 over all requests of a target, with the load average before and after.

Target (issue 17): the sidecar adds under 1 ms to the median TTFB at concurrency 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sidecar import free_port, spawn, start_app, start_sidecar, wait_port  # noqa: E402

PATH = "/v1/chat/completions"
BODY = json.dumps({"model": "toy", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 16,
                   "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in a few words."}]}).encode()
REQUEST = (b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (PATH.encode(), len(BODY), BODY))


def stream_app(chunks: int, gap: float):  # type: ignore[no-untyped-def]
    """A raw ASGI streaming chat server (no framework): vLLM's SSE sequence, first event at once."""
    import asyncio

    def event(payload: dict) -> bytes:  # type: ignore[type-arg]
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"

    base = {"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "toy"}
    first = event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    middle = [event({**base, "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": "stop" if i == chunks - 1 else None}]})
              for i in range(chunks)]
    tail = event({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 20 + chunks}})

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        for piece in middle:
            await asyncio.sleep(gap)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})

    return app


def one(sock: socket.socket) -> tuple[float, float, int]:
    """(TTFB, TTLB, body bytes) of one streamed request on a keep-alive connection (chunked answer)."""
    t0 = time.perf_counter()
    sock.sendall(REQUEST)
    data = b""
    ttfb = 0.0
    while True:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError("closed mid-answer")
        data += piece
        if not ttfb and b"data:" in data:
            ttfb = time.perf_counter() - t0
        if data.endswith(b"\r\n0\r\n\r\n"):
            return ttfb, time.perf_counter() - t0, len(data)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def bench(requests: int, rounds: int, chunks: int, gap_ms: float) -> None:
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        try:
            port = free_port()
            model = spawn([sys.executable, str(Path(__file__).resolve()), "_serve", str(port), str(chunks), str(gap_ms / 1000)])
            procs.append(model)
            wait_port(port)
            collector, collector_port = start_app("collector_app")
            procs.append(collector)
            on, on_port = start_sidecar(tmp, port, collector_port)
            off, off_port = start_sidecar(tmp, port, collector_port, "--sample-ratio", "0")
            procs += [on, off]
            targets = {"direct": port, "sidecar, capture on": on_port, "sidecar, capture off": off_port}
            sizes = {}
            for name, target_port in targets.items():  # warm up: pooled upstream connections, caches
                with _connect(target_port) as s:
                    for _ in range(20):
                        sizes[name] = one(s)[2]
            load_before = os.getloadavg()
            ttfb: dict[str, list[float]] = {n: [] for n in targets}
            ttlb: dict[str, list[float]] = {n: [] for n in targets}
            per_round = max(1, requests // rounds)
            for _ in range(rounds):
                for name, target_port in targets.items():
                    # A fresh keep-alive connection per target and round (an idle one would meet the
                    # server's keep-alive timeout while the other targets run), warmed untimed.
                    with _connect(target_port) as s:
                        one(s)
                        for _ in range(per_round):
                            first, last, _size = one(s)
                            ttfb[name].append(first)
                            ttlb[name].append(last)
            load_after = os.getloadavg()
            time.sleep(1.0)  # let the last batch ship
            metrics = _scrape(on_port)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    n = per_round * rounds
    print(f"\nstreaming TTFB: POST {PATH} stream=true, {chunks} content chunks {gap_ms:g} ms apart (+ role, usage, [DONE]); "
          f"concurrency 1, {n} requests per target in {rounds} interleaved rounds; {os.cpu_count()} cores; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n")
    print(f"{'target':<22} {'TTFB p50 ms':>12} {'TTFB p99 ms':>12} {'+p50 ms':>9} {'+p99 ms':>9} {'TTLB p50 ms':>12} {'body B':>8}")
    base50, base99 = statistics.median(ttfb["direct"]) * 1e3, p99(ttfb["direct"]) * 1e3
    for name in targets:
        m50, m99 = statistics.median(ttfb[name]) * 1e3, p99(ttfb[name]) * 1e3
        added = "" if name == "direct" else f"{m50 - base50:+9.3f} {m99 - base99:+9.3f}"
        print(f"{name:<22} {m50:>12.3f} {m99:>12.3f} {added:>19} {statistics.median(ttlb[name]) * 1e3:>12.3f} {sizes[name]:>8}")
    added50 = statistics.median(ttfb["sidecar, capture on"]) * 1e3 - base50
    print(f"\ntarget: added TTFB p50 at c=1 with capture on: {added50:.3f} ms (< 1 ms) -> {'met' if added50 < 1 else 'NOT met'}")
    print(f"capture: {metrics.get('driftwatch_sidecar_events_captured_total', 0):.0f} captured, "
          f"{metrics.get('driftwatch_sidecar_events_shipped_total', 0):.0f} shipped; sidecar TTFT histogram count "
          f"{metrics.get('driftwatch_sidecar_time_to_first_token_seconds_count', 0):.0f}, mean TTFT "
          f"{_mean(metrics, 'driftwatch_sidecar_time_to_first_token_seconds') * 1e3:.3f} ms, mean time per output token "
          f"{_mean(metrics, 'driftwatch_sidecar_time_per_output_token_seconds') * 1e3:.3f} ms")


def reassembly(number: int = 200_000) -> None:
    import timeit

    import msgspec

    from monitor.capture.openai import StreamAssembler

    payload = json.dumps({"id": "chatcmpl-8f2c1d", "object": "chat.completion.chunk", "created": 1733450000,
                          "model": "meta-llama/Llama-3.1-8B-Instruct",
                          "choices": [{"index": 0, "delta": {"content": " word"}, "logprobs": None, "finish_reason": None}]}).encode()
    event = b"data: " + payload + b"\n\n"
    assembler = StreamAssembler("chat", 1 << 40)
    decode = msgspec.json.Decoder().decode
    cases = [("msgspec decode of the JSON alone (floor)", lambda: decode(payload)), ("StreamAssembler.feed (one event)", lambda: assembler.feed(event))]
    print(f"reassembly: one {len(event)} B vLLM chat event, best of 5 x {number}; load average {os.getloadavg()[0]:.2f}\n")
    for label, fn in cases:
        print(f"{label:<42} {min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6:>7.2f} us")


def _scrape(port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/driftwatch/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("driftwatch_") and "_bucket" not in line:
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _mean(metrics: dict[str, float], family: str) -> float:
    count = metrics.get(family + "_count", 0.0)
    return metrics.get(family + "_sum", 0.0) / count if count else float("nan")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "_serve":
        import uvicorn

        app = stream_app(int(sys.argv[3]), float(sys.argv[4]))
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools", log_level="warning", access_log=False)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests per target")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per answer")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="milliseconds between content chunks")
    parser.add_argument("--reassembly", action="store_true", help="time the per-event reassembly instead")
    args = parser.parse_args()
    if args.reassembly:
        reassembly()
        return
    bench(args.requests, max(1, args.rounds), args.chunks, args.gap_ms)


if __name__ == "__main__":
    main()
