"""The HTTP error vocabulary every driftwatch route speaks (the README's "HTTP API" section; docs/architecture.md).

One place for the `{"error": "...", "detail": ...}` body, the names (`too_large`,
`validation_failed`, ...) and the shape of a validation detail (`[{loc, msg, type}]`), so that a
client (or Alertmanager's log) sees the same answer for the same mistake on every route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

__all__ = ["MAX_ERRORS", "ApiError", "error_response", "loc_path", "read_body", "validation_detail"]

MAX_ERRORS = 50
"""Validation details listed at most: enough to fix a payload, bounded for a hostile one."""
BODY_IDLE_TIMEOUT = 30.0
"""Seconds a request body may send nothing before it is answered 408: a stalled or hostile client
must not hold a connection, and the monitor's graceful shutdown, for ever."""


class ApiError(Exception):
    """An HTTP error with the project's JSON body."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.detail, self.headers)


def error_response(status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=dict(headers or {}))


def loc_path(loc: Sequence[Any]) -> str:
    """`events[3].request.body` from pydantic's ('events', 3, 'request', 'body'); `(body)` for the whole body."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's errors as `[{loc, msg, type}]`; never echoes `input`, which may hold captured payloads."""
    return [{"loc": loc_path(tuple(e["loc"])), "msg": str(e["msg"]), "type": str(e["type"])} for e in errors[:MAX_ERRORS]]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 `too_large` as soon as it exceeds `limit` (declared or streamed),
    408 `request_timeout` when it stalls for BODY_IDLE_TIMEOUT; a client that left gets a 400 nobody
    reads (not a 500 and a traceback: a sidecar giving up on a slow upload is not a server fault)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "invalid Content-Length")
        if int(declared) > limit:
            raise ApiError(413, "too_large", f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), BODY_IDLE_TIMEOUT)
        except StopAsyncIteration:
            return b"".join(chunks)
        except TimeoutError:
            raise ApiError(408, "request_timeout", f"the body sent nothing for {BODY_IDLE_TIMEOUT:g} s") from None
        except ClientDisconnect:
            raise ApiError(400, "client_disconnected", "the client closed the connection before its body ended") from None
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
