"""The upstream side of the hot path: keep-alive connections to the model server and their pool.

Each connection serves one exchange at a time and parses the answer with httptools in protocol
callbacks, handing head and body pieces to the client connection as they arrive.

Decisions:
- An upstream connection that sends bytes beyond the response it owed is out of step and closed,
  never pooled; so is one that answered a HEAD (httptools cannot be told it has no body).
- A request that fails on a *reused* connection before any response byte arrived is retried once
  on a fresh connection (the keep-alive race), if its bytes still fit the replay buffer
  (`REPLAY_LIMIT`); anything else is a 502/504 with a JSON body.
- The pool is LIFO, so few connections stay warm and idle ones age out (--upstream-keepalive).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

import httptools

from monitor.sidecar.exchange import REPLAY_LIMIT, WRITE_HIGH_WATER

if TYPE_CHECKING:
    from monitor.sidecar.exchange import Exchange
    from monitor.sidecar.server import ProxyServer

__all__ = ["UpstreamConnection", "UpstreamPool"]

log = logging.getLogger("driftwatch.sidecar.proxy")


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
