"""A model's calibrated rules and their stored (JSON) form.

A `Calibration` is valid for the reference, window plan and budget named by its fingerprint; the caller
stores `to_json()` and reloads it with `from_dict` (a changed `METHOD_VERSION` forces a recomputation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from monitor.drift.calibration.plan import BudgetSpec, WindowPlan
from monitor.drift.calibration.scores import LOCATION_SCALE_TESTS, RANK_TESTS_MIN_CELLS, Array
from monitor.drift.calibration.single_value import min_outside
from monitor.drift.result import json_safe
from monitor.drift.sequential import CusumDesign

METHOD_VERSION = "3"  # 2: single-valued reference columns are calibrated (step 6); 3: numeric score ks_location_scale


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
        """The same threshold as the raw statistic: KS D on the cells (for `ks_location_scale` with
        the rank tests, the D that alarms alone, at KS's Sidak share of the p-value), or the chi-square
        value."""
        p = self.single_window_p_value(cusum)
        n = float(sum(self.ref_counts))
        if self.single_value:
            return float(min_outside(n, window_records, p))
        if self.statistic in ("ks", "ks_location_scale"):
            if self.statistic == "ks_location_scale" and len(self.ref_counts) >= RANK_TESTS_MIN_CELLS:
                p = float(-math.expm1(math.log1p(-p) / LOCATION_SCALE_TESTS))
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
