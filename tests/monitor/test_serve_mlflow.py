"""`driftwatch serve` with an `mlflow` section, as a real process against a real MLflow server: the
reference comes from the model version, and drifted traffic ends as tags on that version."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx

from tests.infra.mlflow_server import MlflowServer
from tests.mlflow_helpers import log_reference, mlflow_config, reference_csv
from tests.monitor.ingest_helpers import MonitorProcess, event
from tests.ports import free_port


def test_served_traffic_that_drifts_tags_the_watched_model_version(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    model = f"toy-{secrets.token_hex(4)}"
    run_id, version = log_reference(mlflow_server, model, reference_csv(tmp_path / "ref"))
    mlflow_server.set_alias(model, "champion", version)
    mlflow_config(tmp_path, mlflow_server, {"model": model, "alias": "champion", "artifact": "reference/train.csv"})
    monitor = MonitorProcess(tmp_path / "config.yaml", free_port()).start()
    try:
        with httpx.Client(base_url=monitor.url, timeout=30) as client:
            reference = client.get("/v1/models/toy/drift").json()["reference"]
            assert client.post("/v1/events", json={"events": [event(i, shift=5.0) for i in range(100)]}).status_code == 200
        deadline = time.monotonic() + 90  # evaluated every 50 ms; the tags follow on the MLflow thread
        while time.monotonic() < deadline and "driftwatch.drift_status" not in mlflow_server.version_tags(model, version):
            time.sleep(0.2)
    finally:
        monitor.stop()
    assert (reference["version"], reference["run_id"], reference["alias"]) == (version, run_id, "champion")
    assert mlflow_server.version_tags(model, version).get("driftwatch.drift_status") == "drift", monitor.log.read_text()[-3000:]
