"""Body decoding and whole-event extraction: what a captured event turns into, or why not."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.capture import (
    Body,
    CapturedEvent,
    EnvelopeError,
    ModelSchema,
    Rejected,
    decode_batch,
    decode_body,
    encode_event,
    event_records,
)
from monitor.core.config import ModelConfig


def test_utf8_and_base64_bodies_decode_to_the_same_value() -> None:
    text = json.dumps({"instances": [[1, 2]]})
    assert decode_body(Body(body=text)) == decode_body(Body(body=base64.b64encode(text.encode()).decode(), encoding="base64"))


def test_nan_and_infinity_literals_are_values() -> None:
    value = decode_body(Body(body='{"instances": [[NaN, Infinity, -Infinity]]}'))
    row = value["instances"][0]
    assert math.isnan(row[0])
    assert row[1] == math.inf
    assert row[2] == -math.inf


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (Body(body='{"instances": [[1'), "invalid_json"),
        (Body(body="[" * 100_000 + "]" * 100_000), "invalid_json"),  # nested past the parser's limit
        (Body(body='{"instances": [[1, 2]]}', truncated=True), "truncated"),
        (Body(body="%%%not-base64", encoding="base64"), "invalid_encoding"),
        (Body(body=base64.b64encode(b"\xff\xfe{}").decode(), encoding="base64"), "invalid_encoding"),
        (Body(body="9" * 5000), "invalid_json"),  # beyond Python's int digit limit
    ],
)
def test_undecodable_bodies_are_rejected(body: Body, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        decode_body(body)
    assert info.value.reason == reason


def _schema(outputs: bool) -> ModelSchema:
    return ModelSchema.from_config(ModelConfig.model_validate({
        "name": "m", "protocol": "kserve_v1",
        "features": [{"name": "a", "type": "numeric", "source": {"index": 0}}],
        "outputs": [{"name": "p", "type": "numeric", "source": {"key": "p"}}] if outputs else [],
        "reference": {"path": "r.csv"},
    }))


def _event(status: int = 200, response: str | None = '{"predictions": [{"p": 0.5}]}') -> CapturedEvent:
    return CapturedEvent(
        id="e1", model="m", timestamp=1.0, status=status,
        request=Body(body='{"instances": [[3]]}'),
        response=Body(body=response) if response is not None else None,
    )


def test_event_records_reads_request_and_response() -> None:
    assert event_records(_schema(True), _event()) == [{"a": 3, "p": 0.5}]


def test_failed_calls_are_counted_not_evaluated() -> None:
    with pytest.raises(Rejected) as info:
        event_records(_schema(True), _event(status=500))
    assert info.value.reason == "upstream_error"


def test_response_is_not_decoded_when_the_model_has_no_outputs() -> None:
    assert event_records(_schema(False), _event(response="not json at all")) == [{"a": 3}]
    with pytest.raises(Rejected):
        event_records(_schema(True), _event(response="not json at all"))


@pytest.mark.parametrize("bad", [{"id": "has space"}, {"id": "x" * 129}, {"timestamp": -1}, {"status": 700}, {"latency_seconds": -0.1},
                                 {"timestamp": 1.7e12}, {"timestamp": 253402300800.0}])  # milliseconds; past 9999
def test_envelope_constraints(bad: dict[str, object]) -> None:
    data = {"id": "ok", "model": "m", "timestamp": 1.0, "request": {"body": "{}"}, **bad}
    with pytest.raises(ValueError):
        CapturedEvent.model_validate(data)


def test_non_finite_timestamp_is_rejected_by_the_envelope() -> None:
    with pytest.raises(ValueError):
        CapturedEvent.model_validate({"id": "ok", "model": "m", "timestamp": float("inf"), "request": {"body": "{}"}})


def _batch(*events: dict[str, object]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


GOOD = {"id": "ok", "model": "m", "timestamp": 1.0, "request": {"body": "{}"}}


def test_a_valid_batch_decodes_with_defaults() -> None:
    batch = decode_batch(_batch(GOOD, {**GOOD, "id": "ok2", "status": 503, "response": {"body": "x", "encoding": "utf-8"}}))
    first, second = batch.events
    assert (first.id, first.status, first.method, first.response, first.headers) == ("ok", 200, "POST", None, {})
    assert second.status == 503
    assert second.response == Body(body="x")


def test_every_bad_field_is_reported_with_its_path_and_without_its_value() -> None:
    bad = {**GOOD, "status": "two hundred", "timestamp": -5, "request": {"body": 42, "encoding": "rot13-secret"}, "headers": {"a": 1}}
    with pytest.raises(EnvelopeError) as info:
        decode_batch(_batch(GOOD, bad, {"id": "x"}))
    assert info.value.error == "validation_failed"
    locs = [d["loc"] for d in info.value.detail]
    assert locs == [
        "events[1].timestamp", "events[1].status", "events[1].request.body", "events[1].request.encoding",
        "events[1].headers[...]", "events[2].model", "events[2].timestamp", "events[2].request",
    ]
    assert "two hundred" not in json.dumps(info.value.detail)
    assert "rot13-secret" not in json.dumps(info.value.detail)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"events": [', "invalid_json"),
        (b"[" * 10_000 + b"]" * 10_000, "invalid_json"),
        (b'{"events": [{"id": "a", "model": "m", "timestamp": 1, "request": {"body": "\\ud800"}}]}', "invalid_json"),
        (b"[]", "validation_failed"),
        (b'{"events": {}}', "validation_failed"),
        (b'{"events": [{"id": "a", "model": "m", "timestamp": NaN, "request": {"body": "{}"}}]}', "validation_failed"),
        (b'{"events": [{"id": "a", "model": "m", "timestamp": 1e400, "request": {"body": "{}"}}]}', "validation_failed"),
    ],
)
def test_undecodable_batches(body: bytes, error: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_batch(body)
    assert info.value.error == error


@pytest.mark.parametrize("bad", [{"status": "200"}, {"status": 200.0}, {"status": True}, {"timestamp": "1.5"}, {"id": "trailing-newline\n"}])
def test_the_envelope_is_strictly_typed(bad: dict[str, object]) -> None:
    with pytest.raises(EnvelopeError):
        decode_batch(_batch({**GOOD, **bad}))


def test_unknown_fields_are_ignored_and_the_stored_copy_round_trips() -> None:
    sent = {**GOOD, "latency_seconds": 0.25, "headers": {"x-request-id": "r1"}, "response": {"body": "{}"}, "extra": {"nested": [1]}}
    event = decode_batch(_batch(sent)).events[0]
    stored = encode_event(event)
    assert "extra" not in json.loads(stored)
    assert CapturedEvent.model_validate_json(stored) == event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_bodies_decode_exactly_as_python_json_reads_them(value: object) -> None:
    """The fast decoder and Python's json agree on every value (infinities go the json way)."""
    text = json.dumps(value)
    decoded = decode_body(Body(body=text))
    assert decoded == json.loads(text)
    assert json.dumps(decoded) == text  # same types too: 1 stays an int, 1.0 a float


def test_generation_is_optional_and_round_trips_in_the_stored_copy() -> None:
    generation = {"operation": "chat", "streamed": True, "time_to_first_byte_seconds": 0.002, "time_to_first_token_seconds": 0.02, "events": 23}
    event = decode_batch(_batch({**GOOD, "generation": generation})).events[0]
    assert event.generation is not None and event.generation.time_to_first_token_seconds == 0.02
    assert CapturedEvent.model_validate_json(encode_event(event)) == event
    assert decode_batch(_batch(GOOD)).events[0].generation is None  # senders that predate it


@pytest.mark.parametrize("bad", [{"operation": "rerank"}, {"operation": "chat", "time_to_first_token_seconds": -1.0}, {"operation": "chat", "events": -1}, {}])
def test_a_malformed_generation_is_refused_with_its_field_path(bad: dict[str, object]) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_batch(_batch({**GOOD, "generation": bad}))
    assert info.value.error == "validation_failed"
    assert info.value.detail[0]["loc"].startswith("events[0].generation")
