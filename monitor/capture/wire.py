"""The `POST /v1/events` wire format (what sidecars send) and body decoding.

The envelope is validated strictly (a malformed envelope is a sender bug: 422 with field paths);
the captured bodies inside are user traffic, so a body that cannot be decoded is a per-event
rejection, never an error for the whole batch.

Why msgspec and not pydantic: ingest decodes every event on the hot path, and msgspec decodes a
batch straight into these structs several times faster. The structs are `gc=False` (they hold
only strings, numbers and a flat str→str dict, so they cannot form cycles): a batch of a thousand
events then adds nothing to the garbage collector's work, which dominated the pydantic version's
cost. Types are strict: `"200"` is not a status, `1.0` is not an int.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import types
import typing
from typing import Annotated, Any, Literal, Self

import msgspec

from monitor.capture.payload import Rejected
from monitor.core.units import MAX_TIMESTAMP

__all__ = [
    "ID_PATTERN",
    "MAX_CONTENT_TYPE",
    "MAX_HEADERS",
    "MAX_ID",
    "MAX_METHOD",
    "MAX_MODEL",
    "MAX_PATH",
    "MAX_STATUS",
    "MAX_VERSION_FIELD",
    "MIN_STATUS",
    "Body",
    "CapturedEvent",
    "EnvelopeError",
    "EventBatch",
    "Generation",
    "Namespace",
    "decode_batch",
    "decode_body",
    "encode_event",
]

# The envelope's limits, defined once: the structs below enforce them and senders (the sidecar's
# encoder) clip to them, since one field beyond them makes the monitor refuse the whole batch.
MAX_ID = 128
ID_PATTERN = r"^[A-Za-z0-9._:\-]+\Z"
MAX_MODEL = 253
MIN_STATUS = 100
MAX_STATUS = 599
MAX_METHOD = 16
MAX_PATH = 2048
MAX_CONTENT_TYPE = 256
MAX_HEADERS = 64
MAX_VERSION_FIELD = 256
"""`version` on the wire; what the monitor tracks is stricter (`monitor.core.names.check_version`), and an
event whose version fails that is rejected (`invalid_version`), never its batch."""

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
Namespace = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")]
"""A Kubernetes namespace (a DNS label): where the model serving the traffic runs."""
Seconds = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]
"""Finite and non-negative (NaN fails `ge`, infinity fails `le`)."""
Timestamp = Annotated[float, msgspec.Meta(ge=0, le=MAX_TIMESTAMP)]


class _Wire(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """A validated instance from Python data; `msgspec.ValidationError` (a ValueError) if invalid."""
        return msgspec.convert(obj, cls)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Self:
        """A validated instance from JSON (e.g. a stored event); `msgspec.DecodeError` (a ValueError) if invalid."""
        return msgspec.json.decode(data, type=cls)


class Body(_Wire, frozen=True, gc=False, kw_only=True):
    body: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    truncated: bool = False
    content_type: Annotated[str, msgspec.Meta(max_length=MAX_CONTENT_TYPE)] | None = None


class Generation(_Wire, frozen=True, gc=False, kw_only=True):
    """What the sidecar measured of an OpenAI-compatible generative call (docs/capture-format.md).

    Optional and new: a sender that does not know it omits it, a monitor that does not know it
    ignores it. For a streamed answer the response body is the stream reassembled into the
    non-streamed shape (monitor/capture/openai.py), not the raw Server-Sent Events.
    """

    operation: Literal["chat", "text_completion", "embeddings"]
    streamed: bool = False
    time_to_first_byte_seconds: Seconds | None = None
    """From the request sent upstream to the first byte of the response body."""
    time_to_first_token_seconds: Seconds | None = None
    """Streamed only: to the first event that carried content (vLLM's first event carries only the role)."""
    events: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Streamed only: Server-Sent Events received, `[DONE]` included."""


class CapturedEvent(_Wire, frozen=True, gc=False, kw_only=True):
    id: EventId
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL)]
    namespace: Namespace | None = None
    """The model's namespace (the sidecar's pod's); with `model`, which configured model this is
    (`monitor.core.config.ModelRouter`)."""
    timestamp: Timestamp
    latency_seconds: Seconds | None = None
    status: Annotated[int, msgspec.Meta(ge=MIN_STATUS, le=MAX_STATUS)] = 200
    method: Annotated[str, msgspec.Meta(max_length=MAX_METHOD)] = "POST"
    path: Annotated[str, msgspec.Meta(max_length=MAX_PATH)] = ""
    request: Body
    response: Body | None = None
    headers: Annotated[dict[str, str], msgspec.Meta(max_length=MAX_HEADERS)] = {}
    generation: Generation | None = None
    version: Annotated[str, msgspec.Meta(max_length=MAX_VERSION_FIELD)] | None = None
    """The model version that served the call, when the sender knows it (docs/versions.md)."""


class EventBatch(_Wire, frozen=True, gc=False, kw_only=True):
    events: list[CapturedEvent]


class EnvelopeError(ValueError):
    """A batch that cannot be ingested: `invalid_json` (400) or `validation_failed` (422, `detail` lists fields)."""

    def __init__(self, error: Literal["invalid_json", "validation_failed"], detail: Any) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail


_batch_decoder = msgspec.json.Decoder(EventBatch)
_body_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
MAX_ERRORS = 50


def decode_batch(data: bytes) -> EventBatch:
    """The batch in `data`, or `EnvelopeError`.

    The fast decoder stops at the first problem; only then is the body re-read with Python's json
    to report every bad field (up to `MAX_ERRORS`), never echoing values, which may be payloads.
    """
    try:
        return _batch_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # invalid UTF-8 in a string: the latter
        first = exc
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError("invalid_json", str(exc)[:200] or "body is not valid JSON") from None
    errors: list[dict[str, str]] = []
    _collect(value, EventBatch, "", errors)
    if not errors:  # valid to Python's json but not to msgspec's parser, e.g. a lone surrogate escape
        raise EnvelopeError("invalid_json", str(first)[:200])
    raise EnvelopeError("validation_failed", errors[:MAX_ERRORS])


def _collect(value: Any, typ: Any, loc: str, out: list[dict[str, str]]) -> None:
    """Append an error for every invalid field under `loc`, descending into structs and lists."""
    if len(out) >= MAX_ERRORS:
        return
    try:
        msgspec.convert(value, typ)
        return
    except msgspec.ValidationError as exc:
        first = str(exc)
    inner = typing.get_args(typ)[0] if typing.get_origin(typ) is Annotated else typ
    options = typing.get_args(inner) if typing.get_origin(inner) in (typing.Union, types.UnionType) else (inner,)
    struct = next((t for t in options if isinstance(t, type) and issubclass(t, _Wire)), None)
    before = len(out)
    if struct is not None and isinstance(value, dict):
        for f in msgspec.structs.fields(struct):
            if f.encode_name in value:
                _collect(value[f.encode_name], f.type, f"{loc}.{f.name}" if loc else f.name, out)
            elif f.required:
                out.append({"loc": f"{loc}.{f.name}" if loc else f.name, "msg": "Field required", "type": "missing"})
    elif typing.get_origin(inner) is list and isinstance(value, list):
        for i, item in enumerate(value):
            _collect(item, typing.get_args(inner)[0], f"{loc}[{i}]", out)
    if len(out) == before:
        msg, _, path = first.partition(" - at `$")
        if msg.startswith("Invalid enum value"):
            msg = "Invalid enum value"  # msgspec quotes the value; it may be sender data
        kind = "type_error" if msg.startswith("Expected `") and ", got `" in msg else "value_error"
        out.append({"loc": (loc + path.rstrip("`")) or "(body)", "msg": msg, "type": kind})


def encode_event(event: CapturedEvent) -> str:
    """The event as normalized JSON (what the store keeps and `model_validate_json` reads back)."""
    return _encoder.encode(event).decode()


def decode_body(body: Body) -> Any:
    """The JSON value a captured body holds; `Rejected` when it is truncated or not JSON.

    Python's json accepts NaN and Infinity literals, which some model servers emit; they become
    values the parser's rules handle (NaN missing, ±inf out of range). msgspec parses the common
    case; whatever it refuses (those literals, numbers beyond a double, lone surrogates, deep
    nesting) is left to Python's json to accept or reject as before. Integers of any size arrive as
    Python ints; payload parsing turns those beyond a double's range into ±inf (monitor/capture/payload.py).
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
        return _body_decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Rejected("invalid_json", "body is not valid JSON (or nested too deeply)") from None
