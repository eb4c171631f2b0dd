"""The `POST /v1/events` wire format (what sidecars send) and body decoding.

The envelope is validated strictly (a malformed envelope is a sender bug: 422 with field paths);
the captured bodies inside are user traffic, so a body that cannot be decoded is a per-event
rejection, never an error for the whole batch.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.capture.payload import Rejected

__all__ = ["Body", "CapturedEvent", "EventBatch", "decode_body"]

EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Body(_Wire):
    body: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    truncated: bool = False
    content_type: str | None = Field(default=None, max_length=256)


class CapturedEvent(_Wire):
    id: EventId
    model: str = Field(min_length=1, max_length=253)
    timestamp: float = Field(ge=0, allow_inf_nan=False)
    latency_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    status: int = Field(default=200, ge=100, le=599)
    method: str = Field(default="POST", max_length=16)
    path: str = Field(default="", max_length=2048)
    request: Body
    response: Body | None = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=64)


class EventBatch(_Wire):
    events: list[CapturedEvent]


def decode_body(body: Body) -> Any:
    """The JSON value a captured body holds; `Rejected` when it is truncated or not JSON.

    Python's json accepts NaN and Infinity literals, which some model servers emit; they become
    values the parser's rules handle (NaN missing, ±inf out of range).
    """
    if body.truncated:
        raise Rejected("truncated", "the captured body was truncated by the sender")
    text = body.body
    if body.encoding == "base64":
        try:
            text = base64.b64decode(body.body, validate=True).decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("invalid_encoding", "body is not UTF-8 JSON") from None
        except (binascii.Error, ValueError):
            raise Rejected("invalid_encoding", "body is not valid base64") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Rejected("invalid_json", "body is not valid JSON (or nested too deeply)") from None
