"""One proxied request and its response: the state the client and upstream connections share.

A plain `__slots__` record (one per request, no dataclass machinery): the client connection
(client.py) fills the request side from its parser callbacks, the upstream connection
(upstream.py) the response side from its own. The limits below bound what one exchange buffers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.sidecar.capture import BodyBuffer
    from monitor.sidecar.client import ClientConnection
    from monitor.sidecar.genai import GenCapture
    from monitor.sidecar.upstream import UpstreamConnection

__all__ = ["BODY_BUFFER_LIMIT", "REPLAY_LIMIT", "WRITE_HIGH_WATER", "Exchange"]

REPLAY_LIMIT = 256 * 1024  # request bytes kept for the one retry on a fresh upstream connection
BODY_BUFFER_LIMIT = 256 * 1024  # request bytes held while an upstream connection is being made
WRITE_HIGH_WATER = 256 * 1024  # a transport's write buffer above which the other side stops reading


class Exchange:
    """One request and its response, from the first request byte to the last response byte."""

    __slots__ = (
        "body_chunks",
        "body_size",
        "client",
        "close_after",
        "gen",
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
        "resp_version",
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
        self.gen: GenCapture | None = None  # a captured OpenAI-compatible call (genai.py)
        self.status = 0
        self.reason = b""
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False
        self.resp_chunked = False
        self.resp_close_delimited = False
        self.resp_ctype: bytes | None = None
        self.resp_version: bytes | None = None
        """The model server's `--version-header`, when it sent one (docs/versions.md)."""
        self.resp_out: list[bytes] = []  # response bytes parsed from one upstream read, written once at its end
        self.response_done = False
        self.close_after = False
        self.t_sent = 0.0
        self.last_activity = 0.0

