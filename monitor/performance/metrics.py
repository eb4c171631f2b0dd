"""Realized performance metrics, vectorised over a batch of resamples.

Every metric is computed by one batched function over arrays of shape (B, n): B = 1 for a window's
realized value, B = the number of resamples for the bootstrap thresholds and the Monte Carlo band,
so the number a user sees and the null distribution it is judged against come from the same code.
Values agree with scikit-learn's (tests/performance/test_metrics.py); where scikit-learn raises or
warns, the choice made here is stated in docs/performance.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitor.core import performance_metrics

__all__ = [
    "ClassRow",
    "Realized",
    "class_key",
    "class_keys",
    "classification_batch",
    "classification_metrics",
    "complete_binary",
    "encode",
    "regression_batch",
    "regression_metrics",
]

ECE_BINS = 10
_EPS = float(np.finfo(np.float64).eps)
"""Probabilities are clipped to [eps, 1 - eps] before the log, as scikit-learn's log_loss does."""


def class_key(value: Any) -> str:
    """The one spelling of a class that labels, predictions and config keys are compared by.

    JSON, CSV and model servers disagree on whether class 1 is `1`, `1.0` or `"1"`; comparing the
    keys makes them the same class. Booleans → "true"/"false", integers and integral floats → "1",
    other floats → their shortest repr, strings unchanged. A missing value has no key (ValueError).
    """
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isnan(f):
            raise ValueError("a missing value (NaN) has no class key")
        return str(int(f)) if f.is_integer() else repr(f)
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        raise ValueError("a missing value has no class key")
    return str(value)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(float(value))


def class_keys(values: Sequence[Any] | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """`class_key` of each value (object array, "" where missing) and the mask of present values."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.ndim != 1:
        arr = np.asarray(list(values), dtype=object)
    if arr.dtype.kind == "b":
        return np.where(arr, "true", "false").astype(object), np.ones(len(arr), bool)
    if arr.dtype.kind in "iu":
        return arr.astype(str).astype(object), np.ones(len(arr), bool)
    if arr.dtype.kind == "f":
        valid = ~np.isnan(arr)
        out = np.full(len(arr), "", dtype=object)
        integral = valid & (np.mod(np.where(valid, arr, 0), 1) == 0) & (np.abs(np.where(valid, arr, 0)) < 2**62)
        out[integral] = arr[integral].astype(np.int64).astype(str)
        rest = valid & ~integral
        out[rest] = [repr(float(v)) for v in arr[rest]]
        return out, valid
    valid = np.array([not _missing(v) for v in arr], dtype=bool)
    out = np.array([class_key(v) if ok else "" for v, ok in zip(arr, valid, strict=True)], dtype=object)
    return out, valid


def encode(keys: np.ndarray, classes: list[str]) -> np.ndarray:
    """Integer codes of `keys` in `classes`, appending classes not yet listed (in sorted order)."""
    index = pd.Index(classes)
    codes = index.get_indexer(keys)
    unknown = codes < 0
    if unknown.any():
        for key in sorted(set(keys[unknown].tolist())):
            classes.append(key)
        codes = pd.Index(classes).get_indexer(keys)
    return codes.astype(np.int64)


def complete_binary(probabilities: np.ndarray) -> np.ndarray:
    """A binary model's single column (the positive class) → [negative, positive], the negative
    class's probability being the complement."""
    p = np.asarray(probabilities, dtype=float)
    p = p[:, None] if p.ndim == 1 else p
    if p.ndim != 2 or p.shape[1] != 1:
        raise ValueError("complete_binary takes exactly one probability column")
    return np.column_stack([1.0 - p[:, 0], p[:, 0]])


# -- batched kernels ---------------------------------------------------------------------------


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(B, n) codes → (B, k, k) counts indexed [batch, true, predicted]."""
    b = y.shape[0]
    flat = (np.arange(b)[:, None] * k + y) * k + pred
    return np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k).astype(float)


def per_class_from_confusion(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (zero_division=0), support and presence of each class, (B, k) each.

    Works on expected (fractional) confusion matrices too, which is how CBPE uses it."""
    tp = np.diagonal(conf, axis1=1, axis2=2)
    predicted = conf.sum(axis=1)
    support = conf.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(predicted + support > 0, 2 * tp / (predicted + support), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "present": (support > 0) | (predicted > 0)}


def _macro(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (values * present).sum(axis=1) / present.sum(axis=1)


def auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per batch row from tie-averaged ranks (n,) or (B, n); NaN without both classes."""
    n = positive.shape[-1]
    n1 = positive.sum(axis=-1).astype(float)
    n0 = n - n1
    s = (ranks * positive).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (s - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), auc, np.nan)


def rank_average(scores: np.ndarray) -> np.ndarray:
    """Ranks (1-based, ties averaged) along the last axis: scipy's rankdata, about 3x faster."""
    order = np.argsort(scores, axis=-1, kind="stable")
    s = np.take_along_axis(scores, order, axis=-1)
    m = s.shape[-1]
    idx = np.arange(m)
    new = np.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    end = np.ones(s.shape, dtype=bool)
    end[..., :-1] = new[..., 1:]
    first = np.maximum.accumulate(np.where(new, idx, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(end, idx, m - 1), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(s.shape, dtype=float)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=-1)
    return ranks


def roc_auc_batch(y: np.ndarray, scores: np.ndarray, *, ranks: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC per batch row: binary (2 probability columns: the second is the positive class) or
    one-vs-rest macro over the classes that have both positives and negatives in the row.

    `ranks` (ranks of `scores` along the records, per class column) may be given when the same
    scores are judged against many label sets, as the Monte Carlo band does."""
    k = scores.shape[-1]
    columns = [1] if k == 2 else list(range(k))
    per_class = []
    for j in columns:
        r = ranks[..., j] if ranks is not None else rank_average(np.ascontiguousarray(scores[..., j]))
        per_class.append(auc_from_ranks(r, y == j))
    if k == 2:
        return per_class[0]
    stacked = np.stack(per_class, axis=-1)
    defined = ~np.isnan(stacked)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, stacked, 0.0).sum(axis=-1) / defined.sum(axis=-1)


def _pick(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """proba[b, i, codes[b, i]], 0 where the code is a class without a probability column."""
    k = proba.shape[-1]
    inside = codes < k
    picked = np.take_along_axis(proba, np.where(inside, codes, 0)[..., None], axis=-1)[..., 0]
    return np.where(inside, picked, 0.0)


def classification_batch(names: Sequence[str], y: np.ndarray, pred: np.ndarray, n_classes: int,
                         proba: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The named metrics for each batch row. y, pred: (B, n) codes; proba: (B, n, K) with the K
    probability classes first in the code order (codes ≥ K are classes without a column)."""
    out: dict[str, np.ndarray] = {}
    n = y.shape[1]
    if "accuracy" in names:
        with np.errstate(invalid="ignore"):
            out["accuracy"] = (y == pred).sum(axis=1) / n if n else np.full(y.shape[0], np.nan)
    if {"precision_macro", "recall_macro", "f1_macro"} & set(names):
        pc = per_class_from_confusion(_confusion(y, pred, n_classes))
        for m in ("precision", "recall", "f1"):
            if f"{m}_macro" in names:
                out[f"{m}_macro"] = _macro(pc[m], pc["present"])
    if proba is not None:
        if "roc_auc" in names:
            out["roc_auc"] = roc_auc_batch(y, proba)
        if "log_loss" in names:
            p = np.clip(_pick(proba, y), _EPS, 1 - _EPS)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["log_loss"] = -np.log(p).sum(axis=1) / n
        if "calibration_error" in names:
            out["calibration_error"] = _ece(y, pred, proba)
    return out


def _ece(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Σ_bins |Σ correct − Σ confidence| / n over 10 equal-width bins of the predicted class's probability."""
    b, n = y.shape
    if n == 0:
        return np.full(b, np.nan)
    conf = _pick(proba, pred)
    bins = np.clip((conf * ECE_BINS).astype(np.int64), 0, ECE_BINS - 1) + np.arange(b)[:, None] * ECE_BINS
    correct = np.bincount(bins.ravel(), weights=(y == pred).ravel().astype(float), minlength=b * ECE_BINS)
    confidence = np.bincount(bins.ravel(), weights=conf.ravel(), minlength=b * ECE_BINS)
    return np.abs(correct - confidence).reshape(b, ECE_BINS).sum(axis=1) / n


def regression_batch(names: Sequence[str], y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, RMSE, MAPE (labels of 0 excluded), R² (scikit-learn's force_finite) per batch row."""
    err = pred - y
    n = y.shape[1]
    if n == 0:
        return {m: np.full(y.shape[0], np.nan) for m in names}
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if "mae" in names:
            out["mae"] = np.abs(err).sum(axis=1) / n
        if "rmse" in names:
            out["rmse"] = np.sqrt((err**2).sum(axis=1) / n)
        if "mape" in names:
            nonzero = y != 0
            ratio = np.where(nonzero, np.abs(err) / np.where(nonzero, np.abs(y), 1.0), 0.0)
            out["mape"] = ratio.sum(axis=1) / nonzero.sum(axis=1)
        if "r2" in names:
            ss_res = (err**2).sum(axis=1)
            ss_tot = ((y - y.sum(axis=1, keepdims=True) / n) ** 2).sum(axis=1)
            r2 = 1 - ss_res / ss_tot
            out["r2"] = np.where(ss_tot > 0, r2, np.where(ss_res == 0, 1.0, 0.0))
    return out


# -- one window ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassRow:
    """One class of the per-class table (support: labelled records of that class)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Realized:
    """Realized metrics of one set of labelled records.

    `n_excluded` counts records without a label or a prediction (left out of every metric);
    probability metrics also leave out records with a missing probability."""

    values: dict[str, float]
    per_class: tuple[ClassRow, ...]
    n_used: int
    n_excluded: int


def classification_metrics(labels: Sequence[Any] | np.ndarray, predictions: Sequence[Any] | np.ndarray,
                           probabilities: np.ndarray | None = None,
                           probability_classes: Sequence[Any] | None = None) -> Realized:
    """Accuracy, precision/recall/F1 per class and macro, and with probabilities ROC AUC, log loss and
    expected calibration error.

    `probabilities` has one column per entry of `probability_classes` (at least two: see
    `complete_binary` for a binary model that gives only the positive class). Macro averages run over
    the classes present in the labels or the predictions, as scikit-learn's do.
    """
    y_keys, y_ok = class_keys(labels)
    p_keys, p_ok = class_keys(predictions)
    ok = y_ok & p_ok
    classes: list[str] = [class_key(c) for c in probability_classes] if probability_classes is not None else []
    k = len(classes)
    proba = None
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=float)
        if proba.ndim != 2 or proba.shape[1] != k or k < 2:
            raise ValueError(f"probabilities must have one column per class of {classes} (at least two)")
    y = encode(y_keys[ok], classes)
    pred = encode(p_keys[ok], classes)
    names = performance_metrics.names_for("classification", probabilities=proba is not None)
    values = {name: float(v[0]) for name, v in
              classification_batch([m for m in names if not performance_metrics.METRICS[m].needs_probabilities],
                                   y[None], pred[None], len(classes)).items()}
    if proba is not None:
        proba = proba[ok]
        finite = np.isfinite(proba).all(axis=1)
        probability_metrics = [m for m in names if performance_metrics.METRICS[m].needs_probabilities]
        got = classification_batch(probability_metrics, y[finite][None], pred[finite][None], len(classes), proba[finite][None])
        values.update({name: float(v[0]) for name, v in got.items()})
    pc = per_class_from_confusion(_confusion(y[None], pred[None], len(classes)))
    rows = tuple(ClassRow(c, float(pc["precision"][0, j]), float(pc["recall"][0, j]), float(pc["f1"][0, j]),
                          int(pc["support"][0, j]))
                 for j, c in enumerate(classes) if pc["present"][0, j] or j < k)
    return Realized({m: values[m] for m in names}, rows, int(ok.sum()), int((~ok).sum()))


def _floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(list(values) if not isinstance(values, np.ndarray) else values, dtype=object),
                         errors="coerce").to_numpy(dtype=float)


def regression_metrics(labels: Sequence[Any] | np.ndarray, predictions: Sequence[Any] | np.ndarray) -> Realized:
    """MAE, RMSE, MAPE (labels of 0 left out of MAPE only) and R² of the records with both values."""
    y = _floats(labels)
    p = _floats(predictions)
    ok = np.isfinite(y) & np.isfinite(p)
    names = performance_metrics.names_for("regression")
    got = regression_batch(names, y[ok][None], p[ok][None])
    return Realized({m: float(got[m][0]) for m in names}, (), int(ok.sum()), int((~ok).sum()))
