"""Captured inference traffic → feature records: wire format, payload protocols, CloudEvents."""

from monitor.capture.extract import event_records
from monitor.capture.payload import ModelSchema, Record, Rejected, parse_payload, sniff_protocol
from monitor.capture.wire import Body, CapturedEvent, EventBatch, decode_body

__all__ = [
    "Body",
    "CapturedEvent",
    "EventBatch",
    "ModelSchema",
    "Record",
    "Rejected",
    "decode_body",
    "event_records",
    "parse_payload",
    "sniff_protocol",
]
