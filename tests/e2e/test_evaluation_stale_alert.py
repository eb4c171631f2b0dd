"""DriftwatchEvaluationStale for a model that was never evaluated, on a real monitor and Prometheus.

`driftwatch serve` runs a config with three models: `good` (profiled, traffic: evaluated),
`broken` (its reference lacks a configured column, so it never profiles, yet its traffic is stored)
and `idle` (broken too, but with fewer records than its first evaluation needs). Debian's Prometheus
scrapes the monitor every second and evaluates the generated rules (short `max_age` and `for`):
only `broken` fires, with `reason="never_evaluated"`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from promstack import Service, prometheus, prometheus_alerts, wait_for

import alerts
from monitor.core.config import load_config
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ALERT = "DriftwatchEvaluationStale"
RECORDS = {"good": 60, "broken": 60, "idle": 10}  # first evaluation is due at 20 records


def _config(workdir: Path, port: int) -> Path:
    rng = np.random.default_rng(5)
    pd.DataFrame({"x0": rng.normal(0, 1, 300), "x1": rng.normal(0, 1, 300)}).to_csv(workdir / "good.csv", index=False)
    pd.DataFrame({"x0": rng.normal(0, 1, 300)}).to_csv(workdir / "no_x1.csv", index=False)
    model = {
        "protocol": "kserve_v1",
        "features": [{"name": f"x{i}", "type": "numeric", "source": {"index": i}} for i in range(2)],
        "window": {"records": 40, "step": 20, "min_records": 20},
    }
    doc = {
        "version": 1,
        "server": {"port": port, "evaluation_interval": "200ms", "store": {"path": str(workdir / "driftwatch.db")}},
        "defaults": {"alerts": {"evaluation_stale": {"for": "2s", "max_age": "2s"}}},
        "models": [
            {**model, "name": "good", "reference": {"path": str(workdir / "good.csv")}},
            {**model, "name": "broken", "reference": {"path": str(workdir / "no_x1.csv")}},
            {**model, "name": "idle", "reference": {"path": str(workdir / "no_x1.csv")}},
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _event(model: str, i: int) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    body = json.dumps({"instances": [[float(rng.normal()), float(rng.normal())]]})
    return {
        "id": f"{model}-{i}", "model": model, "timestamp": 1_700_000_000.0 + i, "latency_seconds": 0.001,
        "status": 200, "method": "POST", "path": f"/v1/models/{model}:predict",
        "request": {"body": body, "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        "response": {"body": '{"predictions": [1]}', "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
    }


def test_a_model_that_never_evaluates_fires_the_stale_alert(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    monitor_port, prometheus_port = free_port(), free_port()
    config_path = _config(tmp_path, monitor_port)
    rules = [p for p in alerts.write(load_config(config_path), tmp_path / "rules") if p.name == alerts.RULES_FILE]
    monitor_url = f"http://127.0.0.1:{monitor_port}"
    # Not ready (503) while a reference fails to profile, but alive and ingesting: wait on /healthz.
    monitor = Service(
        "monitor", [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config_path), "--port", str(monitor_port)],
        tmp_path, f"{monitor_url}/healthz",
    )
    prom = prometheus(
        port=prometheus_port, monitor_port=monitor_port, alertmanager_port=free_port(), rule_files=rules,
        job="driftwatch", workdir=tmp_path,
    )
    for service in (monitor, prom):
        request.addfinalizer(service.stop)
    monitor.start(timeout=60)
    ready = httpx.get(f"{monitor_url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert set(ready.json()["detail"]["reference_errors"]) == {"broken", "idle"}

    with httpx.Client(base_url=monitor_url, timeout=10) as http:
        for model, n in RECORDS.items():
            response = http.post("/v1/events", json={"events": [_event(model, i) for i in range(n)]})
            assert response.status_code == 200, response.text
        wait_for("`good` to be evaluated", lambda: http.get("/v1/models/good/drift").json()["last_evaluation"], timeout=30)
    prom.start(timeout=60)

    prom_url = f"http://127.0.0.1:{prometheus_port}"

    def firing() -> list[dict[str, Any]]:
        return [a for a in prometheus_alerts(prom_url, ALERT) if a["state"] == "firing"]

    fired = wait_for(f"{ALERT} to fire for `broken`", firing, timeout=60)
    assert [(a["labels"]["model"], a["labels"].get("reason")) for a in fired] == [("broken", "never_evaluated")]
    assert float(fired[0]["value"]) == 40  # the records in its window
    assert "never been evaluated" in fired[0]["annotations"]["description"]
    # `good` is evaluated and `idle` is still short of its first window: neither even pending.
    assert {a["labels"]["model"] for a in prometheus_alerts(prom_url, ALERT)} == {"broken"}
