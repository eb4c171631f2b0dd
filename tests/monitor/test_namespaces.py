"""A model's identity is (namespace, name): two InferenceServices of one name in two namespaces are two
models in the API, the windows, the store and /metrics; a store from before namespaces is migrated."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ingest_helpers import event, serve_in_thread, write_config
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.api import create_app
from monitor.core.config import Config, load_config

TEAMS = ("team-a", "team-b")


def namespaced(tmp_path: Path, namespaces: tuple[str | None, ...] = TEAMS) -> Config:
    """The helpers' `toy` model once per namespace (`None`: without one)."""
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    toy = next(m for m in data["models"] if m["name"] == "toy")
    data["models"] = [{**toy, **({"namespace": ns} if ns else {})} for ns in namespaces]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def post(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    return dict(r.json())


def evaluated(client: httpx.Client, namespace: str, last_seq: int | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        view = client.get("/v1/models/toy/drift", params={"namespace": namespace}).json()
        if view["result"] is not None and (last_seq is None or view["window"]["last_seq"] >= last_seq):
            return dict(view)
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def series(text: str, family: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(s.labels.items()): s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == family}


@pytest.fixture(scope="module")
def two_teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, dict[str, Any]]]]:
    """team-a's traffic drifts, team-b's does not; both name their model `toy`."""
    cfg = namespaced(tmp_path_factory.mktemp("ns"))
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        shifted = [event(i, shift=3.0, namespace="team-a") for i in range(150)]
        quiet = [event(i, namespace="team-b") for i in range(150)]  # the same ids: another model's
        accepted = {"team-a": post(client, shifted), "team-b": post(client, quiet)}
        views = {ns: evaluated(client, ns) for ns in TEAMS}
        yield client, {"accepted": accepted, "views": views}


def test_each_namespace_accepts_its_own_events(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    _, seen = two_teams
    assert [seen["accepted"][ns]["accepted"] for ns in TEAMS] == [150, 150]


def test_the_drifting_namespace_drifts_alone(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    _, seen = two_teams
    drifted = {ns: seen["views"][ns]["result"]["dataset"]["drifted"] for ns in TEAMS}
    assert drifted == {"team-a": True, "team-b": False}


def test_views_name_the_namespace(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    listed = {(m["namespace"], m["model"]) for m in client.get("/v1/models").json()["models"]}
    assert listed == {("team-a", "toy"), ("team-b", "toy")}


def test_a_shared_name_without_a_namespace_is_refused_with_the_choices(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    r = client.get("/v1/models/toy/drift")
    assert (r.status_code, r.json()["error"]) == (404, "unknown_model")
    assert "team-a, team-b" in r.json()["detail"]


def test_an_event_from_another_namespace_is_an_unknown_model(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    answer = post(client, [event(9000, namespace="team-c"), event(9001)])  # elsewhere, and no namespace at all
    assert answer["reasons"] == {"unknown_model": 2}


def test_metrics_carry_each_models_namespace(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    drifted = series(client.get("/metrics").text, "driftwatch_dataset_drift_detected")
    assert drifted == {frozenset({("namespace", "team-a"), ("model", "toy")}): 1.0,
                       frozenset({("namespace", "team-b"), ("model", "toy")}): 0.0}


def test_reports_pick_the_namespace(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    pages = {ns: client.get("/reports/toy", params={"namespace": ns, "format": "json"}) for ns in TEAMS}
    assert {ns: (p.status_code, p.json()["result"]["dataset"]["drifted"]) for ns, p in pages.items()} == {
        "team-a": (200, True), "team-b": (200, False)}


def test_labels_name_their_namespace(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    r = client.post("/v1/labels", json={"model": "toy", "namespace": "team-b", "labels": [{"id": "ev-1", "label": 1}]})
    assert (r.status_code, r.json()["error"]) == (409, "no_performance")  # found, and it takes no labels


def test_labels_without_the_namespace_are_refused(two_teams: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, _ = two_teams
    r = client.post("/v1/labels", json={"model": "toy", "labels": [{"id": "ev-1", "label": 1}]})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_model")


def test_kserve_cloudevents_are_routed_by_their_namespace(tmp_path: Path) -> None:
    cfg = namespaced(tmp_path)
    body = json.dumps({"instances": [[0.1, 5.0, 3.0, "red"]]}).encode()
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = [client.post("/v1/cloudevents", content=body, headers={
            "ce-specversion": "1.0", "ce-id": "req-1", "ce-source": "kserve", "content-type": "application/json",
            "ce-type": "org.kubeflow.serving.inference.request", "ce-inferenceservicename": "toy", "ce-namespace": ns,
        }) for ns in ("team-b", "team-c")]
    assert [(a.status_code, a.json().get("status", a.json().get("error"))) for a in answers] == [
        (200, "pending"), (404, "unknown_model")]


def test_a_store_from_before_namespaces_moves_to_the_models_namespace(tmp_path: Path) -> None:
    """The same store, first with `toy` known by name only, then configured in `team-a`: its events,
    window and evaluations are the namespaced model's, and no event is lost."""
    before = namespaced(tmp_path, (None,))
    with serve_in_thread(create_app(before)) as url, httpx.Client(base_url=url, timeout=30) as client:
        post(client, [event(i, shift=3.0) for i in range(150)])
        old = evaluated(client, "any-namespace")  # a model without one takes any namespace
    after = namespaced(tmp_path, ("team-a",))
    with serve_in_thread(create_app(after)) as url, httpx.Client(base_url=url, timeout=30) as client:
        new = client.get("/v1/models/toy/drift", params={"namespace": "team-a"}).json()
        duplicates = post(client, [event(i, namespace="team-a") for i in range(3)])["duplicates"]
    assert (new["namespace"], new["window"], new["result"]["dataset"]) == ("team-a", old["window"], old["result"]["dataset"])
    assert duplicates == 3  # the moved events are the model's: re-sent ones are recognised
