"""The downstream side of the hot path: one client connection, its parser and its exchanges.

Client bytes are parsed with httptools in `data_received` (no coroutine per request), forwarded
as they arrive (bodies are streamed with flow control both ways, never buffered whole), and the
upstream's answer is relayed back through the `response_*` methods.

Decisions:
- Headers are forwarded untouched (spelling, order, duplicates) except hop-by-hop ones; no
  X-Forwarded-For/Via is added: the sidecar shares the pod with the model and is transparent.
- Pipelined requests are answered in order (later ones wait, reading pauses meanwhile).
- Upgrade (WebSocket, h2c) and CONNECT are refused with 501.
- HTTP/1.0 clients get close-delimited responses (never chunked) and `Connection: close`.
- What the model server could route or frame differently from llhttp is refused, never forwarded:
  two Hosts, HTTP/1.1 without Host, Transfer-Encoding in HTTP/1.0 (400), a transfer coding other
  than chunked (501). Trailers are dropped.
- Response bodies are written per upstream read, so a streamed answer (SSE) reaches the client
  chunk by chunk; a captured OpenAI-compatible stream is reassembled only after each write
  (genai.py), never before it.
- Own endpoints under `/driftwatch/` on the same port (healthz, readyz, metrics); everything else,
  including the model's probe paths, passes through and is captured only if it matches
  --capture-path.

Over 400 lines, and one concept: the request parser's callbacks, the driving of exchanges in order
and the relaying of their responses are one state machine over the same connection state (paused
reasons, the current and pending exchanges); split, each half would reach into the other's fields.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from monitor.sidecar.capture import BodyBuffer
from monitor.sidecar.exchange import BODY_BUFFER_LIMIT, REPLAY_LIMIT, WRITE_HIGH_WATER, Exchange
from monitor.sidecar.framing import error_body, local_response, request_head, response_head
from monitor.sidecar.genai import GenCapture

if TYPE_CHECKING:
    from monitor.sidecar.server import ProxyServer

__all__ = ["ClientConnection"]

log = logging.getLogger("driftwatch.sidecar.proxy")
LOCAL_PREFIX = b"/driftwatch/"
LOCAL_METHODS = b"GET, HEAD"  # what the sidecar's own endpoints answer


class _Rejected(Exception):
    """Raised from a request-parser callback to stop parsing and answer this 4xx/5xx, then close."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class ClientConnection(asyncio.Protocol):
    """One downstream (client) connection: parses requests and drives their exchanges in order."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.s = server.settings
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.parsing: Exchange | None = None  # the message the parser is in
        self.current: Exchange | None = None  # the exchange being proxied
        self.pending: deque[Exchange] = deque()  # pipelined, waiting their turn
        self.in_head = True
        self.head_bytes = 0
        self.idle_since = 0.0
        self.paused: set[str] = set()
        self.closing = False
        self.deferred_error: bytes | None = None
        self.ready: Exchange | None = None  # head complete in this read: started once the read is parsed

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's are not asyncio.Transport subclasses (so no isinstance check).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.idle_since = self.server.loop.time()
        self.server.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.clients.discard(self)
        for ex in (self.current, *self.pending):
            if ex is not None and ex.upstream is not None:
                ex.upstream.abandon()
        self.current = None
        self.pending.clear()
        self.server.on_client_closed()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the exchange was flagged in on_headers_complete and is answered 501
        except httptools.HttpParserCallbackError as exc:
            ctx = exc.__context__
            if isinstance(ctx, _Rejected):
                self.reject(ctx.status, ctx.error, ctx.detail)
            else:
                log.error("proxy_internal_error error=%r", ctx)
                self.reject(500, "internal_error", "the sidecar failed on this request")
        except httptools.HttpParserError as exc:
            self.reject(400, "bad_request", f"malformed HTTP request: {exc}")
        else:
            if self.in_head and self.head_bytes > self.s.max_header_bytes:
                self.reject(431, "request_header_too_large", f"request head exceeds {self.s.max_header_bytes} bytes")
        ex, self.ready = self.ready, None
        if ex is not None and ex is self.current and not ex.started and not self.closing:
            # Started after the whole read is parsed, so a head and the body bytes that came
            # with it go upstream in one write (one syscall, one segment) instead of two.
            self.start(ex)

    def pause_writing(self) -> None:
        ex = self.current
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()

    def resume_writing(self) -> None:
        ex = self.current
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        ex = Exchange(self)
        self.parsing = ex
        if self.current is None:
            self.current = ex
        else:
            self.pending.append(ex)
            self.pause("pipeline")

    def on_url(self, url: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.url += url
        ex.head_size += len(url)
        if len(ex.url) > self.s.max_header_bytes:
            raise _Rejected(414, "uri_too_long", f"request target exceeds {self.s.max_header_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a trailer field: dropped, never promoted into the head (which may not be sent yet)
        ex = self.parsing
        assert ex is not None
        ex.headers.append((name, value))
        ex.head_size += len(name) + len(value) + 4
        if ex.head_size > self.s.max_header_bytes:
            raise _Rejected(431, "request_header_too_large", f"request head exceeds {self.s.max_header_bytes} bytes")
        if len(ex.headers) > self.s.max_headers:
            raise _Rejected(431, "request_header_too_large", f"more than {self.s.max_headers} header fields")

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        self.in_head = False
        p = self.parser
        ex.method = p.get_method()
        ex.http10 = p.get_http_version() == "1.0"
        ex.keep_alive = p.should_keep_alive() and not ex.http10
        ex.upgrade = p.should_upgrade()
        ex.is_head = ex.method == b"HEAD"
        hosts = 0
        codings: list[bytes] | None = None
        for n, v in ex.headers:
            lname = n.lower()
            if lname == b"host":
                hosts += 1
            elif lname == b"transfer-encoding":
                codings = (codings or []) + [c.strip().lower() for c in v.split(b",")]
        # RFC 9112 §3.2 and §6.1: what the model server might route or frame differently from us is
        # refused here rather than forwarded (llhttp already refuses CL+TE, duplicate CL, bad TE).
        if hosts > 1:
            raise _Rejected(400, "bad_request", "more than one Host header field")
        if hosts == 0 and not ex.http10:
            raise _Rejected(400, "bad_request", "an HTTP/1.1 request without a Host header field")
        ex.has_host = hosts == 1
        if codings is not None and not ex.upgrade:
            if ex.http10:
                raise _Rejected(400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request: its framing cannot be trusted")
            if any(c != b"chunked" for c in codings):
                raise _Rejected(501, "not_implemented", "the sidecar forwards only the chunked transfer coding")
            ex.req_chunked = True
        if ex is self.current:
            self.ready = ex

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is None or ex.local or ex.upgrade:
            return
        if ex.req_body is not None:
            ex.req_body.add(body)
        if not ex.started or ex.response_done:
            if not ex.response_done:
                ex.body_chunks.append(body)
                ex.body_size += len(body)
                if ex.body_size > BODY_BUFFER_LIMIT:
                    self.pause("buffer")
            return
        self.send_upstream(ex, b"%x\r\n%s\r\n" % (len(body), body) if ex.req_chunked else body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        self.in_head = True
        self.head_bytes = 0
        if ex is None:
            return
        ex.request_done = True
        if ex.upgrade:
            self.pause("upgrade")  # what follows is another protocol: never parsed
        if ex.started and not ex.local and not ex.upgrade:
            if ex.req_chunked and not ex.response_done:
                self.send_upstream(ex, b"0\r\n\r\n")
            if ex.upstream is not None:
                ex.upstream.request_sent()
        if ex.response_done:
            self.finish(ex)

    # -- driving exchanges -----------------------------------------------------------------------

    def start(self, ex: Exchange) -> None:
        ex.started = True
        server = self.server
        if ex.upgrade:
            ex.local = True
            ex.keep_alive = False
            what = "CONNECT" if ex.method == b"CONNECT" else "protocol upgrade (Upgrade header)"
            self.respond_local(ex, 501, error_body("not_implemented", f"the sidecar does not proxy {what}"))
            return
        if ex.url.startswith(LOCAL_PREFIX):
            ex.local = True
            status, body, ctype = server.local_endpoint(ex.method, ex.url)
            self.respond_local(ex, status, body, ctype, allow=LOCAL_METHODS if status == 405 else None)
            return
        if server.draining:
            ex.keep_alive = False
        path = ex.url.split(b"?", 1)[0].decode("latin-1")
        if server.should_capture(path):
            ex.req_body = BodyBuffer(self.s.max_capture_bytes)
            ex.resp_body = BodyBuffer(self.s.max_capture_bytes)
            for chunk in ex.body_chunks:
                ex.req_body.add(chunk)
            operation = server.genai_operation(path) if ex.method == b"POST" else None
            if operation is not None:
                ex.gen = GenCapture(operation)
        head = request_head(ex.method, ex.url, ex.headers, chunked=ex.req_chunked, default_host=None if ex.has_host else server.authority)
        out = [head]
        for chunk in ex.body_chunks:
            out.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if ex.req_chunked else chunk)
        if ex.request_done and ex.req_chunked:
            out.append(b"0\r\n\r\n")
        ex.body_chunks = []
        ex.body_size = 0
        self.resume("buffer")
        ex.out = out
        ex.out_size = sum(map(len, out))
        conn = server.pool.acquire()
        if conn is not None:
            ex.reused = True
            conn.attach(ex)
        else:
            server.connect_for(ex)

    def send_upstream(self, ex: Exchange, data: bytes) -> None:
        if ex.replay is not None:
            ex.replay_size += len(data)
            if ex.replay_size > REPLAY_LIMIT:
                ex.replay = None
            else:
                ex.replay.append(data)
        if ex.out is not None:  # still connecting
            ex.out.append(data)
            ex.out_size += len(data)
            if ex.out_size > BODY_BUFFER_LIMIT:
                self.pause("buffer")
        elif ex.upstream is not None:
            ex.upstream.write(data)

    def respond_local(self, ex: Exchange, status: int, body: bytes, ctype: bytes = b"application/json", allow: bytes | None = None) -> None:
        close = not ex.keep_alive or self.server.draining
        ex.close_after = close
        assert self.transport is not None
        self.transport.write(local_response(status, body, content_type=ctype, close=close, head_only=ex.is_head, allow=allow))
        ex.head_sent = True
        ex.response_done = True
        if ex.request_done:
            self.finish(ex)

    def fail(self, ex: Exchange, status: int, error: str, detail: str) -> None:
        """The upstream exchange failed: a JSON error if nothing was sent yet, else abort."""
        if ex.upstream is not None:
            ex.upstream.abandon()
            ex.upstream = None
        if ex is not self.current or self.transport is None:
            return
        if ex.head_sent:
            self.transport.abort()
            return
        ex.local = True
        if not ex.request_done:
            ex.keep_alive = False  # the rest of the request body is not read: close
            self.closing = True
        self.respond_local(ex, status, error_body(error, detail))
        if not ex.request_done:
            self.transport.close()

    def finish(self, ex: Exchange) -> None:
        """Response written and request fully read: move on to the next request or close."""
        if ex is not self.current:
            return
        self.current = None
        self.resume("upstream")
        self.resume("buffer")
        if self.transport is None or self.closing:
            return
        if ex.close_after or not ex.keep_alive:
            self.closing = True
            self.transport.close()
            return
        if self.pending:
            nxt = self.pending.popleft()
            self.current = nxt
            if not self.pending:
                self.resume("pipeline")
            if nxt.method:  # headers complete
                self.start(nxt)
        elif self.deferred_error is not None:
            self.closing = True
            self.transport.write(self.deferred_error)
            self.transport.close()
        else:
            self.idle_since = self.server.loop.time()
            if self.server.draining:
                self.closing = True
                self.transport.close()

    def reject(self, status: int, error: str, detail: str) -> None:
        """Malformed or oversized input: a precise 4xx, then close (the stream cannot be trusted)."""
        if self.transport is None:
            return
        self.parser = httptools.HttpRequestParser(self)  # never feed the broken parser again
        self.pause("rejected")
        self.in_head = False
        response = local_response(status, error_body(error, detail), close=True)
        broken = self.parsing
        self.parsing = None
        if broken is not None and broken in self.pending:
            self.pending.remove(broken)
        ex = self.current
        if ex is not None and (ex is not broken or ex.started) and not ex.response_done:
            if ex is broken:  # its own body was malformed: the upstream got a broken request
                self.fail(ex, status, error, detail)
            else:
                self.deferred_error = response  # answer the earlier requests first, then this
            return
        self.closing = True
        self.transport.write(response)
        self.transport.close()

    def pause(self, reason: str) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self.paused:
            self.paused.discard(reason)
            if not self.paused and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    # -- upstream events (called by UpstreamConnection) ------------------------------------------

    def response_head(self, ex: Exchange) -> None:
        assert self.transport is not None
        if 100 <= ex.status < 200:
            if not ex.http10:
                self.transport.write(response_head(ex.status, ex.reason, ex.resp_headers, chunked=False, close=False))
            return
        no_body = ex.is_head or ex.status in (204, 304)
        framed = chunked_in = False
        version_header = self.s.version_header
        for name, value in ex.resp_headers:
            lname = name.lower()
            if lname == b"content-length":
                framed = True
            elif lname == b"transfer-encoding":
                chunked_in = True
            elif lname == b"content-type":
                ex.resp_ctype = value
            elif lname == version_header:
                ex.resp_version = value
        ex.resp_close_delimited = not no_body and not framed and not chunked_in
        ex.resp_chunked = not no_body and not framed and not ex.http10
        if ex.http10 and not no_body and not framed:
            ex.keep_alive = False  # the body ends when the connection does
        if self.server.draining or not ex.request_done:
            ex.keep_alive = False
        ex.close_after = not ex.keep_alive
        if ex.gen is not None and ex.gen.head(ex.resp_ctype, self.s.max_capture_bytes):
            ex.resp_body = None  # streamed: reassembled after each write instead of kept raw
        ex.resp_out.append(
            response_head(ex.status, ex.reason, ex.resp_headers, chunked=ex.resp_chunked, close=ex.close_after)
        )
        ex.head_sent = True  # committed: a failure from here on aborts the connection

    def response_body(self, ex: Exchange, body: bytes) -> None:
        if ex.resp_body is not None:
            ex.resp_body.add(body)
        if ex.gen is not None:
            ex.gen.body(body)
        ex.resp_out.append(b"%x\r\n%s\r\n" % (len(body), body) if ex.resp_chunked else body)

    def flush_response(self, ex: Exchange) -> None:
        """Write what one upstream read produced (head, body pieces) in one call."""
        out = ex.resp_out
        if out and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if ex.gen is not None:
            ex.gen.written()  # after the write: reassembly never delays the client's bytes

    def response_complete(self, ex: Exchange) -> None:
        assert self.transport is not None
        if ex.resp_chunked:
            ex.resp_out.append(b"0\r\n\r\n")
        self.flush_response(ex)
        ex.response_done = True
        end = time.perf_counter()
        upstream = end - ex.t_sent
        m = self.server.metrics
        m.upstream_seconds.observe(upstream)
        m.overhead_seconds.observe(max(0.0, end - ex.t0 - upstream))
        m.responses[min(max(ex.status // 100, 0), 6)] += 1
        if ex.resp_body is not None or ex.gen is not None:
            self.server.capture(ex, upstream, end)
        if ex.request_done:
            self.finish(ex)
        else:
            self.closing = True  # answered before the body was read: close rather than drain
            self.transport.close()
