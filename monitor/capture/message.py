"""Captured events as Kafka records (fleet mode): the one format the sidecar and the HTTP ingest
produce and the replicas consume, plus KServe CloudEvents arriving through Knative's KafkaSink.

A driftwatch record: key = the model name (UTF-8), so one model's events always land in one
partition; value = the event as normalized JSON (`encode_event`, what the embedded store keeps);
header `content-type: application/vnd.driftwatch.event+json`. A KafkaSink record in binary content
mode carries the CloudEvent's attributes as `ce_*` headers and its data as the value (the Kafka
protocol binding of CloudEvents, 1.0); structured mode is a JSON envelope with content type
`application/cloudevents+json`. Pure: no Kafka client here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from monitor.capture.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, CloudEventError, Half, parse_cloudevent
from monitor.capture.wire import CapturedEvent, encode_event

__all__ = ["EVENT_CONTENT_TYPE", "SKIP_REASONS", "BadRecord", "Headers", "decode_record", "encode_half", "encode_record"]

EVENT_CONTENT_TYPE = "application/vnd.driftwatch.event+json"
_STRUCTURED = "application/cloudevents+json"
_EVENT_HEADERS = [("content-type", EVENT_CONTENT_TYPE.encode())]

Headers = Sequence[tuple[str, bytes | None]]

SKIP_REASONS = ("empty", "garbage", "wrong_schema", "key_mismatch", "invalid_cloudevent", "unsupported_type",
                "unknown_model", "wrong_partition")
"""Why a replica skips a record: `decode_record`'s reasons, then the consumer's (monitor/runtime/fleet.py)."""


class BadRecord(ValueError):
    """A record a replica skips and counts by `reason` (it never stops the consumer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_record(event: CapturedEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one captured event."""
    return event.model.encode(), encode_event(event).encode(), list(_EVENT_HEADERS)


def encode_half(half: Half) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a KServe CloudEvent half, as a binary-mode CloudEvent keyed by its
    model (both halves land in one partition, where the owning replica joins them)."""
    kind = REQUEST_TYPE if half.kind == "request" else RESPONSE_TYPE
    attrs = {"specversion": "1.0", "id": half.id, "type": kind, "source": half.context.get("source") or "driftwatch",
             "inferenceservicename": half.model, **{k: v for k, v in half.context.items() if k != "source"}}
    if half.time is not None:
        attrs["time"] = datetime.fromtimestamp(half.time, UTC).isoformat().replace("+00:00", "Z")
    headers = [(f"ce_{k}", v.encode()) for k, v in attrs.items()]
    if half.body.content_type:
        headers.append(("content-type", half.body.content_type.encode()))
    body = half.body.body
    value = base64.b64decode(body) if half.body.encoding == "base64" else body.encode("utf-8")
    return half.model.encode(), value, headers


def decode_record(key: bytes | None, value: bytes | None, headers: Headers | None) -> CapturedEvent | Half:
    """The event (or the CloudEvent half) a record holds; `BadRecord` with a reason otherwise:
    `empty`, `garbage` (not JSON or not UTF-8), `wrong_schema` (JSON that is not an event),
    `key_mismatch` (an event keyed by another model: it would be windowed on the wrong partition),
    or the CloudEvent error (`invalid_cloudevent`, ...)."""
    if not value:
        raise BadRecord("empty")
    if headers != _EVENT_HEADERS:  # the hot path (our own records) skips looking at the headers
        names = {name.lower(): (raw or b"") for name, raw in headers or ()}
        content_type = _text(names.get("content-type")) or ""
        if "ce_specversion" in names or content_type.split(";")[0].strip().lower() == _STRUCTURED:
            return _cloudevent(names, value)
    try:
        event = CapturedEvent.model_validate_json(value)
    except msgspec.ValidationError:  # checked before the end of the JSON: malformed JSON can land here too
        raise BadRecord("wrong_schema" if _is_json(value) else "garbage") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise BadRecord("garbage") from None
    if key is not None and key != event.model.encode():
        raise BadRecord("key_mismatch")
    return event


def _cloudevent(names: dict[str, bytes], value: bytes) -> Half:
    headers: dict[str, str] = {}
    for name, raw in names.items():
        text = _text(raw)
        if text is None:
            raise BadRecord("garbage")
        if name.startswith("ce_"):
            headers["ce-" + name[3:]] = text
        elif name == "content-type":
            headers[name] = text
    try:
        return parse_cloudevent(headers, value)
    except CloudEventError as exc:
        raise BadRecord(exc.error) from None


def _is_json(value: bytes) -> bool:
    try:
        msgspec.json.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return True


def _text(raw: bytes | None) -> str | None:
    try:
        return None if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
