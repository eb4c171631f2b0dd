"""Drift results: frozen, JSON-safe through `to_dict()` (NaN and infinities become None)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.drift.spec import P_VALUE_METHODS, Kind, Role


def json_safe(value: Any) -> Any:
    """Plain Python types only, NaN/inf -> None, so `json.dumps(..., allow_nan=False)` always works."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


@dataclass(frozen=True)
class QualityResult:
    """Shares of the window's rows (missing + wrong type + out of range + valid = 1 for numeric)."""

    missing_ratio: float
    out_of_range_ratio: float
    new_category_ratio: float
    wrong_type_ratio: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self.__dict__)


@dataclass(frozen=True)
class FeatureResult:
    """Drift of one column in one window.

    `score` is what the threshold is compared with, as in Evidently: a distance for distance methods
    (drift when score >= threshold) and the raw p-value for test methods (drift when the p-value,
    Benjamini-Hochberg adjusted when enabled, is < threshold). `statistic` is the test statistic
    (KS D, chi-square, z, ...) for test methods. NaN score: not computable (e.g. empty window).
    """

    name: str
    kind: Kind
    role: Role
    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    quality: QualityResult
    details: Mapping[str, Any] = field(default_factory=dict)
    adjusted_p_value: float | None = None
    statistic: float | None = None
    untested: str | None = None
    """Why this column got no verdict; None when it was tested."""
    effect_metric: str = "wasserstein_normed"
    """How `effect_size` measures the shift: `wasserstein_normed` or `total_variation`."""
    effect_size: float = math.nan
    """How large the shift is, whatever method decided (NaN: untested); a driftwatch-mode test flags
    only shifts at least the minimum effect size."""

    @property
    def is_test(self) -> bool:
        return self.method in P_VALUE_METHODS

    @property
    def excess(self) -> float:
        """How far past its threshold (> 1 means drifted); the ranking key of `drifted_features`.

        A changed type (details `type_changed`) has no score but ranks first: nothing drifts louder.
        """
        if self.details.get("type_changed"):
            return math.inf
        if self.is_test:
            p = self.adjusted_p_value if self.adjusted_p_value is not None else self.p_value
            if p is None or math.isnan(p):
                return 0.0
            return math.inf if p == 0 else self.threshold / p
        return 0.0 if math.isnan(self.score) else self.score / self.threshold

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "kind": self.kind,
                "role": self.role,
                "method": self.method,
                "score": self.score,
                "statistic": self.statistic,
                "p_value": self.p_value,
                "adjusted_p_value": self.adjusted_p_value,
                "threshold": self.threshold,
                "drifted": self.drifted,
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "quality": self.quality.to_dict(),
                "details": self.details,
                "untested": self.untested,
                "effect_metric": self.effect_metric,
                "effect_size": self.effect_size,
            }
        )


@dataclass(frozen=True)
class DatasetResult:
    """Dataset drift: the share of drifted *feature* columns (outputs are prediction drift)."""

    drift_share: float
    drifted: bool
    n_drifted: int
    n_features: int
    n_reference: int
    n_current: int
    threshold: float = 0.5
    n_tested: int | None = None
    """Features that got a verdict (None: not recorded, results stored by an older driftwatch)."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self.__dict__)


@dataclass(frozen=True)
class DriftResult:
    dataset: DatasetResult
    features: Mapping[str, FeatureResult]  # every monitored column, outputs included (see `role`)

    @property
    def prediction(self) -> FeatureResult | None:
        """The first output column: the model's prediction drift."""
        return next((f for f in self.features.values() if f.role == "output"), None)

    def drifted_features(self) -> list[FeatureResult]:
        """Drifted columns, furthest past their threshold first; ties (permutation p-values bottom out
        at the same smallest value) go to the larger effect size."""
        drifted = [f for f in self.features.values() if f.drifted]
        return sorted(drifted, key=lambda f: (-f.excess, -(0.0 if math.isnan(f.effect_size) else f.effect_size), f.name))

    def to_dict(self) -> dict[str, Any]:
        prediction = self.prediction
        return {
            "dataset": self.dataset.to_dict(),
            "prediction": prediction.name if prediction is not None else None,
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _opt(value: Any) -> float | None:
    return None if value is None else _num(value)


def result_from_dict(data: Mapping[str, Any]) -> DriftResult:
    """Rebuild a `DriftResult` from its `to_dict()` (None numbers come back as NaN)."""
    ds = data.get("dataset", {})
    dataset = DatasetResult(
        drift_share=_num(ds.get("drift_share")),
        drifted=bool(ds.get("drifted")),
        n_drifted=int(ds.get("n_drifted") or 0),
        n_features=int(ds.get("n_features") or 0),
        n_reference=int(ds.get("n_reference") or 0),
        n_current=int(ds.get("n_current") or 0),
        threshold=_num(ds.get("threshold", 0.5)),
        n_tested=None if ds.get("n_tested") is None else int(ds["n_tested"]),
    )
    features = {}
    for name, f in data.get("features", {}).items():
        q = f.get("quality") or {}
        features[name] = FeatureResult(
            name=name,
            kind=f.get("kind", "numeric"),
            role=f.get("role", "feature"),
            method=str(f.get("method")),
            score=_num(f.get("score")),
            p_value=_opt(f.get("p_value")),
            threshold=_num(f.get("threshold")),
            drifted=bool(f.get("drifted")),
            n_reference=int(f.get("n_reference") or 0),
            n_current=int(f.get("n_current") or 0),
            quality=QualityResult(
                missing_ratio=_num(q.get("missing_ratio")),
                out_of_range_ratio=_num(q.get("out_of_range_ratio")),
                new_category_ratio=_num(q.get("new_category_ratio")),
                wrong_type_ratio=_num(q.get("wrong_type_ratio")),
                n=int(q.get("n") or 0),
            ),
            details=f.get("details") or {},
            adjusted_p_value=_opt(f.get("adjusted_p_value")),
            statistic=_opt(f.get("statistic")),
            untested=f.get("untested") if isinstance(f.get("untested"), str) else None,
            effect_metric=str(f.get("effect_metric") or ("total_variation" if f.get("kind") == "categorical" else "wasserstein_normed")),
            effect_size=_num(f.get("effect_size")),
        )
    return DriftResult(dataset=dataset, features=features)
