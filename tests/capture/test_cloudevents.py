"""KServe payload-logger CloudEvents: binary mode as its agent sends, structured mode, spec 0.2."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from monitor.capture.cloudevents import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    CloudEventError,
    Half,
    join_halves,
    parse_cloudevent,
)


def kserve_headers(kind: str = "request", **over: str) -> dict[str, str]:
    """The headers KServe's agent (CloudEvents Go SDK, binary mode) sends, lower-cased as ASGI gives them."""
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "5f3c1a2e-7d4b-4a7e-9b1c-0a1b2c3d4e5f",
        "ce-type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        "ce-source": "http://localhost:9081/",
        "ce-time": "2025-11-22T11:57:01.123456789Z",
        "ce-inferenceservicename": "wine",
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "ce-metadata": json.dumps({"X-Request-Id": ["abc"]}),
    }
    headers.update(over)
    return headers


def test_binary_mode_request() -> None:
    half = parse_cloudevent(kserve_headers(), b'{"instances": [[1, 2]]}')
    assert (half.model, half.kind, half.id) == ("wine", "request", "5f3c1a2e-7d4b-4a7e-9b1c-0a1b2c3d4e5f")
    assert half.time == datetime(2025, 11, 22, 11, 57, 1, 123456, tzinfo=UTC).timestamp()
    assert json.loads(half.body.body) == {"instances": [[1, 2]]}
    assert half.context == {"namespace": "ml", "component": "predictor", "endpoint": "default", "source": "http://localhost:9081/"}


def test_spec_02_with_older_inferenceservice_header() -> None:
    headers = kserve_headers("response", **{"ce-specversion": "0.2"})
    headers["ce-inferenceservice"] = headers.pop("ce-inferenceservicename")
    half = parse_cloudevent(headers, b'{"predictions": [1]}')
    assert (half.model, half.kind) == ("wine", "response")


def test_binary_body_that_is_not_utf8_is_kept_as_base64() -> None:
    half = parse_cloudevent(kserve_headers(), b"\xff\x00")
    assert half.body.encoding == "base64"
    assert base64.b64decode(half.body.body) == b"\xff\x00"


def test_structured_mode_with_json_and_base64_data() -> None:
    envelope = {
        "specversion": "1.0", "id": "s1", "type": REQUEST_TYPE, "source": "kserve", "time": "2025-11-22T11:57:01Z",
        "inferenceservicename": "wine", "datacontenttype": "application/json", "data": {"instances": [[1]]},
    }
    half = parse_cloudevent({"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode())
    assert json.loads(half.body.body) == {"instances": [[1]]}
    assert half.body.content_type == "application/json"
    envelope.pop("data")
    envelope["data_base64"] = base64.b64encode(b'{"instances": [[2]]}').decode()
    half = parse_cloudevent({"content-type": "application/cloudevents+json; charset=utf-8"}, json.dumps(envelope).encode())
    assert json.loads(half.body.body) == {"instances": [[2]]}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        (kserve_headers(**{"ce-specversion": "9.9"}), "invalid_cloudevent"),
        ({k: v for k, v in kserve_headers().items() if k != "ce-id"}, "invalid_cloudevent"),
        ({k: v for k, v in kserve_headers().items() if k != "ce-source"}, "invalid_cloudevent"),
        ({k: v for k, v in kserve_headers().items() if k != "ce-inferenceservicename"}, "invalid_cloudevent"),
        (kserve_headers(**{"ce-type": "com.example.other"}), "unsupported_type"),
        (kserve_headers(**{"ce-time": "yesterday"}), "invalid_cloudevent"),
        (kserve_headers(**{"ce-id": "bad id with spaces"}), "invalid_cloudevent"),
        (kserve_headers(**{"ce-id": "trailing-newline\n"}), "invalid_cloudevent"),
        (kserve_headers(**{"ce-inferenceservicename": "m" * 254}), "invalid_cloudevent"),
        (kserve_headers(**{"ce-time": "1969-12-31T23:59:59Z"}), "invalid_cloudevent"),
        (kserve_headers(**{"ce-time": "9999-12-31T23:59:59-14:00"}), "invalid_cloudevent"),  # past what a date shows
        (kserve_headers(**{"content-type": "application/json; x=" + "y" * 256}), "invalid_cloudevent"),
    ],
)
def test_unusable_events_are_refused_precisely(headers: dict[str, str], error: str) -> None:
    with pytest.raises(CloudEventError) as info:
        parse_cloudevent(headers, b"{}")
    assert info.value.error == error


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"[" * 5000 + b"]" * 5000])
def test_structured_mode_malformed(body: bytes) -> None:
    with pytest.raises(CloudEventError):
        parse_cloudevent({"content-type": "application/cloudevents+json"}, body)


def test_join_sets_latency_and_keeps_both_bodies() -> None:
    req = parse_cloudevent(kserve_headers(**{"ce-time": "2025-11-22T11:57:01Z"}), b'{"instances": [[1]]}')
    resp = parse_cloudevent(kserve_headers("response", **{"ce-time": "2025-11-22T11:57:01.250Z"}), b'{"predictions": [0]}')
    event = join_halves(req, resp, received=0.0)
    assert event.id == req.id
    assert event.model == "wine"
    assert event.timestamp == req.time
    assert event.latency_seconds == pytest.approx(0.25)
    assert event.response is not None
    assert json.loads(event.response.body) == {"predictions": [0]}
    assert event.headers["ce-component"] == "predictor"


def test_half_alone_and_json_round_trip() -> None:
    req = parse_cloudevent(kserve_headers(**{"ce-time": ""}), b'{"instances": [[1]]}')
    assert Half.from_json(req.to_json()) == req
    event = join_halves(req, None, received=123.0)
    assert event.timestamp == 123.0
    assert event.response is None
    assert event.latency_seconds is None
