"""Synthetic classifiers for the performance tests and benchmarks/performance.py.

A model whose probabilities are perfectly calibrated on the reference: a feature x, the model's
score p = s(x) and the label drawn with probability p. Every call draws fresh records from the
generating process, so A/A windows are new samples of the reference's population, never its rows.
Changes: `covariate_shift` moves x (calibration still holds: CBPE sees it), `concept_shift`
changes P(label | x) (the model's score no longer is the label's probability: CBPE cannot see it,
realized performance does), `label_noise` flips a share of the labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.config import PerformanceConfig
from monitor.performance.profile import LabelledRecords

CLASSES3 = ("a", "b", "c")


def binary(rng: np.random.Generator, n: int, *, covariate_shift: float = 0.0, concept_shift: float = 0.0,
           label_noise: float = 0.0) -> pd.DataFrame:
    """Columns score (P(class 1)), pred (0/1), label (0/1). concept_shift c: the label's true
    probability is s((2 - 2c)·x), the model still says s(2x): it becomes overconfident."""
    x = rng.normal(covariate_shift, 1.0, n)
    score = 1 / (1 + np.exp(-2 * x))
    truth = 1 / (1 + np.exp(-(2 - 2 * concept_shift) * x))
    label = (rng.random(n) < truth).astype(int)
    flip = rng.random(n) < label_noise
    label[flip] = 1 - label[flip]
    return pd.DataFrame({"score": score, "pred": (score > 0.5).astype(int), "label": label})


def multiclass(rng: np.random.Generator, n: int, *, covariate_shift: float = 0.0, label_noise: float = 0.0) -> pd.DataFrame:
    """Three classes from a softmax of three linear scores of two features; columns p_a, p_b, p_c,
    pred, label. covariate_shift moves both features."""
    x = rng.normal(covariate_shift, 1.0, (n, 2))
    logits = x @ np.array([[1.5, -1.0, 0.0], [0.0, 1.0, -1.5]])
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    codes = (rng.random((n, 1)) > np.cumsum(proba, axis=1)[:, :-1]).sum(axis=1)
    flip = rng.random(n) < label_noise
    codes[flip] = (codes[flip] + rng.integers(1, 3, flip.sum())) % 3
    names = np.array(CLASSES3, dtype=object)
    frame = pd.DataFrame({f"p_{c}": proba[:, j] for j, c in enumerate(CLASSES3)})
    frame["pred"] = names[proba.argmax(axis=1)]
    frame["label"] = names[codes]
    return frame


def binary_config(**overrides: object) -> PerformanceConfig:
    return PerformanceConfig.model_validate({"task": "classification", "prediction": "pred",
                                             "probabilities": {"1": "score"}, **overrides})


def multiclass_config(**overrides: object) -> PerformanceConfig:
    return PerformanceConfig.model_validate({"task": "classification", "prediction": "pred",
                                             "probabilities": {c: f"p_{c}" for c in CLASSES3}, **overrides})


def labelled(frame: pd.DataFrame, config: PerformanceConfig) -> LabelledRecords:
    """The frame's rows as the window's labelled records."""
    return LabelledRecords(frame["label"].tolist(), frame["pred"].tolist(),
                           frame[list(config.probabilities.values())].to_numpy(float))


def flag_rates(make, config: PerformanceConfig, sizes: tuple[int, ...], *, references: int, windows: int,
               reference_size: int, seed: int, **change: float) -> dict[int, dict[str, int]]:
    """Windows flagged degraded, realized and estimated, per labelled size: `references` fresh
    references, each judging `windows` fresh windows per size drawn with `change` (none: A/A)."""
    from monitor.performance.profile import PerformanceProfile

    rng = np.random.default_rng(seed)
    counts = {n: {"realized": 0, "estimated": 0, "windows": 0} for n in sizes}
    for _ in range(references):
        profile = PerformanceProfile.from_reference(make(rng, reference_size), config)
        for n in sizes:
            for _ in range(windows):
                window = make(rng, n, **change)
                result = profile.evaluate(window, labelled(window, config))
                counts[n]["realized"] += bool(result.realized_degraded)
                counts[n]["estimated"] += bool(result.estimated_degraded)
                counts[n]["windows"] += 1
    return counts
