"""Capture records: what the sidecar keeps of one request/response pair, and its wire form.

The hot path only collects bytes and numbers into a `Capture`; turning it into the JSON event of
`POST /v1/events` (utf-8 or base64 bodies) happens later, in the shipper, off the latency path.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

__all__ = ["BodyBuffer", "Capture", "choose_id", "encode_body", "event_json"]

_ID_RE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def choose_id(ce_id: bytes | None, request_id: bytes | None) -> str:
    """Reuse the caller's id (ce-id first, then x-request-id) when valid on the wire, else a uuid4."""
    for candidate in (ce_id, request_id):
        if candidate is not None:
            candidate = candidate.strip()
            if _ID_RE.match(candidate):
                return candidate.decode("ascii")
    return uuid.uuid4().hex


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


class Capture:
    """One captured pair, as plain fields (cheap to build on the hot path)."""

    __slots__ = (
        "content_types",
        "headers",
        "id",
        "latency",
        "method",
        "model",
        "path",
        "request",
        "request_truncated",
        "response",
        "response_truncated",
        "status",
        "timestamp",
    )

    def __init__(
        self,
        *,
        id: str,
        model: str,
        timestamp: float,
        latency: float,
        status: int,
        method: str,
        path: str,
        request: bytes,
        request_truncated: bool,
        response: bytes,
        response_truncated: bool,
        content_types: tuple[str | None, str | None],
        headers: dict[str, str],
    ) -> None:
        self.id = id
        self.model = model
        self.timestamp = timestamp
        self.latency = latency
        self.status = status
        self.method = method
        self.path = path
        self.request = request
        self.request_truncated = request_truncated
        self.response = response
        self.response_truncated = response_truncated
        self.content_types = content_types
        self.headers = headers

    @property
    def approx_bytes(self) -> int:
        """Memory held by this capture, for the queue's byte bound."""
        return len(self.request) + len(self.response) + 512


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


def _body(body: bytes, truncated: bool, content_type: str | None) -> dict[str, Any]:
    text, encoding = encode_body(body, truncated)
    return {"body": text, "encoding": encoding, "truncated": truncated, "content_type": content_type}


def event_json(c: Capture) -> bytes:
    """The capture as one event of `POST /v1/events`, serialized (compact, UTF-8)."""
    event = {
        "id": c.id,
        "model": c.model,
        "timestamp": round(c.timestamp, 6),
        "latency_seconds": round(c.latency, 6),
        "status": c.status,
        "method": c.method,
        "path": c.path,
        "request": _body(c.request, c.request_truncated, c.content_types[0]),
        "response": _body(c.response, c.response_truncated, c.content_types[1]),
        "headers": c.headers,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
