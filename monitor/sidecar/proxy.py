"""The hot path: a protocol-level HTTP/1.1 reverse proxy (asyncio.Protocol + httptools, uvloop).

Measured on this machine, an httpx- or aiohttp-based proxy reached 3–28% of nginx's throughput;
parsing with httptools in protocol callbacks and reusing pooled keep-alive upstream connections
matches nginx. So there are no coroutines per request here: client bytes are parsed in
`ClientConnection.data_received`, forwarded as they arrive (bodies are streamed with flow control
both ways, never buffered whole) and the upstream's answer is parsed and relayed the same way.

Decisions:
- Headers are forwarded untouched (spelling, order, duplicates) except hop-by-hop ones; no
  X-Forwarded-For/Via is added: the sidecar shares the pod with the model and is transparent.
- Pipelined requests are answered in order (later ones wait, reading pauses meanwhile).
- Upgrade (WebSocket, h2c) and CONNECT are refused with 501.
- HTTP/1.0 clients get close-delimited responses (never chunked) and `Connection: close`.
- What the model server could route or frame differently from llhttp is refused, never forwarded:
  two Hosts, HTTP/1.1 without Host, Transfer-Encoding in HTTP/1.0 (400), a transfer coding other
  than chunked (501). Trailers are dropped. An upstream connection that sends bytes beyond the
  response it owed is out of step and closed, never pooled.
- A request that fails on a *reused* upstream connection before any response byte arrived is
  retried once on a fresh connection (the keep-alive race), if its bytes still fit the replay
  buffer; anything else is a 502/504 with a JSON body.
- Own endpoints under `/driftwatch/` on the same port (healthz, readyz, metrics); everything else,
  including the model's probe paths, passes through and is captured only if it matches
  --capture-path.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import httptools

from monitor.sidecar.capture import BodyBuffer, RawCapture
from monitor.sidecar.framing import error_body, local_response, request_head, response_head
from monitor.sidecar.metrics import SidecarMetrics
from monitor.sidecar.settings import SidecarSettings

__all__ = ["ProxyServer"]

log = logging.getLogger("driftwatch.sidecar.proxy")
REPLAY_LIMIT = 256 * 1024
BODY_BUFFER_LIMIT = 256 * 1024  # request bytes held while an upstream connection is being made
WRITE_HIGH_WATER = 256 * 1024
LOCAL_PREFIX = b"/driftwatch/"
LOCAL_METHODS = b"GET, HEAD"  # what the sidecar's own endpoints answer


class _Rejected(Exception):
    """Raised from a request-parser callback to stop parsing and answer this 4xx/5xx, then close."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class Exchange:
    """One request and its response, from the first request byte to the last response byte."""

    __slots__ = (
        "body_chunks",
        "body_size",
        "client",
        "close_after",
        "has_host",
        "head_sent",
        "head_size",
        "headers",
        "http10",
        "is_head",
        "keep_alive",
        "last_activity",
        "local",
        "method",
        "out",
        "out_size",
        "reason",
        "replay",
        "replay_size",
        "req_body",
        "req_chunked",
        "request_done",
        "resp_body",
        "resp_chunked",
        "resp_close_delimited",
        "resp_ctype",
        "resp_headers",
        "resp_out",
        "response_done",
        "retried",
        "reused",
        "started",
        "status",
        "t0",
        "t_sent",
        "ts",
        "upgrade",
        "upstream",
        "url",
    )

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.t0 = time.perf_counter()
        self.ts = time.time()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.method = b""
        self.http10 = False
        self.has_host = True
        self.keep_alive = True
        self.upgrade = False
        self.is_head = False
        self.req_chunked = False
        self.request_done = False
        self.started = False
        self.local = False
        self.body_chunks: list[bytes] = []  # request body parsed before the exchange started
        self.body_size = 0
        self.upstream: UpstreamConnection | None = None
        self.out: list[bytes] | None = []  # bytes waiting for the upstream connection (None: connected)
        self.out_size = 0
        self.replay: list[bytes] | None = []  # bytes sent upstream, for the one retry (None: too big)
        self.replay_size = 0
        self.reused = False
        self.retried = False
        self.req_body: BodyBuffer | None = None  # set when captured
        self.resp_body: BodyBuffer | None = None
        self.status = 0
        self.reason = b""
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False
        self.resp_chunked = False
        self.resp_close_delimited = False
        self.resp_ctype: bytes | None = None
        self.resp_out: list[bytes] = []  # response bytes parsed from one upstream read, written once at its end
        self.response_done = False
        self.close_after = False
        self.t_sent = 0.0
        self.last_activity = 0.0



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
        for name, value in ex.resp_headers:
            lname = name.lower()
            if lname == b"content-length":
                framed = True
            elif lname == b"transfer-encoding":
                chunked_in = True
            elif lname == b"content-type":
                ex.resp_ctype = value
        ex.resp_close_delimited = not no_body and not framed and not chunked_in
        ex.resp_chunked = not no_body and not framed and not ex.http10
        if ex.http10 and not no_body and not framed:
            ex.keep_alive = False  # the body ends when the connection does
        if self.server.draining or not ex.request_done:
            ex.keep_alive = False
        ex.close_after = not ex.keep_alive
        ex.resp_out.append(
            response_head(ex.status, ex.reason, ex.resp_headers, chunked=ex.resp_chunked, close=ex.close_after)
        )
        ex.head_sent = True  # committed: a failure from here on aborts the connection

    def response_body(self, ex: Exchange, body: bytes) -> None:
        if ex.resp_body is not None:
            ex.resp_body.add(body)
        ex.resp_out.append(b"%x\r\n%s\r\n" % (len(body), body) if ex.resp_chunked else body)

    def flush_response(self, ex: Exchange) -> None:
        """Write what one upstream read produced (head, body pieces) in one call."""
        out = ex.resp_out
        if out and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

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
        if ex.resp_body is not None:
            self.server.capture(ex, upstream)
        if ex.request_done:
            self.finish(ex)
        else:
            self.closing = True  # answered before the body was read: close rather than drain
            self.transport.close()


class UpstreamConnection(asyncio.Protocol):
    """One pooled keep-alive connection to the model server; serves one exchange at a time."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.usable = True
        self.idle_since = 0.0
        self.got_bytes = False
        self.sent_all = False
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's are not asyncio.Transport subclasses (so no isinstance check).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def attach(self, ex: Exchange) -> None:
        assert self.transport is not None
        self.ex = ex
        ex.upstream = self
        self.got_bytes = False
        self.sent_all = False
        ex.t_sent = time.perf_counter()
        ex.last_activity = self.server.loop.time()
        out, ex.out = ex.out or [], None
        ex.out_size = 0
        if ex.replay is not None:
            ex.replay.extend(out)
            ex.replay_size += sum(map(len, out))
            if ex.replay_size > REPLAY_LIMIT:
                ex.replay = None
        self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        ex.client.resume("buffer")
        self.resume_reading()
        if ex.request_done:
            self.sent_all = True

    def write(self, data: bytes) -> None:
        if self.transport is not None and self.usable:
            self.transport.write(data)

    def request_sent(self) -> None:
        self.sent_all = True

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:
            log.warning("upstream_out_of_step action=close")  # bytes while idle
            self.close()
            return
        self.got_bytes = True
        ex.last_activity = self.server.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _StopParsing):
                return
            self.fail("protocol", 502, "bad_gateway", f"invalid response from the model server: {exc}")
        except httptools.HttpParserError as exc:
            self.fail("protocol", 502, "bad_gateway", f"invalid response from the model server: {exc}")
        else:
            ex.client.flush_response(ex)  # no-op when the response completed in this read

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        ex = self.ex
        if ex is None or ex.response_done:
            return
        if ex.head_sent and ex.resp_close_delimited:
            self.on_message_complete()  # a close-delimited body ends with the connection
            return
        if not self.got_bytes and ex.reused and not ex.retried and ex.replay is not None:
            ex.retried = True
            self.ex = None
            ex.upstream = None
            ex.out = list(ex.replay)
            ex.out_size = ex.replay_size
            ex.replay = []
            ex.replay_size = 0
            self.server.connect_for(ex)
            return
        self.fail("reset", 502, "upstream_closed", "the model server closed the connection before answering")

    def pause_writing(self) -> None:
        if self.ex is not None:
            self.ex.client.pause("upstream")

    def resume_writing(self) -> None:
        if self.ex is not None:
            self.ex.client.resume("upstream")

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()

    # httptools callbacks
    def on_message_begin(self) -> None:
        ex = self.ex
        if ex is None:
            # More than the response asked for (in the read that completed it): the connection is
            # out of step and its next "response" could be this; never reuse it.
            log.warning("upstream_out_of_step action=close")
            self.close()
            raise _StopParsing
        ex.resp_headers = []

    def on_status(self, reason: bytes) -> None:
        if self.ex is not None:
            self.ex.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.ex
        if ex is not None and not ex.head_sent:  # trailers are dropped (the head is already sent)
            ex.resp_headers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        ex.status = self.parser.get_status_code()
        ex.client.response_head(ex)
        if ex.is_head and not 100 <= ex.status < 200:
            # httptools cannot be told a response has no body; finish here, never reuse.
            self.usable = False
            self.on_message_complete()
            raise _StopParsing

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is not None:
            ex.client.response_body(ex, body)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        if 100 <= ex.status < 200 and not ex.is_head:
            ex.reason = b""
            ex.status = 0
            return  # an interim response: the real one follows
        self.ex = None
        ex.upstream = None
        reusable = self.usable and self.sent_all and self.parser.should_keep_alive() and not ex.resp_close_delimited
        ex.client.response_complete(ex)
        if reusable:
            self.server.pool.release(self)
        else:
            self.close()

    def fail(self, kind: str, status: int, error: str, detail: str) -> None:
        ex = self.ex
        self.ex = None
        self.close()
        self.server.metrics.upstream_errors[kind].inc()
        log.warning("upstream_error kind=%s status=%d", kind, status)
        if ex is not None:
            ex.upstream = None
            ex.client.fail(ex, status, error, detail)

    def abandon(self) -> None:
        """The client went away or gave up: this connection is mid-exchange, so close it."""
        self.ex = None
        self.close()

    def close(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.close()


class _StopParsing(Exception):
    """Raised from a response-parser callback when the rest of the read is nobody's: a HEAD
    response's (absent) body, or bytes after a complete response."""


class UpstreamPool:
    """LIFO pool of idle keep-alive connections (LIFO keeps few connections warm)."""

    def __init__(self, server: ProxyServer, max_idle: int = 128) -> None:
        self.server = server
        self.idle: list[UpstreamConnection] = []
        self.max_idle = max_idle

    def acquire(self) -> UpstreamConnection | None:
        limit = self.server.loop.time() - self.server.settings.upstream_keepalive
        while self.idle:
            conn = self.idle.pop()
            if conn.usable and conn.idle_since > limit and conn.transport is not None and not conn.transport.is_closing():
                return conn
            conn.close()
        return None

    def release(self, conn: UpstreamConnection) -> None:
        if conn.usable and len(self.idle) < self.max_idle and not self.server.draining:
            conn.idle_since = self.server.loop.time()
            self.idle.append(conn)
        else:
            conn.close()

    def sweep(self) -> None:
        limit = self.server.loop.time() - self.server.settings.upstream_keepalive
        keep = []
        for conn in self.idle:
            if conn.usable and conn.idle_since > limit:
                keep.append(conn)
            else:
                conn.close()
        self.idle = keep

    def close_all(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle = []


class ProxyServer:
    """Listens, owns the upstream pool and the periodic sweep (timeouts), hands captures on."""

    def __init__(
        self,
        settings: SidecarSettings,
        metrics: SidecarMetrics,
        submit: Callable[[RawCapture], None],
        ready: Callable[[], dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.submit = submit
        self.ready = ready
        self.loop = asyncio.get_running_loop()
        self.pool = UpstreamPool(self)
        self.authority = settings.upstream.authority  # Host for HTTP/1.0 requests without one
        self.clients: set[ClientConnection] = set()
        self.draining = False
        self.server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed = asyncio.Event()
        self._capture_cache: dict[str, bool] = {}
        self._random = random.random

    async def start(self) -> int:
        """Listen; returns the bound port (useful with --port 0)."""
        self.server = await self.loop.create_server(
            lambda: ClientConnection(self), self.settings.host, self.settings.port, backlog=1024, reuse_address=True
        )
        self._schedule_sweep()
        return self.server.sockets[0].getsockname()[1]

    def should_capture(self, path: str) -> bool:
        cache = self._capture_cache
        hit = cache.get(path)
        if hit is None:
            hit = any(p.search(path) for p in self.settings.capture_paths)
            if len(cache) < 4096:
                cache[path] = hit
        ratio = self.settings.sample_ratio
        return hit and (ratio >= 1.0 or self._random() < ratio)

    def capture(self, ex: Exchange, upstream_seconds: float) -> None:
        """Hand the pair on as a tuple of references already held (the response is written by now)."""
        req, resp = ex.req_body, ex.resp_body
        assert req is not None and resp is not None
        raw: RawCapture = (
            ex.ts, upstream_seconds, ex.status, ex.method, ex.url, ex.headers, ex.resp_ctype,
            req.value(), req.truncated, resp.value(), resp.truncated,
        )
        self.submit(raw)

    def connect_for(self, ex: Exchange) -> None:
        self.loop.create_task(self._connect(ex))

    async def _connect(self, ex: Exchange) -> None:
        s = self.settings
        target = f"{s.upstream.host}:{s.upstream.port}"
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: UpstreamConnection(self), s.upstream.host, s.upstream.port),
                s.connect_timeout,
            )
        except TimeoutError:
            self._connect_failed(ex, "connect_timeout", 504, "upstream_timeout", f"no connection to the model server at {target} within {s.connect_timeout:g}s")
            return
        except OSError as exc:
            reason = "connection refused" if exc.errno == errno.ECONNREFUSED else (exc.strerror or type(exc).__name__)
            self._connect_failed(ex, "connect", 502, "upstream_unavailable", f"cannot connect to the model server at {target}: {reason}")
            return
        if ex.client.current is not ex or ex.client.closing:
            self.pool.release(conn)  # the client left while we were connecting
            return
        conn.attach(ex)

    def _connect_failed(self, ex: Exchange, kind: str, status: int, error: str, detail: str) -> None:
        self.metrics.upstream_errors[kind].inc()
        log.warning("upstream_error kind=%s status=%d", kind, status)
        ex.client.fail(ex, status, error, detail)

    def local_endpoint(self, method: bytes, url: bytes) -> tuple[int, bytes, bytes]:
        path = url.split(b"?", 1)[0]
        if path not in (b"/driftwatch/healthz", b"/driftwatch/readyz", b"/driftwatch/metrics"):
            return 404, error_body("not_found", f"no sidecar endpoint {path.decode('latin-1')!r}; see /driftwatch/healthz, /driftwatch/readyz, /driftwatch/metrics"), b"application/json"
        if method not in (b"GET", b"HEAD"):
            return 405, error_body("method_not_allowed", "use GET or HEAD"), b"application/json"
        if path == b"/driftwatch/metrics":
            return 200, self.metrics.render(), b"text/plain; version=0.0.4; charset=utf-8"
        if path == b"/driftwatch/healthz":
            return 200, b'{"status":"ok"}', b"application/json"
        state = self.ready()
        if self.draining:
            return 503, error_body("draining", state), b"application/json"
        return 200, json.dumps({"status": "ready", "shipping": state}).encode(), b"application/json"

    # -- timeouts: one sweep instead of a timer per request --------------------------------------

    def _schedule_sweep(self) -> None:
        interval = min(1.0, self.settings.upstream_timeout / 10, self.settings.client_keepalive / 10)
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        s = self.settings
        for client in list(self.clients):
            ex = client.current
            if ex is None or not ex.started:
                if now - client.idle_since > s.client_keepalive and client.transport is not None:
                    if client.head_bytes and ex is not None:
                        client.reject(408, "request_timeout", f"request head not received within {s.client_keepalive:g}s")
                    else:
                        client.transport.close()
            elif ex.upstream is not None and not ex.response_done and now - ex.last_activity > s.upstream_timeout:
                ex.upstream.fail("timeout", 504, "upstream_timeout", f"the model server did not answer within {s.upstream_timeout:g}s")
        self.pool.sweep()
        self._schedule_sweep()

    # -- shutdown --------------------------------------------------------------------------------

    def on_client_closed(self) -> None:
        if self.draining and not self.clients:
            self._all_closed.set()

    async def drain(self, timeout: float) -> None:
        """Stop accepting, let in-flight requests finish (their responses say Connection: close)."""
        self.draining = True
        if self.server is not None:
            self.server.close()
        for client in list(self.clients):
            if client.current is None and client.transport is not None:
                client.closing = True
                client.transport.close()
        if self.clients:
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except TimeoutError:
                log.warning("drain_timeout open_connections=%d", len(self.clients))
                for client in list(self.clients):
                    if client.transport is not None:
                        client.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.pool.close_all()
