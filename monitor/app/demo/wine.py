"""The demo's model and data: scikit-learn's bundled wine dataset and a logistic regression.

The dataset ships inside scikit-learn, so the demo needs no download. Every stream is resampled
from it with measurement noise (`NOISE`), so the model is good but not perfect (about 92%
accurate) and its confidence varies, as a real model's does: that is what lets performance be
estimated before labels arrive. "Drifted" traffic mixes wines of different classes (ambiguous
samples near the class boundaries) and shifts some features: inputs drift, accuracy falls, and
the true class of every record is known, so the demo can send its labels late.
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
CLASSES: tuple[str, ...] = ("class_0", "class_1", "class_2")
OUTPUTS: tuple[str, ...] = ("predicted_class", "confidence", *(f"proba_{c}" for c in CLASSES))
NOISE = 0.8
"""Resampling noise, in standard deviations of each feature."""
SHIFT_SCALE = 0.5
"""The drifted phase moves the `SHIFTS` features by this share of their listed shift."""
SHIFTS: dict[str, float] = {
    "alcohol": 1.2, "flavanoids": -1.0, "color_intensity": 1.5, "proline": 0.9, "hue": -0.8,
    "total_phenols": -0.9, "od280_od315": -1.0, "malic_acid": 1.1,
}
"""The drifted phase moves these features by this many reference standard deviations."""


def load_features() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    X = data.data.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})[list(FEATURES)]
    return X, data.target.to_numpy()


def train(*, drifted: bool = False) -> Pipeline:
    """The served model (version 1), or with `drifted` the retrained one (version 2), fitted to drifted traffic."""
    rows, labels = labelled_traffic(3000, drifted=drifted, seed=6 if drifted else 5)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.05)).fit(
        pd.DataFrame(rows, columns=list(FEATURES)), labels)


def predict(model: Pipeline, rows: Sequence[Sequence[float]]) -> list[dict[str, object]]:
    """KServe-style predictions: one object per instance, keys as in the config's outputs."""
    proba = model.predict_proba(pd.DataFrame(list(rows), columns=list(FEATURES)))
    return [
        {"predicted_class": CLASSES[int(p.argmax())], "confidence": round(float(p.max()), 6),
         **{f"proba_{c}": round(float(q), 6) for c, q in zip(CLASSES, p, strict=True)}}
        for p in proba
    ]


def reference(model: Pipeline, *, drifted: bool = False) -> pd.DataFrame:
    """Held-out data like the training data (drifted for the retrained model), with the model's
    outputs and the true class (`label`): what 'normal' looks like, and how well the model does on it."""
    rows, labels = labelled_traffic(2000, drifted=drifted, seed=2 if drifted else 1)
    out = pd.DataFrame(rows, columns=list(FEATURES))
    preds = predict(model, rows.tolist())
    for name in OUTPUTS:
        out[name] = [p[name] for p in preds]
    out["label"] = labels
    return out


def traffic(n: int, *, drifted: bool, seed: int) -> np.ndarray:
    """`n` feature rows (see `labelled_traffic`)."""
    return labelled_traffic(n, drifted=drifted, seed=seed)[0]


def labelled_traffic(n: int, *, drifted: bool, seed: int) -> tuple[np.ndarray, list[str]]:
    """`n` feature rows resampled from the dataset with `NOISE`, and each row's true class.

    Drifted rows lie between two wines of different classes (30-70% of the way; the class of the
    nearer one is the truth) and have the `SHIFTS` features moved by `SHIFT_SCALE` of their shift."""
    X, y = load_features()
    rng = np.random.default_rng(seed)
    std = X.std(ddof=0).to_numpy()
    data = X.to_numpy()
    first = rng.integers(0, len(X), n)
    rows, labels = data[first].copy(), y[first].copy()
    if drifted:
        second = rng.integers(0, len(X), n)
        t = rng.uniform(0.3, 0.7, n)
        mixed = y[second] != y[first]
        rows[mixed] = (1 - t[mixed, None]) * data[first][mixed] + t[mixed, None] * data[second][mixed]
        labels[mixed] = np.where(t[mixed] < 0.5, y[first][mixed], y[second][mixed])
    rows = rows + rng.normal(0.0, NOISE, (n, len(FEATURES))) * std
    if drifted:
        for i, name in enumerate(FEATURES):
            rows[:, i] += SHIFT_SCALE * SHIFTS.get(name, 0.0) * std[i]
    return np.round(np.maximum(rows, 0.0), 4), [CLASSES[int(k)] for k in labels]  # every wine measurement is >= 0
