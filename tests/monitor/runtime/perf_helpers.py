"""A binary classifier with calibrated probabilities and known ground truth, for the label and performance tests.

The true probability of class "1" is `sigmoid(2 x0 - x1)`; the model predicts exactly that
probability (it is calibrated) and class "1" above one half. The reference holds 2,000 draws with
their labels; events carry `per_event` instances each, ids `p-<i>`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from monitor.capture import CapturedEvent
from monitor.core.config import Config, load_config

NOW = 1_800_000_000.0


def truth(x: np.ndarray, concept_shift: bool = False) -> np.ndarray:
    """P(label = 1 | x); a concept shift flips the sign of x1's effect."""
    return 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] + (1.0 if concept_shift else -1.0) * x[:, 1])))


def model_proba(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] - x[:, 1])))


def write_classifier_config(tmp_path: Path, *, performance: dict[str, Any] | None = None,
                            window: dict[str, Any] | None = None, retrain: dict[str, Any] | None = None) -> Config:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (2000, 2))
    p = model_proba(x)
    ref = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "predicted": np.where(p > 0.5, "1", "0"), "proba": p,
                        "label": (rng.uniform(size=len(p)) < truth(x)).astype(int)})
    ref.to_csv(tmp_path / "clf_reference.csv", index=False)
    data = {
        "version": 1,
        "server": {"evaluation_interval": "50ms", "store": {"path": "store/driftwatch.db"}},
        "models": [{
            "name": "clf",
            "protocol": "kserve_v1",
            "features": [{"name": "x0", "type": "numeric", "source": {"index": 0}},
                         {"name": "x1", "type": "numeric", "source": {"index": 1}}],
            "outputs": [{"name": "predicted", "type": "categorical", "source": {"key": "predicted"}},
                        {"name": "proba", "type": "numeric", "source": {"key": "proba"}}],
            "reference": {"path": "clf_reference.csv"},
            "window": window or {"records": 100, "step": 50, "min_records": 20},
            "performance": {"task": "classification", "prediction": "predicted", "probabilities": {"1": "proba"},
                            "metric": "accuracy", "min_labels": 20, "label_delay": "1d", **(performance or {})},
            **({"retrain": retrain} if retrain else {}),
        }],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def draw(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """`n` inputs; `shift` moves x0 (covariate shift)."""
    x = np.random.default_rng(seed).normal(0, 1, (n, 2))
    x[:, 0] += shift
    return x


def labels_for(x: np.ndarray, seed: int, concept_shift: bool = False) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=len(x)) < truth(x, concept_shift)).astype(int)


def classifier_event(i: int, rows: np.ndarray, *, ts: float, status: int = 200) -> CapturedEvent:
    """One event holding `rows` (one instance each) and the model's predictions for them."""
    p = model_proba(rows)
    request = {"instances": [[float(a), float(b)] for a, b in rows]}
    response = {"predictions": [{"predicted": "1" if q > 0.5 else "0", "proba": float(q)} for q in p]}
    return CapturedEvent.model_validate({
        "id": f"p-{i}", "model": "clf", "timestamp": ts, "status": status, "path": "/v1/models/clf:predict",
        "request": {"body": json.dumps(request), "content_type": "application/json"},
        "response": {"body": json.dumps(response), "content_type": "application/json"},
    })


def stream(x: np.ndarray, *, first_id: int = 0, ts: float = NOW - 3600.0) -> list[CapturedEvent]:
    """One single-instance event per row, ids from `first_id`."""
    return [classifier_event(first_id + i, x[i : i + 1], ts=ts + i * 0.01) for i in range(len(x))]
