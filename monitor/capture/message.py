"""Captured events as Kafka records (fleet mode): the one format the sidecar and the HTTP ingest
produce and the replicas consume, plus KServe CloudEvents arriving through Knative's KafkaSink.

A driftwatch record: key = the model name (UTF-8), so one model's events always land in one
partition (models of one name in several namespaces share it; the event's `namespace` tells them apart); value = the event as normalized JSON (`encode_event`, what the embedded store keeps);
header `content-type: application/vnd.driftwatch.event+json`. A KafkaSink record in binary content
mode carries the CloudEvent's attributes as `ce_*` headers and its data as the value (the Kafka
protocol binding of CloudEvents, 1.0); structured mode is a JSON envelope with content type
`application/cloudevents+json`. Pure: no Kafka client here.

Ground truth travels on the same topic (docs/scale-out.md, "Labels"): a label record is keyed by
its model like the events it labels, so it lands in their partition after every event that was
acknowledged before it; value = `{"batch": id, "model": ..., "labels": [...]}` (the `/v1/labels`
items, timestamps as unix seconds; `model` is the resolved key, `namespace/name` for a namespaced model), header `content-type: application/vnd.driftwatch.labels+json`.
`decode_item` reads every kind; `decode_record` (events and halves only) refuses label records.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from monitor.capture.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, CloudEventError, Half, parse_cloudevent
from monitor.capture.labels import Label, LabelBatch
from monitor.capture.wire import CapturedEvent, encode_event

__all__ = ["EVENT_CONTENT_TYPE", "LABELS_CONTENT_TYPE", "SKIP_REASONS", "BadRecord", "Headers", "LabelRecord", "decode_item",
           "decode_record", "encode_half", "encode_labels_records", "encode_record"]

EVENT_CONTENT_TYPE = "application/vnd.driftwatch.event+json"
LABELS_CONTENT_TYPE = "application/vnd.driftwatch.labels+json"
_LABEL_HEADERS = [("content-type", LABELS_CONTENT_TYPE.encode())]
LABEL_RECORD_BYTES = 512 * 1024
"""A label batch is split into records of about this size (Kafka's default record limit is 1 MB)."""
_STRUCTURED = "application/cloudevents+json"
_EVENT_HEADERS = [("content-type", EVENT_CONTENT_TYPE.encode())]

Headers = Sequence[tuple[str, bytes | None]]

SKIP_REASONS = ("empty", "garbage", "wrong_schema", "key_mismatch", "invalid_cloudevent", "unsupported_type",
                "unknown_model", "wrong_partition", "not_an_event", "no_performance")
"""Why a replica skips a record: `decode_record`'s reasons, then the consumer's (monitor/runtime/fleet.py)."""


class BadRecord(ValueError):
    """A record a replica skips and counts by `reason` (it never stops the consumer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_record(event: CapturedEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one captured event."""
    return event.model.encode(), encode_event(event).encode(), list(_EVENT_HEADERS)


class LabelRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A label batch (or one part of a large one) as a Kafka record: `batch` is unique per record,
    assigned by the replica that accepted it, so the owner processes it once however often it is
    replayed. Timestamps are unix seconds (validated by the API)."""

    batch: str
    model: str
    labels: list[Label]

    def stamps(self) -> list[float | None]:
        return [None if item.timestamp is None else float(item.timestamp) for item in self.labels]  # type: ignore[arg-type]


_label_record = msgspec.json.Decoder(LabelRecord)


def partition_key(model: str) -> bytes:
    """The Kafka key of a model's records: its name, also for a label batch whose `model` is already
    resolved to `namespace/name`, so labels land in the partition of the events they label."""
    return model.rpartition("/")[2].encode()


def encode_labels_records(batch_id: str, batch: LabelBatch,
                          stamps: Sequence[float | None]) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) of a validated label batch, split into records of about
    `LABEL_RECORD_BYTES` (ids `<batch_id>/<part>`); each label keeps its order."""
    items = [msgspec.json.encode(msgspec.structs.replace(item, timestamp=stamp))
             for item, stamp in zip(batch.labels, stamps, strict=True)]
    key = partition_key(batch.model)
    head = msgspec.json.encode(batch.model)
    out: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    part: list[bytes] = []
    size = 0

    def close() -> None:
        ident = msgspec.json.encode(f"{batch_id}/{len(out)}")
        value = b'{"batch":' + ident + b',"model":' + head + b',"labels":[' + b",".join(part) + b"]}"
        out.append((key, value, list(_LABEL_HEADERS)))

    for item in items:
        if part and size + len(item) > LABEL_RECORD_BYTES:
            close()
            part, size = [], 0
        part.append(item)
        size += len(item) + 1
    if part:
        close()
    return out


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


def decode_item(key: bytes | None, value: bytes | None, headers: Headers | None) -> CapturedEvent | Half | LabelRecord:
    """What a record of the topic holds: an event, a CloudEvent half, or a label batch (`BadRecord`
    with a reason otherwise, as `decode_record`'s)."""
    if headers == _LABEL_HEADERS or (headers and headers != _EVENT_HEADERS and _is_labels(headers)):
        if not value:
            raise BadRecord("empty")
        try:
            record = _label_record.decode(value)
        except msgspec.ValidationError:
            raise BadRecord("wrong_schema") from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise BadRecord("garbage") from None
        if key is not None and key != partition_key(record.model):
            raise BadRecord("key_mismatch")
        return record
    return decode_record(key, value, headers)


def _is_labels(headers: Headers) -> bool:
    return any(name.lower() == "content-type" and raw is not None and raw.split(b";")[0].strip().lower() == LABELS_CONTENT_TYPE.encode()
               for name, raw in headers)


def decode_record(key: bytes | None, value: bytes | None, headers: Headers | None) -> CapturedEvent | Half:
    """The event (or the CloudEvent half) a record holds; `BadRecord` with a reason otherwise:
    `empty`, `garbage` (not JSON or not UTF-8), `wrong_schema` (JSON that is not an event),
    `key_mismatch` (an event keyed by another model: it would be windowed on the wrong partition),
    or the CloudEvent error (`invalid_cloudevent`, ...)."""
    if not value:
        raise BadRecord("empty")
    if headers and headers != _EVENT_HEADERS and _is_labels(headers):
        raise BadRecord("not_an_event")  # a label batch (decode_item reads those)
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
