"""The reference profile: everything about the reference a window evaluation needs, computed once.

Per numeric column: the sorted finite sample with centred prefix sums (KS, Wasserstein), mean/std,
PSI's reference-quantile bins and their counts, the distinct values when there are few of them, the
valid range and summary quantiles. Per categorical column: category counts and a hash index. Methods
and thresholds are resolved here, so every window of a model uses the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from monitor.drift import numeric
from monitor.drift.spec import ColumnSpec, EngineSettings, default_threshold, resolve_method
from monitor.drift.values import categorical_values, numeric_values
from monitor.drift.vectors import EmbeddingColumnProfile, embedding_profile

SUMMARY_QUANTILES = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
# Up to this many distinct reference values, histogram methods compare per-value shares instead of
# Sturges bins (Evidently's `get_binned_data` rule).
DISCRETE_MAX_VALUES = 20


@dataclass(frozen=True, eq=False)
class NumericProfile:
    spec: ColumnSpec
    method: str
    threshold: float
    sorted: NDArray[np.float64]
    prefix: NDArray[np.float64]
    mean: float
    std: float
    lo: float | None  # valid range for data quality: configured, else the reference's
    hi: float | None
    psi_edges: NDArray[np.float64]  # inner edges from reference quantiles
    psi_counts: NDArray[np.float64]
    distinct: NDArray[np.float64] | None  # distinct values and counts when <= DISCRETE_MAX_VALUES
    distinct_counts: NDArray[np.float64] | None
    quantiles: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.sorted.size)


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    spec: ColumnSpec
    method: str
    threshold: float
    categories: NDArray[np.object_]  # canonical keys, most frequent first
    counts: NDArray[np.float64]
    index: pd.Index

    @property
    def n(self) -> int:
        return int(self.counts.sum())


ColumnProfile = NumericProfile | CategoricalProfile | EmbeddingColumnProfile
DEFAULT_SETTINGS = EngineSettings()  # frozen, so sharing one instance as a default is safe


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    columns: Mapping[str, ColumnProfile]
    settings: EngineSettings
    n_rows: int
    text: Mapping[str, Any] = field(default_factory=dict)
    """The `monitor.text.TextProfile` of each text column the descriptor columns were computed from
    (set by the runtime: windows' texts are described against the same vocabularies)."""


def build_profile(
    reference: pd.DataFrame, columns: Sequence[ColumnSpec], settings: EngineSettings = DEFAULT_SETTINGS
) -> ReferenceProfile:
    """Profile `reference` for the given columns; raises ValueError naming columns it lacks."""
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate column specs: {sorted({n for n in names if names.count(n) > 1})}")
    missing = [n for n in names if n not in reference.columns]
    if missing:
        raise ValueError(f"reference data has no column(s) {', '.join(missing)}")
    profiles: dict[str, ColumnProfile] = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme values give NaN, not warnings
        for spec in columns:
            col = reference[spec.name]
            col = col.iloc[:, 0] if isinstance(col, pd.DataFrame) else col  # duplicated label: the first counts
            if spec.kind == "embedding":
                method = resolve_method("embedding", spec.method, 0, 0, settings)
                threshold = spec.threshold if spec.threshold is not None else default_threshold(method, settings)
                profiles[spec.name] = embedding_profile(spec, col, method, threshold)
            else:
                profiles[spec.name] = (
                    _numeric_profile(spec, col, settings) if spec.kind == "numeric" else _categorical_profile(spec, col, settings)
                )
    return ReferenceProfile(columns=profiles, settings=settings, n_rows=len(reference))


def _numeric_profile(spec: ColumnSpec, column: pd.Series, settings: EngineSettings) -> NumericProfile:
    values = numeric_values(column, spec.datetime).finite
    n = values.size
    n_distinct = numeric.count_distinct(values)
    few = n_distinct <= DISCRETE_MAX_VALUES
    distinct, distinct_counts = numeric.distinct_sorted(values) if few else (None, None)
    method = resolve_method("numeric", spec.method, n, n_distinct, settings)
    mean = float(values.mean()) if n else float("nan")
    std = float(values.std()) if n else float("nan")
    if n:
        qs = np.linspace(0.0, 1.0, settings.psi_bins + 1)[1:-1]
        psi_edges = np.unique(numeric.quantiles_sorted(values, qs))
    else:
        psi_edges = np.empty(0)
    return NumericProfile(
        spec=spec,
        method=method,
        threshold=spec.threshold if spec.threshold is not None else default_threshold(method, settings),
        sorted=values,
        prefix=numeric.prefix_sums(values, mean if n else 0.0),
        mean=mean,
        std=std,
        lo=spec.min_value if spec.min_value is not None else (float(values[0]) if n else None),
        hi=spec.max_value if spec.max_value is not None else (float(values[-1]) if n else None),
        psi_edges=psi_edges,
        psi_counts=numeric.binned_counts(values, psi_edges),
        distinct=distinct,
        distinct_counts=distinct_counts,
        quantiles=numeric.quantiles_sorted(values, SUMMARY_QUANTILES),
    )


def _categorical_profile(spec: ColumnSpec, column: pd.Series, settings: EngineSettings) -> CategoricalProfile:
    vals = categorical_values(column)
    # most frequent first, ties by key, so the profile is deterministic
    order = sorted(range(vals.keys.size), key=lambda i: (-vals.counts[i], vals.keys[i]))
    categories = vals.keys[order] if order else np.empty(0, dtype=object)
    method = resolve_method("categorical", spec.method, vals.n_valid, categories.size, settings)
    return CategoricalProfile(
        spec=spec,
        method=method,
        threshold=spec.threshold if spec.threshold is not None else default_threshold(method, settings),
        categories=categories,
        counts=vals.counts[order] if order else np.empty(0),
        index=pd.Index(categories, dtype=object),
    )


def unusable_columns(profile: ReferenceProfile) -> dict[str, str]:
    """Monitored columns whose reference has no usable value, with what it lacks.

    Such a column can never drift (every window would quietly say "no drift"), so a config that
    monitors one is rejected: by `check-config`, `drift --config` and `report` alike (this is the rule).
    Without a config the column is merely reported untested.
    """
    lacks = {}
    for name, p in profile.columns.items():
        if p.n == 0:
            if isinstance(p, CategoricalProfile):
                lacks[name] = "non-missing value"
            elif isinstance(p, EmbeddingColumnProfile):
                lacks[name] = f"finite vector of {p.dimensions or 'equal'} numbers"
            else:
                lacks[name] = "date/time" if p.spec.datetime else "finite number"
    return lacks
