"""Body decoding and whole-event extraction: what a captured event turns into, or why not."""

from __future__ import annotations

import base64
import json
import math

import pytest

from monitor.capture import Body, CapturedEvent, ModelSchema, Rejected, decode_body, event_records
from monitor.config import ModelConfig


def test_utf8_and_base64_bodies_decode_to_the_same_value() -> None:
    text = json.dumps({"instances": [[1, 2]]})
    assert decode_body(Body(body=text)) == decode_body(Body(body=base64.b64encode(text.encode()).decode(), encoding="base64"))


def test_nan_and_infinity_literals_are_values() -> None:
    value = decode_body(Body(body='{"instances": [[NaN, Infinity, -Infinity]]}'))
    row = value["instances"][0]
    assert math.isnan(row[0]) and row[1] == math.inf and row[2] == -math.inf


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


@pytest.mark.parametrize("bad", [{"id": "has space"}, {"id": "x" * 129}, {"timestamp": -1}, {"status": 700}, {"latency_seconds": -0.1}])
def test_envelope_constraints(bad: dict[str, object]) -> None:
    data = {"id": "ok", "model": "m", "timestamp": 1.0, "request": {"body": "{}"}, **bad}
    with pytest.raises(ValueError):
        CapturedEvent.model_validate(data)


def test_non_finite_timestamp_is_rejected_by_the_envelope() -> None:
    with pytest.raises(ValueError):
        CapturedEvent.model_validate({"id": "ok", "model": "m", "timestamp": float("inf"), "request": {"body": "{}"}})
