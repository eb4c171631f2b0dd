"""`POST /v1/labels` and `GET /v1/models/{model}/performance` on a real uvicorn server: precise
4xx for hostile input (nothing stored), outcomes for well-formed labels, durable before the 200."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ingest_helpers import serve_in_thread

from monitor.app.api import create_app
from monitor.capture import encode_event
from tests.monitor.runtime.perf_helpers import draw, stream, write_classifier_config

TOKEN = "labels-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
X = draw(120, seed=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("labels-api")
    mp = pytest.MonkeyPatch()
    mp.setenv("DW_LABELS_TOKEN", TOKEN)
    cfg = write_classifier_config(tmp)
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"auth_token_env": "DW_LABELS_TOKEN", "max_body_bytes": 64 * 1024})})
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
        events = [json.loads(encode_event(e)) for e in stream(X)]
        for start in range(0, len(events), 40):
            r = client.post("/v1/events", json={"events": events[start : start + 40]})
            assert r.status_code == 200, r.text
        yield client
    mp.undo()


def post(client: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/labels", content=content, headers={"content-type": "application/json", **(headers or {})})


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    return str(body["error"])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        ({"labels": [{"id": "p-1", "label": 1}]}, 422, "validation_failed"),  # no model
        ({"model": "clf", "labels": [{"id": "p-1"}]}, 422, "validation_failed"),  # no label
        ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "labels": [1]}]}, 422, "validation_failed"),
        ({"model": "clf", "labels": [{"id": "p 1", "label": 1}]}, 422, "validation_failed"),  # not an id
        ({"model": "clf", "labels": [{"id": "p-1", "label": {"nested": 1}}]}, 422, "validation_failed"),
        ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "timestamp": "yesterday"}]}, 422, "validation_failed"),
        ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "timestamp": "2026-12-05T10:00:00"}]}, 422, "validation_failed"),
        ({"model": "clf", "labels": [{"id": "p-1", "label": 1, "extra": 2}]}, 422, "validation_failed"),
        ({"model": "nope", "labels": [{"id": "p-1", "label": 1}]}, 404, "unknown_model"),
    ],
)
def test_malformed_batches_are_refused_whole(server: httpx.Client, body: Any, status: int, error: str) -> None:
    assert error_of(post(server, body), status) == error


def test_a_refused_batch_stores_none_of_its_labels(server: httpx.Client) -> None:
    """The first label is fine, the second is not: the first must still be joinable afterwards."""
    r = post(server, {"model": "clf", "labels": [{"id": "p-100", "label": 1}, {"id": "p-101"}]})
    assert r.status_code == 422
    assert post(server, {"model": "clf", "labels": [{"id": "p-100", "label": 1}]}).json()["outcomes"]["joined"] == 1


def test_a_validation_error_names_the_item(server: httpx.Client) -> None:
    r = post(server, {"model": "clf", "labels": [{"id": "p-1", "label": 1}, {"id": "p-2"}]})
    assert r.json()["detail"][0]["loc"] == "labels[1]"


def test_wrong_media_type_is_415(server: httpx.Client) -> None:
    r = server.post("/v1/labels", content=b"id,label\np-1,1\n", headers={"content-type": "text/csv"})
    assert error_of(r, 415) == "unsupported_media_type"


def test_an_oversized_body_is_413(server: httpx.Client) -> None:
    items = [{"id": f"p-{i}", "label": 1} for i in range(5000)]
    assert error_of(post(server, {"model": "clf", "labels": items}), 413) == "too_large"


def test_labels_need_a_write_token(server: httpx.Client) -> None:
    r = post(server, {"model": "clf", "labels": [{"id": "p-3", "label": 1}]}, headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_well_formed_labels_get_their_outcomes(server: httpx.Client) -> None:
    r = post(server, {"model": "clf", "labels": [{"id": "p-4", "label": 0}, {"id": "p-4", "label": 0},
                                                  {"id": "never-captured", "label": 1}]})
    assert r.json() == {"outcomes": {"joined": 1, "duplicate": 1, "unknown_id": 1, "too_late": 0, "event_rejected": 0,
                                     "count_mismatch": 0, "invalid": 0}, "unknown_ids": ["never-captured"]}


def test_the_performance_view_lists_evaluated_windows(server: httpx.Client) -> None:
    body = server.get("/v1/models/clf/performance").json()
    assert body["enabled"] is True and isinstance(body["windows"], list)


def test_labels_for_a_model_without_performance_are_409(tmp_path: Path) -> None:
    cfg = write_classifier_config(tmp_path)
    plain = cfg.model_copy(update={"models": [cfg.models[0].model_copy(update={"performance": None})]})
    with serve_in_thread(create_app(plain)) as url, httpx.Client(base_url=url, timeout=30) as client:
        r = post(client, {"model": "clf", "labels": [{"id": "p-1", "label": 1}]})
    assert error_of(r, 409) == "no_performance"
