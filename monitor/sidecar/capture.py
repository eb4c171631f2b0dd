"""Capture records: what the sidecar keeps of one request/response pair, and its wire form.

The proxy hands over references it already holds (timestamps, the request head's header list, the
bodies kept) as a `RawCapture`, once the response is written. `EventEncoder` turns it into the JSON
event of `POST /v1/events` (ids, allowlisted headers, utf-8 or base64 bodies) with msgspec; the
shipper queues that bytes object (no per-event objects for the garbage collector to walk, an exact
size for the memory bound).

The monitor validates the envelope strictly and refuses a whole batch (422) for one bad field, so
the encoder never produces a value outside monitor/capture/wire.py's limits (imported from there),
whatever one client or the model server sends: the path, method and content types are clipped, at
most `MAX_HEADERS` headers are kept, an invalid id is replaced, and a status outside 100-599 (not
HTTP, RFC 9110 §15) is recorded as 502, the failed call a gateway would have reported.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets

import msgspec

from monitor.capture.wire import (
    ID_PATTERN,
    MAX_CONTENT_TYPE,
    MAX_HEADERS,
    MAX_ID,
    MAX_METHOD,
    MAX_PATH,
    MAX_STATUS,
    MAX_VERSION_FIELD,
    MIN_STATUS,
    Generation,
)

__all__ = ["BodyBuffer", "EventEncoder", "RawCapture", "choose_id", "encode_body"]

_ID_RE = re.compile(ID_PATTERN.encode("ascii"))
Headers = list[tuple[bytes, bytes]]
INVALID_STATUS = 502


class BodyBuffer:
    """The first `limit` bytes of a body; remembers whether more arrived (truncated)."""

    __slots__ = ("chunks", "limit", "size", "truncated")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.limit = limit
        self.size = 0
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if room <= 0:
            if data:
                self.truncated = True
            return
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.chunks.append(data)
        self.size += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)


class RawCapture(msgspec.Struct, gc=False):
    """One captured pair as the proxy holds it: references, nothing copied or decoded yet.

    A msgspec Struct because one is built per captured request on the hot path and its
    constructor runs in C: within tens of nanoseconds of the anonymous tuple it replaced, where a
    NamedTuple or a `__slots__` class runs a Python-level `__new__`/`__init__` several times
    slower (`python benchmarks/sidecar.py --capture-types` compares them). `gc=False`: it holds only
    bytes, numbers and the parser's header list, so it cannot be part of a reference cycle.
    """

    started_at: float
    """Wall-clock time (epoch seconds) of the request's first byte."""
    upstream_seconds: float
    status: int
    method: bytes
    target: bytes
    """The request target as sent (path and query)."""
    headers: Headers
    """The request's header fields as parsed (spelling, order, duplicates)."""
    response_content_type: bytes | None
    request_body: bytes
    request_truncated: bool
    response_body: bytes
    response_truncated: bool
    generation: Generation | None = None
    """Set for OpenAI-compatible generative calls (monitor/sidecar/genai.py); the response body of a
    streamed one is the reassembled answer."""
    version: bytes | None = None
    """The model server's version header (`--version-header`), when it sent one."""


def choose_id(ce_id: bytes | None, request_id: bytes | None) -> str | None:
    """The caller's id (ce-id first, then x-request-id) when valid on the wire, else None."""
    for candidate in (ce_id, request_id):
        if candidate is not None:
            candidate = candidate.strip()
            if len(candidate) <= MAX_ID and _ID_RE.match(candidate):
                return candidate.decode("ascii")
    return None


def encode_body(body: bytes, truncated: bool) -> tuple[str, str]:
    """(text, encoding): utf-8 when the bytes are text, base64 otherwise.

    A truncated body may end inside a multi-byte character; up to 3 trailing bytes are dropped so
    that a cut UTF-8 text stays text.
    """
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if truncated and exc.reason == "unexpected end of data":
            return body[: exc.start].decode("utf-8"), "utf-8"
    return base64.b64encode(body).decode("ascii"), "base64"


class _Body(msgspec.Struct, gc=False):
    body: str
    encoding: str
    truncated: bool
    content_type: str | None


class _Event(msgspec.Struct, gc=False, omit_defaults=True):
    id: str
    model: str
    timestamp: float
    latency_seconds: float
    status: int
    method: str
    path: str
    request: _Body
    response: _Body
    headers: dict[str, str]
    generation: Generation | None = None  # omitted when None: other events' bytes are unchanged
    namespace: str | None = None  # likewise, for a sidecar not told its pod's namespace
    version: str | None = None  # likewise, for traffic that names no version (docs/versions.md)


def _body(body: bytes, truncated: bool, content_type: str | None) -> _Body:
    text, encoding = encode_body(body, truncated)
    return _Body(text, encoding, truncated, content_type)


class EventEncoder:
    """Raw captures -> compact UTF-8 JSON events of `POST /v1/events`.

    Generated ids are a random per-process prefix and a counter: unique (the monitor is idempotent
    by id, so a collision would lose an event), cheap, and ascending, which keeps the store's id
    index appends at its end.
    """

    def __init__(self, model: str, header_allow: frozenset[str], id_prefix: str | None = None,
                 namespace: str | None = None, version: str | None = None) -> None:
        """`version`: the fixed version of every event (`--model-version`), unless the model server's
        response names one."""
        self.model = model
        self.namespace = namespace
        self.version = version
        self.allow = header_allow
        self.prefix = id_prefix or secrets.token_hex(8)
        self._counter = itertools.count()
        self._encode = msgspec.json.Encoder().encode

    def new_id(self) -> str:
        return f"{self.prefix}-{next(self._counter):x}"

    def encode(self, c: RawCapture) -> bytes:
        allow = self.allow
        headers: dict[str, str] = {}
        ce_id = request_id = req_ct = None
        for name, value in c.headers:
            key = name.lower().decode("latin-1")
            if key == "ce-id":
                ce_id = value
            elif key == "x-request-id":
                request_id = value
            elif key == "content-type":
                req_ct = value[:MAX_CONTENT_TYPE].decode("latin-1")
            if key in allow and (len(headers) < MAX_HEADERS or key in headers):
                headers[key] = value.decode("latin-1")
        status, resp_ct = c.status, c.response_content_type
        event = _Event(
            choose_id(ce_id, request_id) or self.new_id(),
            self.model,
            round(c.started_at, 6),
            round(c.upstream_seconds, 6),
            status if MIN_STATUS <= status <= MAX_STATUS else INVALID_STATUS,
            c.method[:MAX_METHOD].decode("latin-1"),
            c.target.split(b"?", 1)[0][:MAX_PATH].decode("latin-1"),
            _body(c.request_body, c.request_truncated, req_ct),
            _body(c.response_body, c.response_truncated, None if resp_ct is None else resp_ct[:MAX_CONTENT_TYPE].decode("latin-1")),
            headers,
            c.generation,
            self.namespace,
            # the monitor checks the version (and rejects just this event if it is not one); clipped to the envelope's limit
            self.version if c.version is None else c.version[:MAX_VERSION_FIELD].decode("latin-1"),
        )
        return self._encode(event)
