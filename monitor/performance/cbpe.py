"""Confidence-Based Performance Estimation (CBPE): a classifier's performance before labels arrive.

As NannyML's CBPE: calibrate each class's probability on the labelled reference with isotonic
regression (binary: the positive class, the negative being its complement; multiclass: one-vs-rest,
then rows normalised to sum 1). If calibration holds in the window, the calibrated probability of a
class is the chance that the label is that class, so the expected confusion matrix is
E[C[true j, predicted k]] = Σ_i 1[pred_i = k] · p̂_ij, and accuracy, precision, recall and F1 follow
from it; ROC AUC from the expected ROC curve (records sorted by the model's own score, expected true
positives = cumulative calibrated probability). The band is Monte Carlo: labels drawn from the
calibrated probabilities, the realized metric of each draw — the distribution of what the labels
will reveal if calibration holds. See docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from monitor.performance.metrics import (
    _pick,
    classification_batch,
    per_class_from_confusion,
    rank_average,
    roc_auc_batch,
)

__all__ = ["BAND_LEVEL", "CBPE", "ESTIMABLE", "MC_DRAWS", "IsotonicCalibrator"]

ESTIMABLE = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
BAND_LEVEL = 0.95
"""Central probability of the band around each estimate."""
MC_DRAWS = 500
"""Label draws behind the band: the 2.5% quantile of 500 draws moves by about ±0.3 of a draw's
standard deviation, small beside the band's own width."""
_CHUNK = 4_000_000


@dataclass(frozen=True)
class IsotonicCalibrator:
    """A non-decreasing step-and-ramp map from score to probability (scikit-learn's IsotonicRegression
    with out_of_bounds="clip": linear between knots, constant beyond them)."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray, outcomes: np.ndarray) -> IsotonicCalibrator:
        """Pool-adjacent-violators on the outcomes (0/1) ordered by score; tied scores pooled first."""
        scores = np.asarray(scores, dtype=float)
        outcomes = np.asarray(outcomes, dtype=float)
        x, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=outcomes, minlength=len(x)) / counts
        fitted = isotonic_regression(means, weights=counts.astype(float), increasing=True).x
        return cls(x, np.clip(fitted, 0.0, 1.0))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)


def _expected_auc(scores: np.ndarray, calibrated: np.ndarray) -> np.ndarray:
    """NannyML's estimate_roc_auc per batch row: sort by the model's score, descending; expected true
    positives = cumulative calibrated probability, false positives = the rest; trapezoid area."""
    order = np.argsort(-scores, axis=-1, kind="stable")
    c = np.take_along_axis(calibrated, order, axis=-1)
    tps = np.cumsum(c, axis=-1)
    fps = np.arange(1, c.shape[-1] + 1) - tps
    zero = np.zeros((*c.shape[:-1], 1))
    tps = np.concatenate([zero, tps], axis=-1)
    fps = np.concatenate([zero, fps], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tps / tps[..., -1:]
        fpr = fps / fps[..., -1:]
    return np.trapezoid(tpr, fpr, axis=-1)


@dataclass(frozen=True)
class CBPE:
    """Calibrators fitted on the reference; `n_classes` counts the classes with a probability column
    (codes 0..K-1 in the profile's class order; codes ≥ K are classes the model gives no probability)."""

    calibrators: tuple[IsotonicCalibrator, ...]
    n_classes: int

    @classmethod
    def fit(cls, y: np.ndarray, proba: np.ndarray) -> CBPE:
        """y: the reference's label codes; proba: (n, K) the model's probabilities."""
        k = proba.shape[1]
        if k == 2:
            return cls((IsotonicCalibrator.fit(proba[:, 1], y == 1),), 2)
        return cls(tuple(IsotonicCalibrator.fit(proba[:, j], y == j) for j in range(k)), k)

    def calibrate(self, proba: np.ndarray) -> np.ndarray:
        """(..., K) model probabilities → calibrated probabilities summing to 1 in each row."""
        if self.n_classes == 2:
            p = self.calibrators[0](proba[..., 1])
            return np.stack([1.0 - p, p], axis=-1)
        cal = np.stack([c(proba[..., j]) for j, c in enumerate(self.calibrators)], axis=-1)
        total = cal.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, cal / total, 1.0 / self.n_classes)

    def estimate_batch(self, names: Sequence[str], pred: np.ndarray, scores: np.ndarray, calibrated: np.ndarray,
                       n_codes: int) -> dict[str, np.ndarray]:
        """Estimated metrics per batch row. pred: (B, n) codes; scores, calibrated: (B, n, K)."""
        out: dict[str, np.ndarray] = {}
        b, n = pred.shape
        if "accuracy" in names:
            with np.errstate(invalid="ignore", divide="ignore"):
                out["accuracy"] = _pick(calibrated, pred).sum(axis=1) / n
        if {"precision_macro", "recall_macro", "f1_macro"} & set(names):
            onehot = np.zeros((b, n, n_codes))
            np.put_along_axis(onehot, pred[..., None], 1.0, axis=-1)
            padded = np.zeros((b, n, n_codes))
            padded[..., : self.n_classes] = calibrated
            pc = per_class_from_confusion(np.einsum("bnj,bnk->bjk", padded, onehot))
            present = pc["present"]
            with np.errstate(invalid="ignore", divide="ignore"):
                for m in ("precision", "recall", "f1"):
                    if f"{m}_macro" in names:
                        out[f"{m}_macro"] = (pc[m] * present).sum(axis=1) / present.sum(axis=1)
        if "roc_auc" in names:
            if self.n_classes == 2:
                out["roc_auc"] = _expected_auc(scores[..., 1], calibrated[..., 1])
            else:
                out["roc_auc"] = np.mean([_expected_auc(scores[..., j], calibrated[..., j])
                                          for j in range(self.n_classes)], axis=0)
        return out

    def estimate(self, pred: np.ndarray, scores: np.ndarray, n_codes: int) -> dict[str, float]:
        """Every estimable metric of one window (pred: (n,) codes; scores: (n, K) model probabilities)."""
        got = self.estimate_batch(ESTIMABLE, pred[None], scores[None], self.calibrate(scores)[None], n_codes)
        return {m: float(got[m][0]) for m in ESTIMABLE}

    def draws(self, name: str, pred: np.ndarray, scores: np.ndarray, n_codes: int, *, n_draws: int = MC_DRAWS,
              seed: int | Sequence[int] = 0) -> np.ndarray:
        """The realized `name` under `n_draws` label sets drawn from the calibrated probabilities."""
        n = len(pred)
        if n == 0:
            return np.full(n_draws, np.nan)
        cum = np.cumsum(self.calibrate(scores), axis=1)
        rng = np.random.default_rng(seed)
        ranks = rank_average(np.ascontiguousarray(scores.T)).T[None] if name == "roc_auc" else None
        out = []
        step = max(1, _CHUNK // (n * self.n_classes))
        for start in range(0, n_draws, step):
            d = min(step, n_draws - start)
            u = rng.random((d, n, 1))
            y = np.minimum((u > cum[None, :, :-1]).sum(axis=-1), self.n_classes - 1)
            if name == "roc_auc":
                out.append(roc_auc_batch(y, scores[None], ranks=ranks))
            else:
                out.append(classification_batch([name], y, np.broadcast_to(pred, (d, n)), n_codes)[name])
        return np.concatenate(out)

    def band(self, name: str, pred: np.ndarray, scores: np.ndarray, n_codes: int, *,
             seed: int | Sequence[int] = 0) -> tuple[float, float]:
        """The central BAND_LEVEL interval of the Monte Carlo draws of the realized `name`."""
        values = self.draws(name, pred, scores, n_codes, seed=seed)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            return (float("nan"), float("nan"))
        tail = (1 - BAND_LEVEL) / 2
        lo, hi = np.quantile(values, [tail, 1 - tail])
        return (float(lo), float(hi))
