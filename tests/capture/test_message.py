"""The Kafka record format of fleet mode: events round-trip, KafkaSink CloudEvents decode, bad records name their reason."""

from __future__ import annotations

import json

import pytest

from monitor.capture import CapturedEvent
from monitor.capture.cloudevents import Half
from monitor.capture.message import EVENT_CONTENT_TYPE, BadRecord, decode_record, encode_half, encode_record

EVENT = CapturedEvent.model_validate({"id": "e1", "model": "churn", "timestamp": 1.7e9, "request": {"body": '{"a": 1}'}})


def test_an_event_round_trips_keyed_by_its_model() -> None:
    key, value, headers = encode_record(EVENT)
    assert (key, decode_record(key, value, headers)) == (b"churn", EVENT)


def test_an_event_record_says_its_content_type() -> None:
    assert encode_record(EVENT)[2] == [("content-type", EVENT_CONTENT_TYPE.encode())]


def test_a_kafkasink_binary_mode_cloudevent_is_a_half() -> None:
    """Knative's KafkaSink, binary content mode: attributes as ce_ headers, the payload as the value."""
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"abc"), ("ce_type", b"org.kubeflow.serving.inference.request"),
               ("ce_source", b"http://localhost:9081/"), ("ce_inferenceservicename", b"churn"), ("content-type", b"application/json")]
    half = decode_record(None, b'{"instances": [[1, 2]]}', headers)
    assert isinstance(half, Half) and (half.model, half.id, half.kind) == ("churn", "abc", "request")


def test_a_structured_mode_cloudevent_is_a_half() -> None:
    envelope = {"specversion": "1.0", "id": "abc", "type": "org.kubeflow.serving.inference.response", "source": "s",
                "inferenceservicename": "churn", "data": {"predictions": [1]}}
    half = decode_record(b"churn", json.dumps(envelope).encode(), [("content-type", b"application/cloudevents+json")])
    assert isinstance(half, Half) and half.kind == "response"


def test_a_half_round_trips_through_its_record() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "x1", "ce-type": "org.kubeflow.serving.inference.request", "ce-source": "s",
               "ce-inferenceservicename": "churn", "ce-time": "2024-01-01T00:00:05Z", "content-type": "application/json"}
    from monitor.capture.cloudevents import parse_cloudevent

    half = parse_cloudevent(headers, b'{"instances": [[1]]}')
    key, value, record_headers = encode_half(half)
    assert (key, decode_record(key, value, record_headers)) == (b"churn", half)


@pytest.mark.parametrize(
    ("key", "value", "headers", "reason"),
    [
        (b"churn", b"", None, "empty"),
        (b"churn", None, None, "empty"),
        (b"churn", b"\xff\xfe", None, "garbage"),
        (b"churn", b"[1, 2", None, "garbage"),
        (b"churn", b'{"events": []}', None, "wrong_schema"),
        (b"churn", b'{"id": "e1", "model": "churn", "timestamp": -1, "request": {"body": ""}}', None, "wrong_schema"),
        (b"other", encode_record(EVENT)[1], None, "key_mismatch"),
        (None, b"{}", [("ce_specversion", b"1.0")], "invalid_cloudevent"),
        (None, b"{}", [("ce_specversion", b"\xff")], "garbage"),
        (None, b"{}", [("ce_specversion", b"1.0"), ("ce_id", b"a"), ("ce_type", b"t"), ("ce_source", b"s")], "unsupported_type"),
    ],
)
def test_a_bad_record_names_its_reason(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None, reason: str) -> None:
    with pytest.raises(BadRecord) as err:
        decode_record(key, value, headers)
    assert err.value.reason == reason
