"""Which version served a call, read from the traffic itself (monitor/capture/version.py)."""

from __future__ import annotations

import json
from typing import Any

from monitor.capture import CapturedEvent, ModelSchema
from monitor.capture.cloudevents import join_halves, parse_cloudevent
from monitor.capture.extract import versioned_records
from monitor.capture.version import kserve_revision
from monitor.core.config import ModelConfig

V2_MODEL = ModelConfig.model_validate({
    "name": "iris", "protocol": "auto", "features": [{"name": "x", "type": "numeric", "source": {"input": "x"}}],
    "reference": {"path": "reference.csv"},
})
V2_WITH_OUTPUT = ModelConfig.model_validate({**V2_MODEL.model_dump(exclude_defaults=True),
                                             "outputs": [{"name": "y", "type": "numeric", "source": {"input": "y"}}]})


def v2_event(path: str = "/v2/models/iris/infer", response: Any = None, **extra: Any) -> CapturedEvent:
    request = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}
    response = response if response is not None else {"model_name": "iris", "outputs": [{"name": "y", "shape": [1], "datatype": "FP64", "data": [0.0]}]}
    return CapturedEvent.model_validate({
        "id": "e1", "model": "iris", "timestamp": 1.0, "path": path,
        "request": {"body": json.dumps(request)}, "response": {"body": json.dumps(response)}, **extra,
    })


def versioned(model: ModelConfig, event: CapturedEvent) -> tuple[list[dict[str, Any]], str | None]:
    records, version, rejected = versioned_records(ModelSchema.from_config(model), event)
    assert rejected is None
    return records, version


def test_open_inference_v2_response_model_version() -> None:
    answer = {"model_name": "iris", "model_version": "3", "outputs": [{"name": "y", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    for model in (V2_MODEL, V2_WITH_OUTPUT):  # read for the version alone when the model has no outputs
        assert versioned(model, v2_event(response=answer)) == ([{"x": 1.5}] if model is V2_MODEL else [{"x": 1.5, "y": 1.0}], "3")


def test_open_inference_v2_request_path_version() -> None:
    assert versioned(V2_MODEL, v2_event("/v2/models/iris/versions/7/infer"))[1] == "7"


def test_no_version_named_is_none() -> None:
    assert versioned(V2_MODEL, v2_event())[1] is None


def test_the_events_own_version_wins() -> None:
    answer = {"model_name": "iris", "model_version": "3", "outputs": []}
    assert versioned(V2_MODEL, v2_event("/v2/models/iris/versions/7/infer", answer, version="canary-2"))[1] == "canary-2"


def test_an_unreadable_answer_read_only_for_its_version_does_not_reject_the_call() -> None:
    event = CapturedEvent.model_validate({
        "id": "e1", "model": "iris", "timestamp": 1.0, "path": "/v2/models/iris/infer",
        "request": {"body": json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2.0]}]})},
        "response": {"body": "{not json"}})
    assert versioned(V2_MODEL, event) == ([{"x": 2.0}], None)


def test_a_rejected_call_keeps_its_version() -> None:
    _, version, rejected = versioned_records(ModelSchema.from_config(V2_MODEL), v2_event(status=503, version="v2"))
    assert (version, rejected is not None and rejected.reason) == ("v2", "upstream_error")


def test_kserve_revision_from_the_pod_name() -> None:
    assert kserve_revision("sklearn-iris-predictor-00002-deployment-7cdb7955f8-s244d") == "00002"


def test_no_revision_in_a_raw_deployment_pod_name_or_the_agents_default() -> None:
    assert [kserve_revision(s) for s in ("sklearn-iris-predictor-7cdb7955f8-s244d", "http://localhost:9081/", "deployment")] == [None] * 3


def test_kserve_cloudevents_carry_the_revision() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "abc", "ce-type": "org.kubeflow.serving.inference.request",
               "ce-source": "iris-predictor-00003-deployment-5b85d4ffd5-c87h4", "ce-inferenceservicename": "iris",
               "content-type": "application/json"}
    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [0.5]}]}).encode()
    event = join_halves(parse_cloudevent(headers, body), None, 10.0)
    assert versioned(V2_MODEL, event) == ([{"x": 0.5}], "00003")
