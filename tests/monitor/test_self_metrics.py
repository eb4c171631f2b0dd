"""The monitor's self-metrics on a real app served on 127.0.0.1: requests by route template and code,
unknown-model refusals counted without the name, evaluation time, store size, process metrics."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ingest_helpers import event, load, serve_in_thread
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.api import create_app

TOKEN = "self-metrics-token-Zq81"
AUTH = {"authorization": f"Bearer {TOKEN}"}
STRANGER = "attacker-model-7f3e"
"""A model name nobody configured: it must never become a label value."""
SECRET_PATH = "/v1/no-such-route/id-5b9d2c"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _kserve_headers(model: str) -> dict[str, str]:
    return {
        "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "ce-self-1",
        "ce-type": "org.kubeflow.serving.inference.request", "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": model, "ce-namespace": "ml", "ce-component": "predictor", "ce-endpoint": "default",
        "ce-metadata": "{}",
    }


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Traffic through a real server (auth on, path-token CloudEvents on), then one scrape of /metrics."""
    tmp = tmp_path_factory.mktemp("self")
    mp = pytest.MonkeyPatch()
    mp.setenv("DW_SELF_TOKEN", TOKEN)
    cfg = load(tmp, server={"auth_token_env": "DW_SELF_TOKEN", "auth": {"cloudevents_path_token": True}})
    try:
        with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
            events = [event(i) for i in range(120)] + [event(999, model=STRANGER)]
            r = client.post("/v1/events", content=json.dumps({"events": events}), headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            r = client.post(f"/v1/cloudevents/{TOKEN}", content=json.dumps({"instances": [[0.1, 5.0, 3.0, "red"]]}),
                            headers=_kserve_headers(STRANGER))
            assert r.status_code == 404, r.text
            r = client.post("/v1/labels", content=json.dumps({"model": STRANGER, "labels": [{"id": "ev-1", "label": 1}, {"id": "ev-2", "label": 0}]}),
                            headers={"content-type": "application/json"})
            assert r.status_code == 404, r.text
            assert client.get(SECRET_PATH).status_code == 404
            assert client.get("/v1/models/toy/drift", headers={"authorization": "Bearer wrong"}).status_code == 401
            deadline = time.monotonic() + 60
            while client.get("/v1/models/toy/drift").json()["last_evaluation"] is None:
                assert time.monotonic() < deadline, "no window was evaluated within 60 s"
                time.sleep(0.05)
            body = client.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
            assert body.status_code == 200
            yield body.text
    finally:
        mp.undo()


def _samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, frozenset(labels.items())), float("nan"))


def test_a_request_is_counted_under_its_route_template_and_code(scrape: str) -> None:
    # the drift view was polled until a window was evaluated: at least once
    assert _value(scrape, "driftwatch_http_requests_total", method="GET", route="/v1/models/{model}/drift", code="200") >= 1


def test_its_duration_is_observed_under_the_template(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_request_duration_seconds_count", method="GET", route="/v1/models/{model}/drift") >= 1


def test_the_path_token_cloudevents_route_appears_as_its_template(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_requests_total", method="POST", route="/v1/cloudevents/{token}", code="404") == 1


def test_the_path_token_never_appears(scrape: str) -> None:
    assert TOKEN not in scrape


def test_an_unauthorized_request_is_counted_under_its_route(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_requests_total", method="GET", route="/v1/models/{model}/drift", code="401") == 1


def test_an_unknown_path_is_unmatched(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_requests_total", method="GET", route="unmatched", code="404") == 1


def test_an_unknown_path_is_not_a_label(scrape: str) -> None:
    assert "id-5b9d2c" not in scrape


def test_routes_have_duration_series_before_their_first_request(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_request_duration_seconds_count", method="GET", route="/v1/models/{model}/retraining") == 0


def test_unknown_model_events_and_cloudevents_are_counted_without_a_name(scrape: str) -> None:
    # one event of a batch (200, rejected) and one CloudEvent (404)
    assert _value(scrape, "driftwatch_events_rejected_total", model="", reason="unknown_model") == 2


def test_unknown_model_label_batches_are_counted_without_a_name(scrape: str) -> None:
    assert _value(scrape, "driftwatch_labels_total", model="", outcome="unknown_model") == 2


def test_the_unknown_model_name_appears_nowhere_in_metrics(scrape: str) -> None:
    assert STRANGER not in scrape


def test_the_404s_of_the_unknown_model_are_counted_by_route(scrape: str) -> None:
    assert _value(scrape, "driftwatch_http_requests_total", method="POST", route="/v1/labels", code="404") == 1


def test_an_evaluation_is_observed(scrape: str) -> None:
    assert _value(scrape, "driftwatch_evaluation_duration_seconds_count", model="toy") >= 1


def test_evaluation_time_is_positive(scrape: str) -> None:
    assert _value(scrape, "driftwatch_evaluation_duration_seconds_sum", model="toy") > 0


def test_a_model_not_yet_evaluated_has_an_empty_histogram(scrape: str) -> None:
    assert _value(scrape, "driftwatch_evaluation_duration_seconds_count", model="plain") == 0


def test_store_size_is_positive(scrape: str) -> None:
    assert _value(scrape, "driftwatch_store_size_bytes") > 0


def test_process_resident_memory_is_exported(scrape: str) -> None:
    assert _value(scrape, "process_resident_memory_bytes") > 0


def test_python_info_is_exported(scrape: str) -> None:
    assert any(name == "python_info" for name, _ in _samples(scrape))


def test_the_scrape_passes_promtool(scrape: str) -> None:
    check: Any = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True, timeout=60)
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
