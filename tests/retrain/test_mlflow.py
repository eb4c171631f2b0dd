"""MLflow in the loop, against a real `mlflow server`: drift tags on the watched model version after
an evaluation, evaluations that go on while MLflow is down (the failures counted, the tags written
once it is back), and a retraining run linked to the model version registered from its MLflow run."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from monitor.app.api import create_app
from monitor.runtime import Monitor
from retrain.history import History, MlflowLink
from retrain.mlflow import TRIGGER_TAG, MlflowSync
from retrain.policy import Trigger
from retrain.run import Run, job_name
from tests.infra.mlflow_server import MlflowServer
from tests.mlflow_helpers import log_reference, mlflow_config, reference_csv
from tests.monitor.runtime.runtime_helpers import Clock, events, run_monitor

REFERENCE = "reference/train.csv"


def watched(tmp_path: Path, server: MlflowServer, **kw: Any) -> tuple[Any, str, str]:
    """A config whose `toy` model's reference is version 1 of a new registered model: (config, name, version)."""
    model = f"toy-{secrets.token_hex(4)}"
    _, version = log_reference(server, model, reference_csv(tmp_path / "ref"))
    return mlflow_config(tmp_path, server, {"model": model, "version": int(version), "artifact": REFERENCE}, **kw), model, version


def evaluate(cfg: Any, sync: MlflowSync, shift: float, start: int = 0) -> Monitor:
    async def scenario() -> Monitor:
        mon, _ = await run_monitor(cfg, [events(range(start, start + 100), shift=shift)], listeners=[sync])
        await mon.stop()
        return mon

    return asyncio.run(scenario())


def test_the_watched_version_is_tagged_with_its_drift_status_after_an_evaluation(
        tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, version = watched(tmp_path, mlflow_server)
    sync = MlflowSync(cfg)
    evaluate(cfg, sync, shift=5.0)
    sync.flush_once()
    tags = mlflow_server.version_tags(model, version)
    assert tags["driftwatch.drift_status"] == "drift"
    assert float(tags["driftwatch.drift_share"]) > 0.5
    assert tags["driftwatch.report_url"] == "http://monitor.example:8080/reports/toy"
    assert tags["driftwatch.last_evaluated"].endswith("Z")
    assert sync.failures() == {"tag_version": 0, "link_run": 0}


def test_quiet_traffic_is_tagged_ok(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, version = watched(tmp_path, mlflow_server)
    sync = MlflowSync(cfg)
    evaluate(cfg, sync, shift=0.0)
    sync.flush_once()
    assert mlflow_server.version_tags(model, version)["driftwatch.drift_status"] == "ok"


def test_the_drift_endpoint_says_which_reference_judged_the_traffic(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, version = watched(tmp_path, mlflow_server)
    sync = MlflowSync(cfg)
    mon = evaluate(cfg, sync, shift=5.0)
    with TestClient(create_app(cfg, monitor=mon, mlflow=sync)) as client:
        body = client.get("/v1/models/toy/drift").json()
        plain = client.get("/v1/models/plain/drift").json()
    assert (body["reference"]["mlflow_model"], body["reference"]["version"], body["reference"]["artifact"]) == (
        model, version, REFERENCE)
    assert "reference" not in plain


def test_evaluations_go_on_while_mlflow_is_down_and_the_tags_follow_when_it_is_back(
        tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, version = watched(tmp_path, mlflow_server)
    clock = Clock()
    sync = MlflowSync(cfg, clock=clock)

    async def scenario() -> Monitor:
        mon = Monitor(cfg, listeners=[sync])
        await mon.start(background=False)  # the reference is read while MLflow is up
        mlflow_server.stop()
        await mon.ingest(events(range(100), shift=5.0))
        mon.evaluate_due()
        await mon.stop()
        return mon

    try:
        mon = asyncio.run(scenario())
        assert mon.snapshot()["toy"].result is not None  # evaluated without MLflow
        sync.flush_once()
        assert sync.pending() == 1  # kept for a retry, not dropped
        with TestClient(create_app(cfg, monitor=mon, mlflow=sync)) as client:
            metrics = client.get("/metrics").text
        assert 'driftwatch_mlflow_requests_failed_total{operation="tag_version"} 1.0' in metrics
    finally:
        mlflow_server.start()
    clock.now += 60  # past the backoff
    sync.flush_once()
    assert sync.pending() == 0
    assert mlflow_server.version_tags(model, version)["driftwatch.drift_status"] == "drift"


def test_an_unchanged_verdict_is_not_written_again_before_the_interval(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, _, _ = watched(tmp_path, mlflow_server, mlflow={"tag_interval": "1h"})
    sync = MlflowSync(cfg)
    evaluate(cfg, sync, shift=5.0)
    sync.flush_once()
    evaluate(cfg, sync, shift=5.0, start=1000)
    assert sync.pending() == 0


def test_a_changed_verdict_is_written_at_once(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, version = watched(tmp_path, mlflow_server, mlflow={"tag_interval": "1h"})
    sync = MlflowSync(cfg)
    evaluate(cfg, sync, shift=5.0)
    sync.flush_once()
    evaluate(cfg, sync, shift=0.0, start=1000)
    sync.flush_once()
    assert mlflow_server.version_tags(model, version)["driftwatch.drift_status"] == "ok"


RETRAIN = {"launcher": "local", "consecutive_windows": 1, "min_records": 10, "local": {"command": ["true"]}}


def launched(cfg: Any, fingerprint: str, at: float) -> tuple[History, str]:
    """A retraining run of `toy` in the store's history, as the controller records one: (history, its name)."""
    trigger = Trigger("window", at - 600, at, 0.8, ("f0",), None, "drift held for 1 window")
    run = Run(name=job_name("toy", fingerprint), model="toy", fingerprint=fingerprint, trigger=trigger,
              reference=cfg.models[0].reference.source)
    cfg.server.store.path.parent.mkdir(parents=True, exist_ok=True)
    history = History(cfg.server.store.path)
    history.adopt(run, "local", None, at)
    return history, run.name


def test_a_retraining_run_is_linked_to_the_version_registered_from_its_mlflow_run(
        tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, model, _ = watched(tmp_path, mlflow_server, retrain=RETRAIN)
    fingerprint = secrets.token_hex(16)
    clock = Clock()
    history, job = launched(cfg, fingerprint, clock.now)
    sync = MlflowSync(cfg, history=lambda: history, clock=clock)
    # the training code tags its MLflow run with DRIFTWATCH_TRIGGER and registers the model it trained
    run_id = mlflow_server.log_run(tags={TRIGGER_TAG: fingerprint}, artifacts={REFERENCE: b"f0\n1\n"})
    assert sync.link_once() == 0  # the run exists, no version yet: looked up again later
    new_version = mlflow_server.register(model, run_id)
    assert sync.link_once() == 1
    assert mlflow_server.version_tags(model, new_version)[TRIGGER_TAG] == fingerprint
    assert history.job(job).mlflow == MlflowLink(run_id, ((model, new_version),), clock.now)  # type: ignore[union-attr]


def test_the_link_is_shown_with_the_retraining_run_and_survives_a_restart(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    from retrain.controller import RetrainController

    cfg, model, _ = watched(tmp_path, mlflow_server, retrain=RETRAIN)
    fingerprint = secrets.token_hex(16)
    history, job = launched(cfg, fingerprint, Clock().now)
    run_id = mlflow_server.log_run(tags={TRIGGER_TAG: fingerprint})
    new_version = mlflow_server.register(model, run_id)
    MlflowSync(cfg, history=lambda: history, clock=Clock()).link_once()
    history.close()
    controller = RetrainController(cfg, cfg.server.store.path)
    try:
        again = MlflowSync(cfg, history=lambda: controller.history)  # a restarted monitor: the link is in the store
        with TestClient(create_app(cfg, monitor=Monitor(cfg), controller=controller, mlflow=again)) as client:
            (shown,) = client.get("/v1/models/toy/retraining").json()["jobs"]
    finally:
        controller.stop()
    assert (shown["name"], shown["mlflow"]["run_id"], shown["mlflow"]["model_versions"]) == (
        job, run_id, [{"name": model, "version": new_version}])


def test_a_retraining_run_without_an_mlflow_run_stays_unlinked(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg, _, _ = watched(tmp_path, mlflow_server, retrain=RETRAIN)
    history, job = launched(cfg, secrets.token_hex(16), Clock().now)
    sync = MlflowSync(cfg, history=lambda: history, clock=Clock())
    assert sync.link_once() == 0
    assert history.job(job).mlflow is None  # type: ignore[union-attr]
