"""Captured inference traffic → feature records: wire format, payload protocols, CloudEvents."""

from monitor.capture.extract import event_records
from monitor.capture.payload import ModelSchema, Record, Rejected, parse_payload, sniff_protocol
from monitor.capture.wire import Body, CapturedEvent, EnvelopeError, EventBatch, decode_batch, decode_body, encode_event

__all__ = [
    "Body",
    "CapturedEvent",
    "EnvelopeError",
    "EventBatch",
    "ModelSchema",
    "Record",
    "Rejected",
    "decode_batch",
    "decode_body",
    "encode_event",
    "event_records",
    "parse_payload",
    "sniff_protocol",
]
