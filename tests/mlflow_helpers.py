"""Shared by the MLflow tests: the toy config of tests/monitor/ingest_helpers.py with its reference
in MLflow instead of a file, and a reference logged to the real server as a training run would."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from monitor.core.config import Config, load_config
from tests.infra.mlflow_server import MlflowServer
from tests.monitor.ingest_helpers import write_config


def reference_csv(tmp_path: Path) -> bytes:
    """The toy reference that `write_config` writes, as bytes (what the training run logs)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_config(tmp_path)
    return (tmp_path / "reference.csv").read_bytes()


def log_reference(server: MlflowServer, model: str, body: bytes, *, artifact: str = "reference/train.csv",
                  tags: dict[str, str] | None = None) -> tuple[str, str]:
    """A run that logged `body` as `artifact`, registered as a new version of `model`: (run id, version)."""
    run_id = server.log_run(artifacts={artifact: body}, tags=tags)
    return run_id, server.register(model, run_id)


def mlflow_config(tmp_path: Path, server: MlflowServer, reference: dict[str, Any], *,
                  mlflow: dict[str, Any] | None = None, retrain: dict[str, Any] | None = None) -> Config:
    """The toy config whose `toy` model reads `reference` (the `reference.mlflow` mapping) from `server`."""
    path = write_config(tmp_path, server={"public_url": "http://monitor.example:8080"}, retrain=retrain)
    data = yaml.safe_load(path.read_text())
    data["mlflow"] = {"tracking_uri": server.url, "timeout": "5s", **(mlflow or {})}
    data["models"][0]["reference"] = {"mlflow": reference}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def frame(body: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body))
