"""Fitting a calibration: cells from the reference, a bootstrap of each column's null score, a normal
tail fitted to it, and the CUSUM designed for the budget (steps 1-4 and 6 of the package docstring)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from monitor.core import methods
from monitor.core.methods import Kind
from monitor.drift import numeric
from monitor.drift.calibration.plan import BudgetSpec, Progress, WindowPlan
from monitor.drift.calibration.rules import METHOD_VERSION, Calibration, FeatureCalibration
from monitor.drift.calibration.scores import SCORES, Array
from monitor.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from monitor.drift.sequential import design
from monitor.drift.vectors import EmbeddingColumnProfile

MAX_CELLS = 200
MIN_ROWS_PER_CELL = 5


def _numeric_edges(p: NumericProfile) -> Array:
    """Inner cell edges: the distinct values when few, else reference quantiles (about
    MIN_ROWS_PER_CELL reference rows per cell at least, at most MAX_CELLS cells)."""
    if p.distinct is not None:
        return p.distinct.astype(np.float64)
    cells = int(min(MAX_CELLS, max(2, p.n // MIN_ROWS_PER_CELL)))
    qs = np.linspace(0.0, 1.0, cells + 1)[1:-1]
    return np.unique(numeric.quantiles_sorted(p.sorted, qs))


def fingerprint(reference: pd.DataFrame, profile: ReferenceProfile, plan: WindowPlan, budget: BudgetSpec) -> str:
    """Identity of what a calibration depends on: the monitored reference columns (values and types),
    their methods, the window plan, the budget and this module's method version."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": METHOD_VERSION, "plan": plan.__dict__, "budget": budget.__dict__}, sort_keys=True).encode())
    for name, p in profile.columns.items():
        h.update(f"|{name}|{p.spec.kind}|".encode())
        if name in reference.columns:
            h.update(pd.util.hash_pandas_object(reference[name].astype(object), index=False).to_numpy().tobytes())
    return h.hexdigest()


def calibrate(
    reference: pd.DataFrame,
    profile: ReferenceProfile,
    plan: WindowPlan,
    budget: BudgetSpec,
    progress: Progress | None = None,
) -> Calibration:
    """Calibrate every column of `profile` (built from `reference`) for `plan` and `budget`."""
    rng = np.random.default_rng(budget.seed)
    vectors = [n for n, c in profile.columns.items() if isinstance(c, EmbeddingColumnProfile)]
    if vectors:  # the config refuses a budget beside them; a notebook may still try
        raise ValueError(f"embedding column(s) {', '.join(vectors)} are decided by their test's level, not calibrated")
    names = list(profile.columns)
    total = len(names) + 1
    features: dict[str, FeatureCalibration] = {}
    for i, name in enumerate(names):
        column = profile.columns[name]
        assert not isinstance(column, EmbeddingColumnProfile)
        features[name] = _calibrate_column(column, plan, budget, rng)
        if progress is not None:
            progress(i + 1, total)
    live = [f for f in features.values() if not f.degenerate]
    n_rows = min((sum(f.ref_counts) for f in live), default=float(plan.records))
    target = budget.alarms / (plan.windows_per(budget.period) * max(1, len(live)))
    if not target < 1.0:
        raise ValueError(
            f"the budget ({budget.alarms:g} per {budget.period:g}s) allows at least one alarm per evaluated window "
            "and column: it constrains nothing; lower false_alarm_budget.alarms or lengthen its period"
        )
    cusum = design(target, plan.overlap, plan.records / (n_rows + plan.records), budget.seed)
    if progress is not None:
        progress(total, total)
    return Calibration(fingerprint(reference, profile, plan, budget), plan, budget, cusum, features)


def _calibrate_column(p: NumericProfile | CategoricalProfile, plan: WindowPlan, budget: BudgetSpec, rng: np.random.Generator) -> FeatureCalibration:
    categories: tuple[str, ...]
    kind: Kind
    if isinstance(p, NumericProfile):
        edges = _numeric_edges(p) if p.n else np.empty(0)
        counts = numeric.binned_counts(p.sorted, edges)
        kind, categories, std, min_effect = "numeric", (), p.std, budget.min_effect_numeric
    else:
        edges = np.empty(0)
        counts = np.append(p.counts, 0.0)  # the last cell holds values the reference never had
        kind, categories, std, min_effect = "categorical", tuple(map(str, p.categories)), 0.0, budget.min_effect_categorical
    statistic = methods.calibration_score(p.method, kind)  # the registry names each method's cell score
    n_valid = p.n
    base = FeatureCalibration(
        name=p.spec.name, kind=kind, statistic=statistic, edges=tuple(map(float, edges)), categories=categories,
        ref_counts=tuple(map(float, counts)), std=float(std) if n_valid else 0.0, location=0.0, scale=1.0, tail_exceedance_99=0.0,
        min_effect=float(min_effect), degenerate=True,
    )
    n = int(counts.sum())
    if n == 0:
        return base
    one_value = p.distinct is not None and p.distinct.size == 1 if isinstance(p, NumericProfile) else p.categories.size == 1
    if one_value:
        return replace(base, degenerate=False, single_value=True)
    if np.count_nonzero(counts) < 2:
        return base  # several values in one cell: no null variation to bootstrap, never an alarm
    shares = counts / n
    ref_star = rng.multinomial(n, shares, size=budget.resamples).astype(np.float64)
    win_star = rng.multinomial(plan.records, shares, size=budget.resamples).astype(np.float64)
    z = np.sort(SCORES[statistic](ref_star, win_star))
    location, scale = _fit_upper_half(z)
    if not (math.isfinite(scale) and scale > 1e-6):
        return base
    exceed = float(np.mean((z - location) / scale > stats.norm.isf(0.01)))
    return replace(base, location=location, scale=scale, tail_exceedance_99=exceed, degenerate=False)


def _fit_upper_half(z_sorted: Array) -> tuple[float, float]:
    """Normal location and scale from a quantile-quantile regression on the upper half of the sample:
    the tail is what alarms, and discrete statistics pile up in the lower half."""
    b = z_sorted.size
    q = stats.norm.ppf((np.arange(1, b + 1) - 0.5) / b)
    upper = q >= 0.0
    slope, intercept = np.polyfit(q[upper], z_sorted[upper], 1)
    return float(intercept), float(slope)
