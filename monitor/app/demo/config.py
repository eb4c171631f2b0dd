"""The demo's embedded config: the wine model behind a sidecar, judged on late labels, retrained by a local subprocess."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from monitor.app.demo import wine
from monitor.core.config import Config, load_config

WINDOW_RECORDS = 400
WINDOW_STEP = 200
RETRAINED_VERSION = 2
RETRAIN_SCRIPT = """\
import os, pickle, sys
from pathlib import Path
from monitor.app.demo import wine
print("retraining", os.environ["DRIFTWATCH_MODEL"], "on drifted features:", os.environ["DRIFTWATCH_DRIFTED_FEATURES"])
print("window", os.environ["DRIFTWATCH_WINDOW_START"], "to", os.environ["DRIFTWATCH_WINDOW_END"])
out, version = Path(sys.argv[1]), sys.argv[2]
model = wine.train(drifted=True)
wine.reference(model, drifted=True).to_csv(out / f"wine_reference_v{version}.csv", index=False)
(out / f"model-v{version}.tmp").write_bytes(pickle.dumps(model))
os.replace(out / f"model-v{version}.tmp", out / f"model-v{version}.pkl")
print(f"model version {version} and its reference written to {out}")
"""
"""The demo's retraining run: version 2 of the model fitted to drifted traffic, and its reference
(drifted data with version 2's outputs) beside it, for the demo to serve and set."""


def demo_config(workdir: Path, port: int) -> dict[str, Any]:
    """The config as a YAML document: what a user would write for this model."""
    return {
        "version": 1,
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "evaluation_interval": "0.5s",
            "cloudevents_join_timeout": "10s",
            "store": {"path": str(workdir / "driftwatch.db")},
        },
        "defaults": {
            "alerts": {
                "dataset_drift": {"warning": 0.3, "critical": 0.5, "for": "15m"},
            }
        },
        "models": [
            {
                "name": "wine",
                "protocol": "kserve_v1",
                "features": [
                    {"name": name, "type": "numeric", "source": {"index": i}}
                    for i, name in enumerate(wine.FEATURES)
                ],
                "outputs": [
                    {"name": "predicted_class", "type": "categorical", "source": {"key": "predicted_class"}},
                    {"name": "confidence", "type": "numeric", "source": {"key": "confidence"}},
                    *({"name": f"proba_{c}", "type": "numeric", "source": {"key": f"proba_{c}"}} for c in wine.CLASSES),
                ],
                "performance": {
                    "task": "classification",
                    "prediction": "predicted_class",
                    "probabilities": {c: f"proba_{c}" for c in wine.CLASSES},
                    "metric": "accuracy",
                    "min_labels": 100,
                },
                "reference": {"path": str(workdir / "wine_reference.csv")},
                "window": {"records": WINDOW_RECORDS, "step": WINDOW_STEP, "min_records": 100},
                "resources": {"pid_file": str(workdir / "model.pid")},
                "retrain": {
                    "launcher": "local",
                    "consecutive_windows": 2,
                    "min_records": 200,
                    "enter_share": 0.5,
                    "exit_share": 0.3,
                    "on_performance": "either",
                    "cooldown": "1h",
                    "max_active": 1,
                    "budget": {"count": 3, "period": "7d"},
                    "local": {
                        "command": [sys.executable, "-c", RETRAIN_SCRIPT, str(workdir), str(RETRAINED_VERSION)],
                        "timeout": "2m",
                        "log_dir": str(workdir / "retrain-logs"),
                    },
                },
            }
        ],
    }


def write_demo_config(workdir: Path, port: int) -> tuple[Path, Config]:
    """Write the reference data and the config into `workdir`; return the config's path and value."""
    wine.reference(wine.train()).to_csv(workdir / "wine_reference.csv", index=False)
    path = workdir / "driftwatch.yaml"
    path.write_text(yaml.safe_dump(demo_config(workdir, port), sort_keys=False))
    return path, load_config(path)
