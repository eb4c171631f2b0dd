"""Evaluating a window against a reference profile, and the notebook entry point `detect`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from monitor.core import methods
from monitor.drift import distance, numeric
from monitor.drift.implementations import ON_COUNTS, ON_SAMPLES, ON_VECTORS, Outcome, pooled_range
from monitor.drift.multiple import benjamini_hochberg
from monitor.drift.profile import (
    SUMMARY_QUANTILES,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)
from monitor.drift.result import DatasetResult, DriftResult, FeatureResult, QualityResult
from monitor.drift.spec import (
    EFFECT_CATEGORICAL,
    EFFECT_EMBEDDING,
    EFFECT_NUMERIC,
    ColumnSpec,
    EngineSettings,
    Kind,
    specs_from_config,
)
from monitor.drift.values import categorical_values, is_time_dtype, looks_like_datetimes, numeric_values
from monitor.drift.vectors import EmbeddingColumnProfile, looks_like_vectors, vector_values

NAN = math.nan
TOP_CATEGORIES = 10


def evaluate(profile: ReferenceProfile, current: pd.DataFrame) -> DriftResult:
    """Drift of one window; costs the window's work only (the reference side is in `profile`).

    A monitored column absent from `current` is evaluated as all-missing.
    """
    n_rows = len(current)
    results = {}
    # Values near the float limits (1e308) overflow to inf/NaN scores, which mean "no verdict": no warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for name, col_profile in profile.columns.items():
            column = _column(current, name)
            if isinstance(col_profile, NumericProfile):
                results[name] = _evaluate_numeric(col_profile, column)
            elif isinstance(col_profile, EmbeddingColumnProfile):
                results[name] = _evaluate_embedding(col_profile, column, profile.settings.level)
            else:
                results[name] = _evaluate_categorical(col_profile, column)
    results = _decide(results, profile.settings)
    features = [r for r in results.values() if r.role == "feature"]
    n_drifted = sum(r.drifted for r in features)
    share = n_drifted / len(features) if features else 0.0
    dataset = DatasetResult(
        drift_share=share,
        drifted=bool(features) and share >= profile.settings.dataset_drift_share,
        n_drifted=n_drifted,
        n_features=len(features),
        n_tested=sum(f.untested is None for f in features),
        n_reference=profile.n_rows,
        n_current=n_rows,
        threshold=profile.settings.dataset_drift_share,
    )
    return DriftResult(dataset=dataset, features=results)


def detect(
    reference: pd.DataFrame, current: pd.DataFrame, config: Any = None, model: str | None = None
) -> DriftResult:
    """Drift between two DataFrames, for notebooks and the CLI.

    Without a config every column present in both frames is a feature, numeric if its reference
    dtype is numeric (booleans excepted) or date/time (including text that is all ISO 8601 date/times,
    as a CSV holds them), embedding if it holds vectors of one length (lists, or JSON lists in a CSV),
    categorical otherwise. With a `monitor.core.config.Config`
    (`model` names the model, optional when it has one) or a `ModelConfig`, its columns, methods and
    thresholds are used.
    """
    if config is None:
        reference, current = _str_columns(reference), _str_columns(current)
        specs, settings = infer_specs(reference, current), EngineSettings()
    else:
        specs, settings = specs_from_config(config, model)
    return evaluate(build_profile(reference, specs, settings), current)


def infer_specs(reference: pd.DataFrame, current: pd.DataFrame) -> list[ColumnSpec]:
    """A feature per column of both frames, typed by the reference (see `detect`)."""
    common = [c for c in reference.columns if c in set(current.columns)]
    if not common:
        raise ValueError("the reference and current data have no column in common")
    specs = []
    for c in common:
        column = _column(reference, c)
        if looks_like_vectors(column):  # a Parquet list column, or JSON lists in a CSV
            specs.append(ColumnSpec(name=str(c), kind="embedding"))
        elif looks_like_datetimes(column):  # a CSV's timestamps: one category each would always "drift"
            specs.append(ColumnSpec(name=str(c), kind="numeric", datetime=True))
        else:
            specs.append(ColumnSpec(name=str(c), kind=_inferred_kind(column)))
    return specs


def _str_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Column labels as strings (a frame built from a bare array is labelled 0, 1, ...)."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.rename(columns=str)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The window's column; absent means all missing, and of duplicated labels the first one counts."""
    if name not in frame.columns:
        return pd.Series([None] * len(frame), dtype=object)
    column = frame[name]
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def _inferred_kind(column: pd.Series) -> Kind:
    """Numbers, datetimes and durations are numeric; booleans, periods, intervals and the rest are categories."""
    dtype = column.dtype
    if is_time_dtype(dtype):
        return "numeric"
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    return "numeric"


# -- numeric ---------------------------------------------------------------------------------------


def _evaluate_numeric(p: NumericProfile, column: pd.Series) -> FeatureResult:
    vals = numeric_values(column, p.spec.datetime)
    cur = vals.finite
    quality = _quality(vals.n, vals.missing, vals.infinite + _outside(cur, p.lo, p.hi), 0, vals.wrong_type)
    untested = _untested(p.n, cur.size)
    type_changed = _type_changed(vals.n - vals.missing, vals.wrong_type)
    effect = (EFFECT_NUMERIC, NAN)
    if untested is None:
        outcome = _numeric_outcome(p, cur)
        if math.isnan(outcome.score):
            untested = OVERFLOW
        else:
            effect = _numeric_effect(p, cur)
    else:
        outcome = _no_outcome(p.method)
    details: dict[str, Any] = {
        "reference": _summary(p.sorted, p.quantiles, p.mean, p.std),
        "current": _summary(cur, numeric.quantiles_sorted(cur, SUMMARY_QUANTILES), *_mean_std(cur)),
    }
    if type_changed and p.n:
        details["type_changed"] = True
        untested = None
    return _result(p.spec, p.threshold, outcome, p.n, int(cur.size), quality, details, untested, effect)


def _numeric_effect(p: NumericProfile, cur: np.ndarray) -> tuple[str, float]:
    """How large the shift is, whatever decided it: total variation of the per-value shares for a
    column compared as categories, normed W1 otherwise."""
    if p.method not in ON_SAMPLES and p.distinct is not None and p.distinct_counts is not None:
        return EFFECT_CATEGORICAL, distance.total_variation(*_align_values(p.distinct, p.distinct_counts, cur))
    if not math.isfinite(p.std):
        return EFFECT_NUMERIC, NAN
    normed = numeric.wasserstein_normed(p.sorted, p.prefix, p.mean, p.std, cur)
    return EFFECT_NUMERIC, normed if math.isfinite(normed) else NAN


def _type_changed(n_present: int, n_wrong: int) -> bool:
    """Most of the window's non-missing values are of the wrong type (numbers became text, values
    became lists): the loudest drift there is, flagged whatever the method would say of the rest."""
    return n_wrong > 0 and 2 * n_wrong > n_present


def _outside(cur: np.ndarray, lo: float | None, hi: float | None) -> int:
    """Values of a sorted sample outside [lo, hi], each counted once (all of them when lo > hi)."""
    start = int(np.searchsorted(cur, lo, "left")) if lo is not None else 0
    stop = int(np.searchsorted(cur, hi, "right")) if hi is not None else cur.size
    return cur.size - max(0, stop - start)


NO_REFERENCE = "the reference has no usable value (all missing or of the wrong type)"
NO_WINDOW = "the window has no usable value (empty, all missing or of the wrong type)"
OVERFLOW = "values near the float limits overflow the method's arithmetic"


def _untested(n_ref: int, n_cur: int) -> str | None:
    """Why a column gets no verdict, or None when both sides have values to compare."""
    if n_ref == 0:
        return NO_REFERENCE
    return NO_WINDOW if n_cur == 0 else None


def _no_outcome(method: str) -> Outcome:
    """The outcome of an untested column: NaN score, and a NaN p-value for a test."""
    return Outcome(method, NAN, None, NAN if methods.get(method).yields == "p_value" else None)


def _numeric_outcome(p: NumericProfile, cur: np.ndarray) -> Outcome:
    """The method's own computation on samples, else its count form on per-value or Sturges bins."""
    method, ref = p.method, p.sorted
    if method in ON_SAMPLES:
        return ON_SAMPLES[method](p, cur)
    if p.distinct is not None and p.distinct_counts is not None:  # few distinct values: compare as categories
        ref_counts, cur_counts = _align_values(p.distinct, p.distinct_counts, cur)
    elif not math.isfinite(pooled_range(p, cur)):
        return Outcome(method, NAN)  # Sturges bins over an overflowing range: no verdict (OVERFLOW)
    else:  # Evidently's binning: Sturges bins over the pooled range
        edges = numeric.sturges_edges(min(ref[0], cur[0]), max(ref[-1], cur[-1]), ref.size + cur.size)
        ref_counts, cur_counts = numeric.histogram_sorted(ref, edges), numeric.histogram_sorted(cur, edges)
    return ON_COUNTS[method](ref_counts, cur_counts)


def _align_values(ref_values: np.ndarray, ref_counts: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window counts over the union of their distinct values (window sorted)."""
    cur_values, cur_counts = numeric.distinct_sorted(cur)
    union = np.union1d(ref_values, cur_values)
    r = np.zeros(union.size)
    c = np.zeros(union.size)
    r[np.searchsorted(union, ref_values)] = ref_counts
    c[np.searchsorted(union, cur_values)] = cur_counts
    return r, c


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    return (float(x.mean()), float(x.std())) if x.size else (NAN, NAN)


def _summary(sample: np.ndarray, quantiles: np.ndarray, mean: float, std: float) -> dict[str, Any]:
    return {
        "quantiles": {str(int(q * 100)): float(v) for q, v in zip(SUMMARY_QUANTILES, quantiles, strict=True)},
        "mean": mean,
        "std": std,
        "min": float(sample[0]) if sample.size else NAN,
        "max": float(sample[-1]) if sample.size else NAN,
    }


# -- categorical -----------------------------------------------------------------------------------


def _evaluate_categorical(p: CategoricalProfile, column: pd.Series) -> FeatureResult:
    vals = categorical_values(column)
    idx = p.index.get_indexer(vals.keys) if vals.keys.size else np.empty(0, dtype=np.int64)
    known = idx >= 0
    counts = np.zeros(p.categories.size)
    counts[idx[known]] = vals.counts[known]
    new = pd.Series(vals.counts[~known], index=pd.Index(vals.keys[~known], dtype=object), dtype=np.float64)
    new = new.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    n_new = int(new.sum())
    quality = _quality(vals.n, vals.missing, 0, n_new, vals.wrong_type)
    ref_counts = np.concatenate([p.counts, np.zeros(new.size)])
    cur_counts = np.concatenate([counts, new.to_numpy(dtype=np.float64)])
    n_cur = vals.n_valid
    untested = _untested(p.n, n_cur)
    effect = (EFFECT_CATEGORICAL, NAN)
    if untested is not None:
        outcome = _no_outcome(p.method)
    else:
        outcome = ON_COUNTS[p.method](ref_counts, cur_counts)
        effect = (EFFECT_CATEGORICAL, distance.total_variation(ref_counts, cur_counts))
    labels = [*p.categories.tolist(), *new.index.tolist()]
    details: dict[str, Any] = {"categories": _top_categories(labels, ref_counts, cur_counts), "new_categories": int(new.size)}
    if _type_changed(vals.n - vals.missing, vals.wrong_type) and p.n:
        details["type_changed"] = True
        untested = None
    return _result(p.spec, p.threshold, outcome, p.n, n_cur, quality, details, untested, effect)


def _top_categories(labels: Sequence[str], ref: np.ndarray, cur: np.ndarray) -> list[dict[str, Any]]:
    r = ref / ref.sum() if ref.sum() else ref
    c = cur / cur.sum() if cur.sum() else cur
    order = sorted(range(len(labels)), key=lambda i: (-max(r[i], c[i]), labels[i]))[:TOP_CATEGORIES]
    return [{"value": labels[i], "reference": float(r[i]), "current": float(c[i])} for i in order]


# -- embedding -------------------------------------------------------------------------------------


def _evaluate_embedding(p: EmbeddingColumnProfile, column: pd.Series, level: float) -> FeatureResult:
    """The column's vectors against the prepared reference (monitor.drift.vectors); the test's p-value
    joins the window's multiple-testing correction like any test's."""
    vals = vector_values(column, p.dimensions)
    quality = _quality(vals.n, vals.missing, 0, 0, vals.wrong_type)
    n_cur = int(vals.matrix.shape[0])
    untested = _untested(p.n, n_cur)
    details: dict[str, Any] = {"dimensions": p.dimensions}
    if untested is None:
        run = ON_VECTORS[p.method](p, vals.matrix, level)
        untested = run.untested
        outcome = Outcome(p.method, run.p_value, None, run.p_value) if untested is None else _no_outcome(p.method)
        details.update(run.details)
        effect = (EFFECT_EMBEDDING, run.effect)
    else:
        outcome, effect = _no_outcome(p.method), (EFFECT_EMBEDDING, NAN)
    if _type_changed(vals.n - vals.missing, vals.wrong_type) and p.n:
        details["type_changed"] = True
        untested = None
    return _result(p.spec, p.threshold, outcome, p.n, n_cur, quality, details, untested, effect)


# -- shared ----------------------------------------------------------------------------------------


def _quality(n: int, missing: int, out_of_range: int, new: int, wrong: int) -> QualityResult:
    if n == 0:
        return QualityResult(NAN, NAN, NAN, NAN, 0)
    return QualityResult(missing / n, out_of_range / n, new / n, wrong / n, n)


def _result(
    spec: ColumnSpec,
    threshold: float,
    outcome: Outcome,
    n_ref: int,
    n_cur: int,
    quality: QualityResult,
    details: dict[str, Any],
    untested: str | None,
    effect: tuple[str, float],
) -> FeatureResult:
    p_value = None if outcome.p_value is None or math.isnan(outcome.p_value) else outcome.p_value
    return FeatureResult(
        name=spec.name,
        kind=spec.kind,
        role=spec.role,
        method=outcome.method,
        score=outcome.score,
        p_value=p_value,
        threshold=threshold,
        drifted=False,
        n_reference=n_ref,
        n_current=n_cur,
        quality=quality,
        details=details,
        adjusted_p_value=p_value,
        statistic=outcome.statistic,
        untested=untested,
        effect_metric=effect[0],
        effect_size=effect[1],
    )


def _decide(results: dict[str, FeatureResult], settings: EngineSettings) -> dict[str, FeatureResult]:
    """BH across the window's test columns (features and outputs alike), then each column's verdict:
    in driftwatch mode a test flags only a shift of at least the minimum effect size."""
    tested = {name: r.p_value for name, r in results.items() if r.is_test and r.p_value is not None}
    if settings.multiple_testing == "bh" and tested:
        adjusted = benjamini_hochberg(list(tested.values()))
        for name, adj in zip(tested, adjusted, strict=True):
            results[name] = replace(results[name], adjusted_p_value=float(adj))
    decided = {}
    for name, r in results.items():
        if r.details.get("type_changed"):
            drifted = True
        elif methods.get(r.method).direction == "low":  # a p-value: the BH-adjusted one decides
            drifted = r.adjusted_p_value is not None and r.adjusted_p_value < r.threshold
            if settings.gated:
                floor = settings.min_effect(r.effect_metric)
                drifted = drifted and r.effect_size >= floor
                r = replace(r, details={**r.details, "min_effect": floor})
        else:
            drifted = not math.isnan(r.score) and r.score >= r.threshold
        decided[name] = replace(r, drifted=bool(drifted))
    return decided
