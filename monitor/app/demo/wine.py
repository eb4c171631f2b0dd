"""The demo's model and data: scikit-learn's bundled wine dataset and a logistic regression.

The dataset ships inside scikit-learn, so the demo needs no download. Traffic is resampled from it
with a little noise ("unchanged") or with some features shifted ("drifted"), so the monitor sees a
realistic stream whose ground truth we know.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES: tuple[str, ...] = (
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
    "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315", "proline",
)
OUTPUTS: tuple[str, ...] = ("predicted_class", "confidence")
SHIFTS: dict[str, float] = {
    "alcohol": 1.2, "flavanoids": -1.0, "color_intensity": 1.5, "proline": 0.9, "hue": -0.8,
    "total_phenols": -0.9, "od280_od315": -1.0, "malic_acid": 1.1,
}
"""The drifted phase moves these features by this many reference standard deviations."""


def load_features() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    X = data.data.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})[list(FEATURES)]
    return X, data.target.to_numpy()


def train() -> Pipeline:
    X, y = load_features()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


def predict(model: Pipeline, rows: Sequence[Sequence[float]]) -> list[dict[str, object]]:
    """KServe-style predictions: one object per instance, keys as in the config's outputs."""
    proba = model.predict_proba(pd.DataFrame(list(rows), columns=list(FEATURES)))
    return [
        {"predicted_class": f"class_{int(p.argmax())}", "confidence": round(float(p.max()), 6)} for p in proba
    ]


def reference(model: Pipeline) -> pd.DataFrame:
    """The training data with the model's outputs: what 'normal' looks like."""
    X, _ = load_features()
    out = X.copy()
    preds = predict(model, X.to_numpy().tolist())
    out["predicted_class"] = [p["predicted_class"] for p in preds]
    out["confidence"] = [p["confidence"] for p in preds]
    return out


def traffic(n: int, *, drifted: bool, seed: int) -> np.ndarray:
    """`n` feature rows resampled from the dataset with 5% noise; shifted when `drifted`."""
    X, _ = load_features()
    rng = np.random.default_rng(seed)
    std = X.std(ddof=0).to_numpy()
    rows = X.to_numpy()[rng.integers(0, len(X), n)] + rng.normal(0.0, 0.05, (n, len(FEATURES))) * std
    if drifted:
        for i, name in enumerate(FEATURES):
            rows[:, i] += SHIFTS.get(name, 0.0) * std[i]
    return np.round(rows, 4)
