"""The capture proxy's server: listens, connects upstream, sweeps timeouts, hands captures on.

The hot path is a protocol-level HTTP/1.1 reverse proxy (asyncio.Protocol + httptools on uvloop),
not a framework: an httpx- or aiohttp-based proxy reached 3-28% of nginx's throughput, while
parsing in protocol callbacks and reusing pooled keep-alive upstream connections matches it
(`python benchmarks/sidecar.py` measures this one against nginx). The two sides live in client.py
(requests from clients) and upstream.py (connections to the model server and their pool); this
module owns what they share: settings, metrics, the pool, the sidecar's own endpoints, one
periodic sweep instead of a timer per request, graceful draining, and the hand-over of each
captured pair as a `RawCapture` to the shipper's `submit`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from monitor.capture.openai import Operation, operation_of
from monitor.sidecar.capture import RawCapture
from monitor.sidecar.client import ClientConnection
from monitor.sidecar.framing import error_body
from monitor.sidecar.metrics import SidecarMetrics
from monitor.sidecar.settings import SidecarSettings
from monitor.sidecar.upstream import UpstreamConnection, UpstreamPool

if TYPE_CHECKING:
    from monitor.sidecar.exchange import Exchange

__all__ = ["ProxyServer"]

log = logging.getLogger("driftwatch.sidecar.proxy")


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
        self._genai_cache: dict[str, Operation | None] = {}
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

    def genai_operation(self, path: str) -> Operation | None:
        """The OpenAI-compatible operation of a captured path (cached like `should_capture`)."""
        cache = self._genai_cache
        if path in cache:
            return cache[path]
        found = operation_of(path)
        if len(cache) < 4096:
            cache[path] = found
        return found

    def capture(self, ex: Exchange, upstream_seconds: float, end: float) -> None:
        """Hand the pair on as references already held (the response is written by now)."""
        req, resp, gen = ex.req_body, ex.resp_body, ex.gen
        assert req is not None
        body, truncated = (resp.value(), resp.truncated) if resp is not None else (b"", False)
        ctype, generation = ex.resp_ctype, None
        if gen is not None:
            reassembled, generation = gen.finish(ex.t_sent, end, ex.status, body, truncated, self.metrics.genai)
            if reassembled is not None:
                body, truncated, ctype = reassembled, False, b"application/json"
        self.submit(RawCapture(
            ex.ts, upstream_seconds, ex.status, ex.method, ex.url, ex.headers, ctype,
            req.value(), req.truncated, body, truncated, generation, ex.resp_version,
        ))

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
