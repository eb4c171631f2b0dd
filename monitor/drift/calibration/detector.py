"""Deciding windows with a calibration: the CUSUM per column, the practical-size gate, and the
state carried across windows and restarts (step 5 of the package docstring)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from monitor.drift import numeric
from monitor.drift.calibration.fit import calibrate
from monitor.drift.calibration.plan import BudgetSpec, plan_from_config
from monitor.drift.calibration.rules import Calibration, FeatureCalibration
from monitor.drift.calibration.scores import SCORES, Array
from monitor.drift.calibration.single_value import single_value_p
from monitor.drift.distance import total_variation
from monitor.drift.engine import evaluate
from monitor.drift.profile import NumericProfile, ReferenceProfile
from monitor.drift.result import DatasetResult, DriftResult, FeatureResult, json_safe
from monitor.drift.sequential import cusum_step
from monitor.drift.values import categorical_values, numeric_values


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

    def fresh(self) -> CalibratedDetector:
        """A detector with this calibration and profile (shared, both read-only) and no evidence yet:
        another stream of windows (a model version's, docs/versions.md) accumulates its own CUSUM."""
        other = copy.copy(self)
        other._columns = {name: replace(col, s=0.0, alarm=False) for name, col in self._columns.items()}
        return other

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
    """The detector for a `monitor.core.config.ModelConfig` with a `false_alarm_budget`, else None (the
    engine's fixed thresholds decide). Raises ValueError when the budget cannot be calibrated."""
    budget = getattr(model, "false_alarm_budget", None)
    if budget is None:
        return None
    plan = plan_from_config(model.window, budget)
    return CalibratedDetector(profile, calibrate(reference, profile, plan, BudgetSpec.from_config(budget, profile.settings)))
