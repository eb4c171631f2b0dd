"""Label batches as records of the events topic (fleet mode): keyed by model, split below Kafka's
record limit, read back exactly, and never taken for an event by readers of events only."""

from __future__ import annotations

import json

import pytest

from monitor.capture.labels import decode_labels
from monitor.capture.message import (
    LABEL_RECORD_BYTES,
    BadRecord,
    LabelRecord,
    decode_item,
    decode_record,
    encode_labels_records,
)


def batch(n: int, text: str = "x") -> tuple[object, list[float | None]]:
    items = [{"id": f"e-{i}", "label": f"{text}{i}", "timestamp": "2026-12-05T16:00:00Z" if i % 2 else None}
             for i in range(n)]
    return decode_labels(json.dumps({"model": "fraud", "labels": items}).encode())


def test_a_batch_round_trips_keyed_by_its_model_with_timestamps_as_seconds() -> None:
    b, stamps = batch(3)
    [(key, value, headers)] = encode_labels_records("b1", b, stamps)  # type: ignore[arg-type]
    record = decode_item(key, value, headers)
    assert key == b"fraud" and isinstance(record, LabelRecord)
    assert (record.batch, record.model, [i.id for i in record.labels]) == ("b1/0", "fraud", ["e-0", "e-1", "e-2"])
    assert record.stamps() == stamps and stamps[1] == 1796486400.0


def test_a_large_batch_is_split_in_order_under_the_record_limit() -> None:
    b, stamps = batch(3000, text="y" * 200)
    records = encode_labels_records("b2", b, stamps)  # type: ignore[arg-type]
    decoded = [decode_item(*r) for r in records]
    assert len(records) > 1 and all(len(v) <= LABEL_RECORD_BYTES + 1024 for _, v, _ in records)
    assert [r.batch for r in decoded] == [f"b2/{k}" for k in range(len(records))]  # type: ignore[union-attr]
    assert [i.id for r in decoded for i in r.labels] == [f"e-{i}" for i in range(3000)]  # type: ignore[union-attr]


def test_label_records_are_not_events_and_must_be_keyed_by_their_model() -> None:
    b, stamps = batch(1)
    [(_, value, headers)] = encode_labels_records("b3", b, stamps)  # type: ignore[arg-type]
    with pytest.raises(BadRecord, match="not_an_event"):
        decode_record(b"fraud", value, headers)  # what the report reader uses: skipped
    with pytest.raises(BadRecord, match="key_mismatch"):
        decode_item(b"other", value, headers)
    with pytest.raises(BadRecord, match="wrong_schema"):
        decode_item(b"fraud", b'{"batch": 1}', headers)
