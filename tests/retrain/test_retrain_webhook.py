"""`POST /v1/alertmanager` on a real uvicorn server, with Alertmanager v4 payloads and a real Alertmanager."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from monitor.core.config import parse_config
from retrain.controller import RetrainController
from retrain.webhook import router
from tests.monitor.ingest_helpers import serve_in_thread
from tests.ports import free_port

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

ALERT = {
    "status": "firing",
    "labels": {"alertname": "DriftwatchDatasetDrift", "driftwatch_action": "retrain", "job": "driftwatch",
               "model": "wine", "severity": "critical"},
    "annotations": {
        "summary": "Dataset drift on wine",
        "description": "62% of wine's columns drifted",
        "runbook_url": "https://github.com/driftwatch/driftwatch/blob/main/docs/runbooks.md#driftwatchdatasetdrift",
        "report_url": "http://127.0.0.1:8080/reports/wine",
    },
    "startsAt": "2026-11-22T11:58:23.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=driftwatch_dataset_drift_share%7Bmodel%3D%22wine%22%7D",
    "fingerprint": "5b8f6a7c2d1e0f93",
}
PAYLOAD = {
    "receiver": "driftwatch-retrain",
    "status": "firing",
    "alerts": [ALERT],
    "groupLabels": {"alertname": "DriftwatchDatasetDrift", "model": "wine"},
    "commonLabels": ALERT["labels"],
    "commonAnnotations": ALERT["annotations"],
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{alertname="DriftwatchDatasetDrift", model="wine"}',
    "truncatedAlerts": 0,
}


def payload(*alerts: dict[str, Any], **top: Any) -> dict[str, Any]:
    out = copy.deepcopy(PAYLOAD)
    if alerts:
        out["alerts"] = [copy.deepcopy(a) for a in alerts]
    out.update(top)
    return out


def alert(**changes: Any) -> dict[str, Any]:
    a = copy.deepcopy(ALERT)
    labels = changes.pop("labels", None)
    if labels is not None:
        a["labels"] = {k: v for k, v in {**a["labels"], **labels}.items() if v is not None}
    a.update(changes)
    return a


def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def make_controller(tmp_path: Path, **wine: Any) -> RetrainController:
    feature = [{"name": "x", "type": "numeric"}]
    local = {"command": [sys.executable, "-c", "print('ok')"], "log_dir": str(tmp_path / "logs")}
    data = {"models": [
        {"name": "wine", "features": feature, "reference": {"path": "w.csv"},
         "retrain": {"cooldown": "1h", "local": local, **wine}},
        {"name": "churn", "features": feature, "reference": {"path": "c.csv"},
         "retrain": {"cooldown": "1h", "local": local}},
        {"name": "plain", "features": feature, "reference": {"path": "p.csv"}},
    ]}
    c = RetrainController(parse_config(data), tmp_path / "driftwatch.db")
    c.start()
    return c


class Server:
    """The router in a FastAPI app on a real uvicorn server on 127.0.0.1 (port 0: the kernel picks)."""

    def __init__(self, controller: RetrainController, token: str | None, max_body: int) -> None:
        app = FastAPI()
        app.include_router(router(controller, token, max_body_bytes=max_body))
        self._serving = serve_in_thread(app)
        self.url = ""

    def __enter__(self) -> Server:
        self.url = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(*exc)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[RetrainController]:
    c = make_controller(tmp_path)
    yield c
    c.stop()


@pytest.fixture
def server(controller: RetrainController) -> Iterator[Server]:
    with Server(controller, TOKEN, 64 * 1024) as s:
        yield s


def post(server: Server, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> httpx.Response:
    hdrs = {"Content-Type": "application/json", **AUTH, **(headers or {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}/v1/alertmanager", content=content, headers=hdrs, timeout=10)


def test_a_firing_retrain_alert_launches_once_per_fingerprint_and_start(server: Server,
                                                                       controller: RetrainController) -> None:
    r = post(server, PAYLOAD)
    assert r.status_code == 200
    body = r.json()
    (d,) = body["decisions"]
    assert (d["model"], d["action"], d["reason"], body["received"]) == ("wine", "launch", "alert", 1)
    assert d["job"].startswith("wine-retrain-")
    wait_for(lambda: controller.snapshot()["wine"].finished["succeeded"] == 1)
    (rec,) = controller.history.jobs(model="wine")
    assert rec.run.trigger.report_url == "http://127.0.0.1:8080/reports/wine"
    assert rec.run.trigger.reason == "alert DriftwatchDatasetDrift firing since 2026-11-22T11:58:23Z"
    # Alertmanager re-sends the group (repeat_interval, another alert joining): no second launch.
    again = post(server, PAYLOAD).json()["decisions"][0]
    assert (again["action"], again["reason"]) == ("none", "duplicate")
    # The same alert firing anew (new startsAt) is a new trigger, and meets the cooldown.
    later = post(server, payload(alert(startsAt="2026-11-22T15:00:00Z"))).json()["decisions"][0]
    assert (later["action"], later["reason"]) == ("skip", "cooldown")
    assert controller.snapshot()["wine"].decisions == {"alert": 1, "duplicate": 1, "cooldown": 1}


def test_only_firing_retrain_alerts_of_known_models_count(server: Server, controller: RetrainController) -> None:
    body = payload(
        alert(status="resolved", endsAt="2026-11-22T12:30:00Z"),
        alert(labels={"driftwatch_action": None}, fingerprint="0000000000000001"),
        alert(labels={"model": "nope"}, fingerprint="0000000000000002"),
        alert(labels={"model": None}, fingerprint="0000000000000003"),
        alert(labels={"model": "plain"}, fingerprint="0000000000000004"),
        alert(labels={"model": "churn"}, fingerprint="0000000000000005"),
    )
    r = post(server, body)
    assert r.status_code == 200
    out = r.json()
    assert [i["reason"] for i in out["ignored"]] == [
        "resolved", "not_a_retrain_alert", "unknown_model", "missing_model_label"]
    assert [(d["model"], d["action"], d["reason"]) for d in out["decisions"]] == [
        ("plain", "none", "disabled"), ("churn", "launch", "alert")]
    assert controller.history.recent_decisions("wine", 10) == []


@pytest.mark.parametrize("headers", [{"Authorization": ""}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_a_wrong_or_missing_token_is_401(server: Server, controller: RetrainController,
                                         headers: dict[str, str]) -> None:
    r = post(server, PAYLOAD, headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert controller.history.recent_decisions("wine", 10) == []


def test_without_a_token_no_auth_is_required(controller: RetrainController) -> None:
    with Server(controller, None, 1024 * 1024) as s:
        r = httpx.post(f"{s.url}/v1/alertmanager", json=PAYLOAD, timeout=10)
    assert r.status_code == 200
    assert r.json()["decisions"][0]["action"] == "launch"


def test_oversized_bodies_are_413_declared_or_streamed(server: Server) -> None:
    big = payload(*[alert(fingerprint=f"{i:016x}") for i in range(200)])
    assert post(server, big).status_code == 413

    def chunks() -> Iterator[bytes]:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]

    r = httpx.post(f"{server.url}/v1/alertmanager", content=chunks(),
                   headers={"Content-Type": "application/json", **AUTH}, timeout=10)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"


def test_non_json_content_type_is_415(server: Server) -> None:
    r = post(server, None, {"Content-Type": "text/plain"}, raw=b"hello")
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[" * 20_000 + b"]" * 20_000],
                         ids=["truncated", "not-utf8", "deeply-nested"])
def test_malformed_json_is_400(server: Server, raw: bytes) -> None:
    r = post(server, None, raw=raw)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_json"


@pytest.mark.parametrize(("body", "paths"), [
    (payload(version="3"), ["version"]),
    ({k: v for k, v in PAYLOAD.items() if k != "alerts"}, ["alerts"]),
    (payload(alert(startsAt="yesterday")), ["alerts[0].startsAt"]),
    (payload(alert(startsAt="0001-01-01T00:00:00+14:00")), ["alerts[0].startsAt"]),  # year 0 in UTC: was a 500
    (payload(alert(), alert(endsAt="9999-12-31T23:59:59-14:00")), ["alerts[1].endsAt"]),  # year 10000 in UTC
    (payload(alert(), alert(labels={"model": 7})), ["alerts[1].labels.model"]),
    (payload(alert(status="pending")), ["alerts[0].status"]),
    (payload(alert(fingerprint="")), ["alerts[0].fingerprint"]),
    ([PAYLOAD], ["(body)"]),
])
def test_schema_errors_are_422_with_field_paths(server: Server, controller: RetrainController, body: Any,
                                                paths: list[str]) -> None:
    r = post(server, body)
    assert r.status_code == 422
    out = r.json()
    # The monitor's vocabulary (POST /v1/events answers the same shape).
    assert out["error"] == "validation_failed"
    assert [d["loc"] for d in out["detail"]] == paths
    assert all(set(d) == {"loc", "msg", "type"} for d in out["detail"])
    assert controller.history.recent_decisions("wine", 10) == []


def test_validation_details_are_bounded_and_never_echo_values(server: Server) -> None:
    secret = "patient-4711-diagnosis"
    bad = [{"status": "firing", "labels": {"model": secret}, "annotations": {"summary": secret}} for _ in range(40)]
    r = post(server, payload(*bad))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert len(detail) == 50
    assert detail[0]["loc"] == "alerts[0].startsAt"
    assert secret not in r.text


# -- a real Alertmanager delivering to the webhook ------------------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path, server: Server) -> Iterator[str]:
    if not os.path.exists(ALERTMANAGER):
        pytest.fail("prometheus-alertmanager is not installed (scripts/test.sh installs it)")
    port = free_port()
    config = {
        "route": {"receiver": "driftwatch", "group_by": ["alertname", "model"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "driftwatch", "webhook_configs": [{
            "url": f"{server.url}/v1/alertmanager", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}],
    }
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    with open(tmp_path / "am.log", "wb") as log:
        proc = subprocess.Popen([ALERTMANAGER, f"--config.file={tmp_path / 'am.yml'}",
                                 f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--cluster.listen-address=", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "am.log").read_text()
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 30)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def fire(am: str, model: str) -> None:
    body = [{"labels": {"alertname": "DriftwatchDatasetDrift", "driftwatch_action": "retrain", "model": model,
                        "severity": "critical"},
             "annotations": {"summary": f"Dataset drift on {model}"},
             "startsAt": "2026-11-22T11:58:23Z"}]
    assert httpx.post(f"{am}/api/v2/alerts", json=body, timeout=5).status_code == 200


def test_alertmanager_delivers_and_a_silence_stops_retraining(alertmanager: str,
                                                             controller: RetrainController) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    silence = {"matchers": [{"name": "model", "value": "churn", "isRegex": False, "isEqual": True}],
               "startsAt": now, "endsAt": end, "createdBy": "on-call", "comment": "stop retraining churn"}
    assert httpx.post(f"{alertmanager}/api/v2/silences", json=silence, timeout=5).status_code == 200
    fire(alertmanager, "churn")
    fire(alertmanager, "wine")
    wait_for(lambda: controller.snapshot()["wine"].launched == 1, 20)
    (d,) = controller.history.recent_decisions("wine", 10)
    assert (d.source, d.action, d.reason) == ("alert", "launch", "alert")
    # Alertmanager holds the silenced model's alert as suppressed and never delivers it.
    (held,) = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": 'model="churn"'}, timeout=5).json()
    assert held["status"]["state"] == "suppressed"
    assert held["status"]["silencedBy"]
    time.sleep(1.5)  # more than a group interval
    assert controller.history.recent_decisions("churn", 10) == []
