"""OpenAI-compatible generative calls on the proxy: timing, stream reassembly, the captured form.

An exchange on `/v1/chat/completions`, `/v1/completions` or `/v1/embeddings` (any prefix) that is
captured carries a `GenCapture`. A streamed answer (`text/event-stream`) is never held back: each
upstream read is written to the client first, and only then are its pieces fed to the
`StreamAssembler` (monitor/capture/openai.py), so reassembly costs the client nothing but the
microseconds between two reads. The raw SSE bytes are not kept (a 64 KiB raw cap would cut most
generations after a few hundred tokens: every token's event repeats id, model and timestamps);
the assembler keeps at most --max-capture-bytes characters of content and marks the rest
truncated. At the end the pair is shipped with the reassembled answer as its response body and a
`generation` record (wire.Generation); the histograms are observed once per call.

A stream that never ends (client gone, upstream reset) is not captured: its exchange has no
`response_complete`, the same as any other aborted exchange.
"""

from __future__ import annotations

import time

from monitor.capture.openai import Operation, StreamAssembler, Usage, usage_from, usage_of
from monitor.capture.wire import Generation
from monitor.sidecar.metrics import GenAIMetrics

__all__ = ["GenCapture"]

_EVENT_STREAM = b"text/event-stream"


class GenCapture:
    """Per-exchange state of a captured generative call."""

    __slots__ = ("operation", "pending", "stream", "t_first_byte", "t_first_token")

    def __init__(self, operation: Operation) -> None:
        self.operation: Operation = operation
        self.stream: StreamAssembler | None = None
        self.pending: list[bytes] = []
        self.t_first_byte = 0.0
        self.t_first_token = 0.0

    def head(self, content_type: bytes | None, max_chars: int) -> bool:
        """At the response head: True when the answer is streamed (its raw body is then not kept)."""
        if self.operation == "embeddings" or content_type is None:
            return False
        if content_type.split(b";", 1)[0].strip().lower() != _EVENT_STREAM:
            return False
        self.stream = StreamAssembler(self.operation, max_chars)
        return True

    def body(self, data: bytes) -> None:
        """A response body piece, before it is written (kept by reference, nothing parsed yet)."""
        if not self.t_first_byte:
            self.t_first_byte = time.perf_counter()
        if self.stream is not None:
            self.pending.append(data)

    def written(self) -> None:
        """The read's bytes went to the client: reassemble them now."""
        stream = self.stream
        if stream is None or not self.pending:
            return
        before = stream.content_events
        for piece in self.pending:
            stream.feed(piece)
        self.pending.clear()
        if not before and stream.content_events and not self.t_first_token:
            self.t_first_token = time.perf_counter()

    def finish(self, t_sent: float, end: float, status: int, raw_body: bytes, raw_truncated: bool, metrics: GenAIMetrics) -> tuple[bytes | None, Generation]:
        """(reassembled body or None to keep the raw one, the generation record); observes the histograms."""
        stream = self.stream
        ttfb = self.t_first_byte - t_sent if self.t_first_byte else None
        ttft = self.t_first_token - t_sent if self.t_first_token else None
        if stream is not None:
            self.written()
            body = stream.encoded()
            tokens = usage_from(stream.usage)
            ok = stream.error is None
        else:
            body = None
            tokens = None if raw_truncated else usage_of(raw_body)
            ok = True
        if 200 <= status < 300 and ok:
            self._observe(metrics, tokens, end - t_sent, ttft, end)
        generation = Generation(
            operation=self.operation, streamed=stream is not None,
            time_to_first_byte_seconds=None if ttfb is None else round(ttfb, 6),
            time_to_first_token_seconds=None if ttft is None else round(ttft, 6),
            events=stream.events if stream is not None else 0,
        )
        return body, generation

    def _observe(self, metrics: GenAIMetrics, tokens: Usage | None, duration: float, ttft: float | None, end: float) -> None:
        op = self.operation
        if tokens is not None:
            if tokens.input_tokens is not None:
                metrics.tokens[(op, "input")].observe(tokens.input_tokens)
            if tokens.output_tokens is not None and op != "embeddings":
                metrics.tokens[(op, "output")].observe(tokens.output_tokens)
        if op == "embeddings":
            return
        if ttft is not None:
            metrics.ttft[op].observe(ttft)
        out = tokens.output_tokens if tokens is not None else None
        if out and duration > 0:
            metrics.tokens_per_second[op].observe(out / duration)
        if out is not None and out > 1 and self.t_first_token:
            metrics.tpot[op].observe((end - self.t_first_token) / (out - 1))
