"""POST /v1/events to the monitor over one pooled keep-alive HTTP/1.1 connection.

Why not httpx: in `python benchmarks/sidecar.py` on a 2-core machine, httpx's AsyncClient ran 0.5-0.9 ms (up to ~5 ms) of
Python between awaits for each 300 KB batch, on the proxy's event loop, which showed as p99
latency of proxied requests (c=1 p99 ~2-3 ms with capture on, ~0.5-0.9 ms without). Here a request
is an asyncio.Protocol + httptools (as on the hot path), and the body is written in 64 KiB slices
with a yield between them, so no single step holds the loop for long.

The body arrives as pieces (the shipper's encoded events and the JSON framing between them) and is
never joined whole: a 350 KB batch as one bytes object is a fresh mmap'd allocation whose page
faults cost 0.2-0.6 ms on the loop per batch, visible in the benchmark's c=1 p99; slices of 64 KiB come
from the heap.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import ssl
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

__all__ = ["Answer", "MonitorClient", "MonitorUnreachable", "parse_retry_after", "slices"]

SLICE = 64 * 1024
MAX_RESPONSE_BODY = 64 * 1024  # what is kept of an answer (only its `error` field is read)


class Answer(NamedTuple):
    status: int
    body: bytes
    """The first bytes of the answer (only its `error` field is read)."""
    retry_after: float | None
    """Seconds the monitor (or a proxy before it) asked to wait, from `Retry-After`."""


def parse_retry_after(value: bytes, now: float | None = None) -> float | None:
    """`Retry-After` (RFC 9110 §10.2.3) in seconds from `now`: delay-seconds or an HTTP-date; None if invalid."""
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP-date is always GMT; a date without a zone is not one
    delay = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, delay) if math.isfinite(delay) else None


class MonitorUnreachable(Exception):
    """No complete answer: connect error, reset, timeout or a malformed response (retryable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def slices(pieces: Sequence[bytes], size: int = SLICE) -> Iterator[bytes | memoryview]:
    """The concatenation of `pieces` in writes of about `size` bytes: small pieces grouped, large ones cut."""
    group: list[bytes] = []
    total = 0
    for piece in pieces:
        if not piece:
            continue
        if len(piece) > size:
            if group:
                yield b"".join(group)
                group, total = [], 0
            view = memoryview(piece)
            for start in range(0, len(piece), size):
                yield view[start : start + size]
            continue
        group.append(piece)
        total += len(piece)
        if total >= size:
            yield b"".join(group)
            group, total = [], 0
    if group:
        yield b"".join(group)


class _Exchange(asyncio.Protocol):
    """One connection; one request at a time. `response` resolves to (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: asyncio.Future[Answer] | None = None
        self.body = bytearray()
        self.retry_after: bytes | None = None
        self.keep_alive = False
        self.closed = False
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail("connection closed before a complete answer")
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"invalid response: {exc}")
            self.close()

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = value

    def on_body(self, body: bytes) -> None:
        if len(self.body) < MAX_RESPONSE_BODY:
            self.body += body[: MAX_RESPONSE_BODY - len(self.body)]

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.response is not None and not self.response.done():
            retry_after = None if self.retry_after is None else parse_retry_after(self.retry_after)
            self.response.set_result(Answer(self.parser.get_status_code(), bytes(self.body), retry_after))

    def _fail(self, reason: str) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_exception(MonitorUnreachable(reason))

    async def writable(self) -> None:
        if self._writable is not None:
            await self._writable

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class MonitorClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/").encode()
        self.timeout = timeout
        self._ssl = ssl.create_default_context() if self.tls else None
        self._authority = parts.netloc.rsplit("@", 1)[-1].encode()
        self.set_token(token)
        self._conn: _Exchange | None = None

    def set_token(self, token: str | None) -> None:
        """The bearer token of the next requests (a rotated one); None sends no Authorization header."""
        auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
        self._headers = b"Host: %s\r\nUser-Agent: driftwatch-sidecar\r\nContent-Type: application/json\r\n%s" % (self._authority, auth)

    async def post(self, path: str, body: Sequence[bytes]) -> Answer:
        """POST the concatenation of the `body` pieces; MonitorUnreachable when there is no complete answer.

        A pooled connection the monitor closed just as it was reused (its idle timeout) is retried
        once on a fresh one, so that race never counts as the monitor being away."""
        reused = self._conn is not None and not self._conn.closed
        try:
            return await self._post(path, body)
        except MonitorUnreachable:
            if not reused:
                raise
        return await self._post(path, body)

    async def _post(self, path: str, body: Sequence[bytes]) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(path.encode(), body), self.timeout)
        except TimeoutError:
            self._drop()
            raise MonitorUnreachable(f"no answer within {self.timeout:g}s") from None
        except OSError as exc:
            self._drop()
            raise MonitorUnreachable(type(exc).__name__) from None
        except MonitorUnreachable:
            self._drop()
            raise

    async def _exchange(self, path: bytes, body: Sequence[bytes]) -> Answer:
        conn = self._conn
        if conn is None or conn.closed:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(
                _Exchange, self.host, self.port, ssl=self._ssl, server_hostname=self.host if self.tls else None
            )
            self._conn = conn
        assert conn.transport is not None
        conn.response = asyncio.get_running_loop().create_future()
        conn.body = bytearray()
        conn.retry_after = None
        length = sum(map(len, body))
        head = b"POST %s%s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (self.prefix, path, self._headers, length)
        sent_all = True
        for i, part in enumerate(slices([head, *body])):
            if i:
                await asyncio.sleep(0)  # let proxied requests run between slices
                await conn.writable()
                if conn.closed or conn.response.done():
                    sent_all = False  # answered early (e.g. 413) or failed: the answer is in `response`
                    break
            conn.transport.write(part)
        answer = await conn.response
        if not conn.keep_alive or not sent_all:
            self._drop()  # the stream is out of step (or closing): never reuse it
        return answer

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        self._drop()
