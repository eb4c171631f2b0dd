"""Calibrated alarms: decision rules derived from a false-alarm budget and the reference itself.

Fixed thresholds (p < 0.05, W1/std >= 0.1) alarm at a rate that depends on window size, feature
count and evaluation frequency. Here the user states what they can afford ("1 false alert per 30
days") and each column gets a rule meeting it. The method (docs/calibration.md has the details and
the guarantee):

1. Cells. Each column becomes counts over fixed cells taken from the reference: numeric columns over
   reference-quantile cells (or their distinct values when few), categorical columns over the
   reference's categories plus one cell for values never seen in it.
2. Per-window score. Numeric: two-sample Kolmogorov-Smirnov on the cells; categorical: two-sample
   chi-square. Their asymptotic p-values are turned into z = Phi^-1(1 - p), which is N(0, 1) for
   a continuous statistic under no change. The far tail therefore comes from theory, not from a few
   hundred resamples.
3. Bootstrap. `resamples` times, a pseudo-reference of n rows and a window of m rows are drawn from
   the reference's cell shares (the two-sample null, seeded), giving the statistic's real null
   distribution (ties, discreteness, sparse categories, the chi-square approximation). A normal
   location/scale is fitted to its upper half (a quantile-quantile regression), and each window's
   standardized score is u = (z - location) / scale. The fit's tail is checked (`tail_exceedance_99`).
4. Sequential control. A CUSUM per column on u with a decision interval chosen by simulation for the
   budget's alarm rate, accounting for window overlap and the shared reference (sequential.py). The
   budget is split evenly over the model's columns (a union bound across features).
5. Practical-size gate. A column is drifted only while its CUSUM is in alarm AND its effect size
   reaches `min_effect_*` (normed Wasserstein for numeric, total variation for categorical).
6. Single-valued reference columns (one category, or a constant number) have no null variation to
   bootstrap. A window is then judged by Fisher's exact test on the k window values that differ from
   the reference's value: with none among the n reference rows, p = C(m, k) / C(n + m, k); the column
   alarms when p <= the per-window false-alarm rate of the budget (and the gate passes).

Pure numpy/scipy/pandas, no I/O: the caller loads the reference and stores the JSON form.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special, stats

from monitor.drift import numeric
from monitor.drift.distance import total_variation
from monitor.drift.engine import evaluate
from monitor.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from monitor.drift.result import DatasetResult, DriftResult, FeatureResult, json_safe
from monitor.drift.sequential import CusumDesign, cusum_step, design
from monitor.drift.values import categorical_values, numeric_values

__all__ = [
    "BudgetSpec",
    "CalibratedDetector",
    "Calibration",
    "FeatureCalibration",
    "WindowPlan",
    "calibrate",
    "calibrated_detector",
    "detectable_shift",
    "detection_probability",
    "fingerprint",
    "plan_from_config",
    "shifted_shares",
]

METHOD_VERSION = "2"  # 2: single-valued reference columns are calibrated (step 6)
MAX_CELLS = 200
MIN_ROWS_PER_CELL = 5
Z_FLOOR, Z_CEIL = -8.0, 37.0
Array = NDArray[np.float64]
Progress = Callable[[int, int], None]


# -- what is calibrated for ------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowPlan:
    """A model's windows as calibration sees them: rows per window, new rows per evaluation, and
    seconds between evaluations."""

    records: int
    step: int
    interval: float

    def __post_init__(self) -> None:
        if self.records < 1 or self.step < 1 or not self.interval > 0:
            raise ValueError(f"window plan needs records >= 1, step >= 1, interval > 0; got {self}")

    @property
    def overlap(self) -> int:
        """Evaluations a record stays in the window (1: no overlap)."""
        return max(1, round(self.records / self.step))

    def windows_per(self, period: float) -> float:
        return period / self.interval


@dataclass(frozen=True)
class BudgetSpec:
    """`alarms` false alerts per `period` seconds for a model, and the practical-size gate."""

    alarms: float = 1.0
    period: float = 30 * 86400.0
    min_effect_numeric: float = 0.1
    min_effect_categorical: float = 0.05
    resamples: int = 500
    seed: int = 0

    @classmethod
    def from_config(cls, budget: Any) -> BudgetSpec:
        """From a `monitor.config.FalseAlarmBudget` (duck-typed: this package imports no config)."""
        return cls(
            alarms=float(budget.alarms),
            period=float(budget.period),
            min_effect_numeric=float(budget.min_effect_numeric),
            min_effect_categorical=float(budget.min_effect_categorical),
            resamples=int(budget.resamples),
            seed=int(budget.seed),
        )


def plan_from_config(window: Any, budget: Any) -> WindowPlan:
    """The window plan of a `WindowConfig` and `FalseAlarmBudget`.

    A count window of `records` rows evaluated every `step` rows needs the traffic rate to know how
    often that is (`expected_records_per_second`), unless `step_duration` fixes the interval; a
    time-only window needs the rate to know its size. Raises ValueError naming the missing setting.
    """
    rate = getattr(budget, "expected_records_per_second", None)
    need = "set false_alarm_budget.expected_records_per_second (the model's typical traffic)"
    if window.records is not None:
        records = int(window.records)
        if window.duration is not None and rate is not None:
            records = max(1, min(records, round(rate * window.duration)))
    elif rate is not None:
        records = max(1, round(rate * window.duration))
    else:
        raise ValueError(f"a time-only window's size depends on traffic: {need}")
    if window.step_duration is not None and window.step is None:
        interval = float(window.step_duration)
        if rate is None:
            raise ValueError(f"windows evaluated every {interval:g}s overlap by an amount that depends on traffic: {need}")
        step = max(1, min(records, round(rate * interval)))
    else:
        step = min(records, int(window.effective_step))
        if window.step_duration is not None:
            interval = float(window.step_duration)
        elif rate is not None:
            interval = step / rate
        else:
            raise ValueError(f"windows evaluated every {step} records: how often that happens depends on traffic; "
                             f"{need} or window.step_duration")
    return WindowPlan(records=records, step=step, interval=interval)


# -- cells and per-window scores -------------------------------------------------------------------


def _numeric_edges(p: NumericProfile) -> Array:
    """Inner cell edges: the distinct values when few, else reference quantiles (about
    MIN_ROWS_PER_CELL reference rows per cell at least, at most MAX_CELLS cells)."""
    if p.distinct is not None:
        return p.distinct.astype(np.float64)
    cells = int(min(MAX_CELLS, max(2, p.n // MIN_ROWS_PER_CELL)))
    qs = np.linspace(0.0, 1.0, cells + 1)[1:-1]
    return np.unique(numeric.quantiles_sorted(p.sorted, qs))


def ks_scores(ref: Array, win: Array) -> Array:
    """z-scores of the two-sample KS test on cell counts, row-wise ((B, K) or (K,) arrays).

    D is the largest gap between the cumulative shares; the p-value is Kolmogorov's asymptotic one with
    Stephens' small-sample correction (lambda = (sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D)."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    nr, nw = ref.sum(axis=1), win.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.cumsum(ref, axis=1)[:, :-1] / nr[:, None]
        cw = np.cumsum(win, axis=1)[:, :-1] / nw[:, None]
        d = np.abs(cr - cw).max(axis=1, initial=0.0)
        en = nr * nw / (nr + nw)
        lam = (np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d
    return _z(special.kolmogorov(lam), valid=(nr > 0) & (nw > 0))


def chisquare_scores(ref: Array, win: Array) -> Array:
    """z-scores of the two-sample chi-square test of homogeneity on cell counts, row-wise
    (the vectorised twin of `categorical.chisquare_two_sample`)."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    nr, nw = ref.sum(axis=1, keepdims=True), win.sum(axis=1, keepdims=True)
    col = ref + win
    keep = col > 0
    total = nr + nw
    with np.errstate(invalid="ignore", divide="ignore"):
        er, ew = nr * col / total, nw * col / total
        terms = np.where(keep, (ref - er) ** 2 / er + (win - ew) ** 2 / ew, 0.0)
    stat = terms.sum(axis=1)
    dof = keep.sum(axis=1) - 1
    p = np.where(dof > 0, stats.chi2.sf(stat, np.maximum(dof, 1)), 1.0)
    return _z(p, valid=(nr[:, 0] > 0) & (nw[:, 0] > 0))


def _z(p: Array, valid: NDArray[np.bool_]) -> Array:
    z = np.clip(stats.norm.isf(np.clip(p, 1e-300, 1.0)), Z_FLOOR, Z_CEIL)
    return np.where(valid, z, np.nan)


SCORES = {"ks": ks_scores, "chisquare": chisquare_scores}


def wasserstein_cells(ref: Array, win: Array, edges: Array, std: float) -> Array:
    """Normed W1 from cell counts (CDF gaps times the widths between inner edges), row-wise: the
    effect size of simulated windows, where raw values do not exist."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    if edges.size < 2:
        return np.zeros(win.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.cumsum(ref, axis=1)[:, :-1] / ref.sum(axis=1, keepdims=True)
        cw = np.cumsum(win, axis=1)[:, :-1] / win.sum(axis=1, keepdims=True)
    gaps = np.abs(cr - cw)[:, :-1]
    return (gaps * np.diff(edges)).sum(axis=1) / max(std, numeric.WASSERSTEIN_MIN_STD)


def total_variation_cells(ref: Array, win: Array) -> Array:
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * np.abs(ref / ref.sum(axis=1, keepdims=True) - win / win.sum(axis=1, keepdims=True)).sum(axis=1)


# -- the calibration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureCalibration:
    """One column's calibrated rule. `edges` (numeric) or `categories` (categorical, plus one implicit
    cell for new values) define the cells; `ref_counts` are the reference's counts in them."""

    name: str
    kind: str
    statistic: str
    edges: tuple[float, ...]
    categories: tuple[str, ...]
    ref_counts: tuple[float, ...]
    std: float
    location: float
    scale: float
    tail_exceedance_99: float
    """Share of bootstrap scores above the fitted 99% quantile (0.01 when the normal tail fits)."""
    min_effect: float
    degenerate: bool = False
    """No usable reference value: never drifted by the calibrated rule (check-config rejects it)."""
    single_value: bool = False
    """The reference holds one value only: decided by Fisher's exact test (step 6), not the CUSUM."""

    def standardize(self, z: Array | float) -> Array:
        return (np.asarray(z, dtype=np.float64) - self.location) / self.scale

    def single_window_p_value(self, cusum: CusumDesign) -> float:
        """The p-value (of the cell test) that alone, from a CUSUM at rest, raises an alarm."""
        if self.single_value:
            return cusum.target_rate
        return float(stats.norm.sf(self.location + self.scale * (cusum.k + cusum.h)))

    def single_window_statistic(self, cusum: CusumDesign, window_records: int) -> float:
        """The same threshold as the raw statistic: KS D on the cells, or the chi-square value."""
        p = self.single_window_p_value(cusum)
        n = float(sum(self.ref_counts))
        if self.single_value:
            return float(min_outside(n, window_records, p))
        if self.statistic == "ks":
            en = n * window_records / (n + window_records)
            return float(special.kolmogi(p) / (math.sqrt(en) + 0.12 + 0.11 / math.sqrt(en)))
        return float(stats.chi2.isf(p, max(1, sum(c > 0 for c in self.ref_counts) - 1)))

    def to_dict(self) -> dict[str, Any]:
        return json_safe({**self.__dict__, "edges": list(self.edges), "categories": list(self.categories), "ref_counts": list(self.ref_counts)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureCalibration:
        d = dict(data)
        d["edges"] = tuple(float(x) for x in d["edges"])
        d["categories"] = tuple(str(x) for x in d["categories"])
        d["ref_counts"] = tuple(float(x) for x in d["ref_counts"])
        return cls(**d)


@dataclass(frozen=True)
class Calibration:
    """A model's calibrated rules, valid for the reference, window plan and budget in `fingerprint`."""

    fingerprint: str
    plan: WindowPlan
    budget: BudgetSpec
    cusum: CusumDesign
    features: Mapping[str, FeatureCalibration] = field(default_factory=dict)

    @property
    def windows_per_period(self) -> float:
        return self.plan.windows_per(self.budget.period)

    def expected_false_alarms(self) -> float:
        """Per feature per budget period (the model's budget split evenly over its columns)."""
        return self.cusum.target_rate * self.windows_per_period

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": METHOD_VERSION,
            "fingerprint": self.fingerprint,
            "plan": dict(self.plan.__dict__),
            "budget": dict(self.budget.__dict__),
            "cusum": self.cusum.to_dict(),
            "features": {n: f.to_dict() for n, f in self.features.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        if data.get("version") != METHOD_VERSION:
            raise ValueError(f"calibration format {data.get('version')!r} is not {METHOD_VERSION!r}: recompute it")
        return cls(
            fingerprint=str(data["fingerprint"]),
            plan=WindowPlan(**data["plan"]),
            budget=BudgetSpec(**data["budget"]),
            cusum=CusumDesign.from_dict(data["cusum"]),
            features={n: FeatureCalibration.from_dict(f) for n, f in data["features"].items()},
        )


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
    names = list(profile.columns)
    total = len(names) + 1
    features: dict[str, FeatureCalibration] = {}
    for i, name in enumerate(names):
        features[name] = _calibrate_column(profile.columns[name], plan, budget, rng)
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
    if isinstance(p, NumericProfile):
        edges = _numeric_edges(p) if p.n else np.empty(0)
        counts = numeric.binned_counts(p.sorted, edges)
        kind, statistic, categories, std, min_effect = "numeric", "ks", (), p.std, budget.min_effect_numeric
    else:
        edges = np.empty(0)
        counts = np.append(p.counts, 0.0)  # the last cell holds values the reference never had
        kind, statistic, categories, std, min_effect = "categorical", "chisquare", tuple(map(str, p.categories)), 0.0, budget.min_effect_categorical
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


def single_value_p(n_ref: float, m: float, k: float) -> float:
    """One-sided Fisher exact p-value of k of m window values differing from a reference whose n_ref
    values are all one value: the chance that all k differing values of the pooled n_ref + m rows land
    in the window, C(m, k) / C(n_ref + m, k). Exact under the two-sample null, whatever the true share."""
    if k <= 0:
        return 1.0
    log_p = special.gammaln(m + 1) - special.gammaln(m - k + 1) - special.gammaln(n_ref + m + 1) + special.gammaln(n_ref + m - k + 1)
    return float(math.exp(log_p))


def min_outside(n_ref: float, m: int, alpha: float) -> int:
    """The fewest differing values of an m-row window that alarm at level alpha (m + 1: none can)."""
    return next((k for k in range(1, m + 1) if single_value_p(n_ref, m, k) <= alpha), m + 1)


def _fit_upper_half(z_sorted: Array) -> tuple[float, float]:
    """Normal location and scale from a quantile-quantile regression on the upper half of the sample:
    the tail is what alarms, and discrete statistics pile up in the lower half."""
    b = z_sorted.size
    q = stats.norm.ppf((np.arange(1, b + 1) - 0.5) / b)
    upper = q >= 0.0
    slope, intercept = np.polyfit(q[upper], z_sorted[upper], 1)
    return float(intercept), float(slope)


# -- deciding windows ------------------------------------------------------------------------------


@dataclass
class _Column:
    cal: FeatureCalibration
    edges: Array
    ref: Array
    index: pd.Index | None
    s: float = 0.0
    alarm: bool = False


class CalibratedDetector:
    """Decides a model's windows with its calibration: the engine's full result, with each calibrated
    column's `drifted` replaced by (CUSUM in alarm AND effect >= min effect) and the evidence in
    `details["calibration"]`. It keeps the CUSUM state across windows: one detector per model, fed its
    windows in order (`state()` / `restore()` carry it across restarts)."""

    def __init__(self, profile: ReferenceProfile, calibration: Calibration) -> None:
        self.profile = profile
        self.calibration = calibration
        self._columns = {
            name: _Column(
                cal=cal,
                edges=np.asarray(cal.edges, dtype=np.float64),
                ref=np.asarray(cal.ref_counts, dtype=np.float64),
                index=pd.Index(list(cal.categories), dtype=object) if cal.kind == "categorical" else None,
            )
            for name, cal in calibration.features.items()
            if name in profile.columns
        }

    def evaluate(self, current: pd.DataFrame) -> DriftResult:
        result = evaluate(self.profile, current)
        cusum = self.calibration.cusum
        features = dict(result.features)
        for name, col in self._columns.items():
            fr = features[name]
            column = current[name] if name in current.columns else pd.Series([None] * len(current), dtype=object)
            counts, effect = self._counts_and_effect(name, col, column)
            single: dict[str, Any] = {}
            if col.cal.single_value:
                z = u = math.nan
                outside = self._outside_single_value(name, col, column)
                p_single = single_value_p(float(col.ref.sum()), float(counts.sum()), float(outside))
                col.alarm = bool(counts.sum()) and p_single <= cusum.target_rate
                single = {"rule": "single_value", "outside": outside, "p_value": p_single, "alpha": cusum.target_rate}
            else:
                if col.cal.degenerate or counts.sum() == 0:
                    z = u = math.nan
                else:
                    z = float(SCORES[col.cal.statistic](col.ref, counts)[0])
                    u = float(col.cal.standardize(z))
                s, alarm = cusum_step(np.array(col.s), np.array(u), cusum.k, cusum.h)
                col.s, col.alarm = float(s), bool(alarm)
            gate = bool(effect >= col.cal.min_effect) if math.isfinite(effect) else False
            evidence = {
                "z": z, "u": u, "cusum": col.s, "k": cusum.k, "h": cusum.h, "alarm": col.alarm,
                "effect": effect, "min_effect": col.cal.min_effect, "effect_metric": _EFFECT[col.cal.kind],
                "fixed_threshold_drifted": fr.drifted, **single,
            }
            features[name] = replace(fr, drifted=col.alarm and gate, details={**fr.details, "calibration": json_safe(evidence)})
        return DriftResult(dataset=_dataset(result.dataset, features), features=features)

    def _counts_and_effect(self, name: str, col: _Column, column: pd.Series) -> tuple[Array, float]:
        p = self.profile.columns[name]
        if col.index is None:
            assert isinstance(p, NumericProfile)
            cur = numeric_values(column, p.spec.datetime).finite
            counts = numeric.binned_counts(cur, col.edges)
            effect = numeric.wasserstein_normed(p.sorted, p.prefix, p.mean, p.std, cur) if cur.size and p.n else math.nan
            return counts, effect
        vals = categorical_values(column)
        idx = col.index.get_indexer(vals.keys) if vals.keys.size else np.empty(0, dtype=np.int64)
        counts = np.zeros(col.ref.size)
        np.add.at(counts, np.where(idx >= 0, idx, col.ref.size - 1), vals.counts)
        effect = total_variation(col.ref, counts) if counts.sum() and col.ref.sum() else math.nan
        return counts, effect

    def _outside_single_value(self, name: str, col: _Column, column: pd.Series) -> int:
        """Window values differing from the reference's single value."""
        p = self.profile.columns[name]
        if isinstance(p, NumericProfile):
            cur = numeric_values(column, p.spec.datetime).finite
            return int(cur.size - np.count_nonzero(cur == p.sorted[0]))
        vals = categorical_values(column)
        return int(vals.counts[vals.keys != col.cal.categories[0]].sum())

    def state(self) -> dict[str, dict[str, Any]]:
        """The CUSUM state per column, JSON-safe."""
        return {n: {"s": c.s, "alarm": c.alarm} for n, c in self._columns.items()}

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        for name, st in state.items():
            if name in self._columns:
                self._columns[name].s = float(st["s"])
                self._columns[name].alarm = bool(st["alarm"])


_EFFECT = {"numeric": "wasserstein_normed", "categorical": "total_variation"}


def _dataset(old: DatasetResult, features: Mapping[str, FeatureResult]) -> DatasetResult:
    cols = [f for f in features.values() if f.role == "feature"]
    n_drifted = sum(f.drifted for f in cols)
    share = n_drifted / len(cols) if cols else 0.0
    return replace(old, drift_share=share, drifted=bool(cols) and share >= old.threshold, n_drifted=n_drifted)


def calibrated_detector(model: Any, reference: pd.DataFrame, profile: ReferenceProfile) -> CalibratedDetector | None:
    """The detector for a `monitor.config.ModelConfig` with a `false_alarm_budget`, else None (the
    engine's fixed thresholds decide). Raises ValueError when the budget cannot be calibrated."""
    budget = getattr(model, "false_alarm_budget", None)
    if budget is None:
        return None
    plan = plan_from_config(model.window, budget)
    return CalibratedDetector(profile, calibrate(reference, profile, plan, BudgetSpec.from_config(budget)))


# -- power: how large a shift is caught, and how fast ----------------------------------------------


def shifted_shares(cal: FeatureCalibration, profile: NumericProfile | CategoricalProfile, shift: float, kind: str = "auto") -> Array:
    """Cell shares after a shift of size `shift`.

    - single-valued reference (`outside`, the only kind there): `shift` of the rows leave its value;
    - numeric `mean`: every reference value moves by shift * std;
    - numeric `scale`: values spread around the mean by a factor (1 + shift);
    - categorical `share`: `shift` of the mass moves from the most frequent category to the others,
      in proportion to their shares (total variation = shift);
    - categorical `new`: a category the reference never had takes a share `shift`.
    """
    ref = np.asarray(cal.ref_counts, dtype=np.float64)
    if cal.single_value:
        return np.array([1.0 - shift, shift])
    if cal.kind == "numeric":
        assert isinstance(profile, NumericProfile)
        kind = "mean" if kind == "auto" else kind
        values = profile.sorted + shift * profile.std if kind == "mean" else profile.mean + (profile.sorted - profile.mean) * (1.0 + shift)
        return numeric.binned_counts(np.sort(values), np.asarray(cal.edges)) / values.size
    shares = ref / ref.sum()
    kind = "share" if kind == "auto" else kind
    if kind == "new":
        return np.append(shares[:-1] * (1.0 - shift), shares[-1] + shift)
    top = int(np.argmax(shares))
    moved = min(shift, shares[top])
    rest = shares.copy()
    rest[top] = 0.0
    out = shares + moved * (rest / rest.sum() if rest.sum() else rest)
    out[top] -= moved
    return out


def detection_probability(
    cal: FeatureCalibration, calibration: Calibration, after: Array, within: int, sims: int = 400, seed: int = 0
) -> tuple[float, float]:
    """P(alarm within `within` windows after a change to cell shares `after`) and the mean delay (in
    windows, among detected runs). The change happens at a window boundary; windows then fill with
    changed rows step by step (overlap), the CUSUM starts at rest, and the gate uses cell effects."""
    if cal.degenerate:
        return 0.0, math.nan
    if cal.single_value:
        return _single_value_detection(cal, calibration, after, within, sims, seed)
    plan, cusum = calibration.plan, calibration.cusum
    rng = np.random.default_rng(seed)
    ref = np.asarray(cal.ref_counts, dtype=np.float64)
    q = plan.overlap
    block = max(1, round(plan.records / q))
    before = rng.multinomial(block, ref / ref.sum(), size=(sims, q - 1)).astype(np.float64)
    changed = rng.multinomial(block, np.clip(after, 0, None) / np.clip(after, 0, None).sum(), size=(sims, within)).astype(np.float64)
    blocks = np.concatenate([before, changed], axis=1)
    s = np.zeros(sims)
    hit = np.full(sims, -1)
    for t in range(within):
        win = blocks[:, t : t + q].sum(axis=1)
        u = cal.standardize(SCORES[cal.statistic](ref, win))
        s, alarm = cusum_step(s, u, cusum.k, cusum.h)
        if cal.kind == "numeric":
            effect = wasserstein_cells(ref, win, np.asarray(cal.edges), cal.std)
        else:
            effect = total_variation_cells(ref, win)
        new = alarm & (effect >= cal.min_effect) & (hit < 0)
        hit[new] = t + 1
    detected = hit > 0
    return float(detected.mean()), float(hit[detected].mean()) if detected.any() else math.nan


def _single_value_detection(cal: FeatureCalibration, calibration: Calibration, after: Array, within: int, sims: int, seed: int) -> tuple[float, float]:
    """detection_probability for a single-valued column: `after[0]` is the share of the reference's
    value after the change; windows fill with changed rows block by block, as for the CUSUM columns.
    The effect gate is the share of differing values (exact for categories; for numbers the normed
    Wasserstein also depends on how far they lie, so this is the chance the test alarms)."""
    plan = calibration.plan
    rng = np.random.default_rng(seed)
    q = plan.overlap
    block = max(1, round(plan.records / q))
    outside = float(np.clip(1.0 - after[0] / max(after.sum(), 1e-300), 0.0, 1.0))
    changed = rng.binomial(block, outside, size=(sims, within))
    blocks = np.concatenate([np.zeros((sims, q - 1)), changed], axis=1)
    m = block * q
    k_min = max(min_outside(sum(cal.ref_counts), m, calibration.cusum.target_rate),
                math.ceil(cal.min_effect * m) if cal.kind == "categorical" else 0)
    hit = np.full(sims, -1)
    for t in range(within):
        alarm = (blocks[:, t : t + q].sum(axis=1) >= k_min) & (hit < 0)
        hit[alarm] = t + 1
    detected = hit > 0
    return float(detected.mean()), float(hit[detected].mean()) if detected.any() else math.nan


def detectable_shift(
    cal: FeatureCalibration,
    calibration: Calibration,
    profile: NumericProfile | CategoricalProfile,
    within: int = 3,
    power: float = 0.95,
    sims: int = 400,
    kind: str = "auto",
) -> float:
    """The smallest shift (reference stds for numeric, moved share for categorical) detected within
    `within` windows with probability `power`, by bisection on the shift with common random numbers;
    inf when even the largest shift tried is not."""
    if cal.degenerate:
        return math.inf
    if cal.single_value:
        hi, kind = 1.0, "outside"
    elif cal.kind == "numeric":
        hi = 8.0
    else:
        shares = np.asarray(cal.ref_counts) / sum(cal.ref_counts)
        hi = float(shares.max()) if kind != "new" else 1.0

    def ok(shift: float) -> bool:
        return detection_probability(cal, calibration, shifted_shares(cal, profile, shift, kind), within, sims)[0] >= power

    if not ok(hi):
        return math.inf
    lo = 0.0
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def calibration_table(calibration: Calibration, profile: ReferenceProfile, within: int = 3, sims: int = 400,
                      progress: Progress | None = None) -> list[dict[str, Any]]:
    """Per column: the thresholds, expected false alarms per period and the smallest detectable shift
    (what `driftwatch calibrate` prints)."""
    rows = []
    names = list(calibration.features)
    for i, name in enumerate(names):
        cal = calibration.features[name]
        shift = detectable_shift(cal, calibration, profile.columns[name], within, sims=sims) if name in profile.columns else math.inf
        rows.append(json_safe({
            "name": name,
            "kind": cal.kind,
            "statistic": cal.statistic,
            "degenerate": cal.degenerate,
            "single_value": cal.single_value,
            "location": cal.location,
            "scale": cal.scale,
            "tail_exceedance_99": cal.tail_exceedance_99,
            "single_window_p_value": None if cal.degenerate else cal.single_window_p_value(calibration.cusum),
            "single_window_statistic": None if cal.degenerate else cal.single_window_statistic(calibration.cusum, calibration.plan.records),
            "min_effect": cal.min_effect,
            "expected_false_alarms_per_period": 0.0 if cal.degenerate else calibration.expected_false_alarms(),
            "detectable_shift": shift,
            "shift_unit": _shift_unit(cal),
        }))
        if progress is not None:
            progress(i + 1, len(names))
    return rows


def _shift_unit(cal: FeatureCalibration) -> str:
    if cal.single_value:
        return "share of values differing from the reference's single value"
    return "reference std (mean shift)" if cal.kind == "numeric" else "category share moved"


def summarize(calibration: Calibration, rows: Sequence[Mapping[str, Any]], within: int) -> dict[str, Any]:
    """The JSON document of `driftwatch calibrate --json`."""
    return {
        "fingerprint": calibration.fingerprint,
        "window": dict(calibration.plan.__dict__),
        "budget": dict(calibration.budget.__dict__),
        "windows_per_period": calibration.windows_per_period,
        "cusum": calibration.cusum.to_dict(),
        "within_windows": within,
        "features": list(rows),
    }
