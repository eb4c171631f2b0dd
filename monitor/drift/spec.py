"""What to monitor and how: column specs, engine settings, the `auto` choice and the config bridge.

`specs_from_config` is duck-typed on the `monitor.core.config` objects so this package never imports the
config (or anything doing I/O) at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from monitor.core import methods
from monitor.core.methods import Kind

if TYPE_CHECKING:
    from monitor.core.config import Config, ModelConfig

Role = Literal["feature", "output"]

# The method lists derive from the one registry (monitor.core.methods); re-exported for callers.
NUMERIC_METHODS = methods.NUMERIC_METHODS
CATEGORICAL_METHODS = methods.CATEGORICAL_METHODS
P_VALUE_METHODS = methods.P_VALUE_METHODS
DISCRETE_NUMERIC_METHODS = methods.DISCRETE_NUMERIC_METHODS

# Numeric columns with at most this many distinct reference values are treated as discrete by `auto`.
AUTO_DISCRETE_MAX_VALUES = 5
# Effect sizes reported for every column: continuous numeric columns by normed W1, columns compared
# as categories (categorical, or numeric with few values under a discrete method) by total variation.
EFFECT_NUMERIC = "wasserstein_normed"
EFFECT_CATEGORICAL = "total_variation"
EFFECT_EMBEDDING = "ks_component"
"""An embedding column's effect: the largest KS distance over its principal components and residual.
No floor gates it (docs/drift-methods.md#embeddings): its test's level is the column's false-alarm rate."""
DRIFTWATCH_LEVEL = 0.01
EVIDENTLY_LEVEL = 0.05


@dataclass(frozen=True)
class ColumnSpec:
    """One monitored column; `method="auto"` is resolved against the reference in `build_profile`."""

    name: str
    kind: Kind
    method: str = "auto"
    threshold: float | None = None
    role: Role = "feature"
    min_value: float | None = None
    max_value: float | None = None
    datetime: bool = False
    """A numeric column of date/times: text values are parsed as ISO 8601 (compared as epoch seconds)."""
    dimensions: int | None = None
    """An embedding column's vector length; None: the reference's first vector's (notebooks)."""

    def __post_init__(self) -> None:
        if self.kind not in methods.KINDS:
            raise ValueError(f"column {self.name!r}: kind must be one of {', '.join(methods.KINDS)}, got {self.kind!r}")
        if self.dimensions is not None and (self.kind != "embedding" or self.dimensions < 1):
            raise ValueError(f"column {self.name!r}: dimensions are a positive length of an embedding column's vectors")
        if self.datetime and self.kind != "numeric":
            raise ValueError(f"column {self.name!r}: a datetime column is numeric (epoch seconds), got kind {self.kind!r}")
        if self.role not in ("feature", "output"):
            raise ValueError(f"column {self.name!r}: role must be 'feature' or 'output', got {self.role!r}")
        allowed = {"numeric": NUMERIC_METHODS, "categorical": CATEGORICAL_METHODS, "embedding": methods.EMBEDDING_METHODS}[self.kind]
        if self.method != "auto" and self.method not in allowed:
            raise ValueError(
                f"column {self.name!r}: method {self.method!r} is not available for {self.kind} columns; "
                f"choose auto or one of {', '.join(sorted(allowed))}"
            )
        if self.threshold is not None and not self.threshold > 0:
            raise ValueError(f"column {self.name!r}: threshold must be > 0, got {self.threshold!r}")


@dataclass(frozen=True)
class EngineSettings:
    """Window-level decisions (defaults and their false-alarm rates: docs/drift-methods.md).

    `auto="driftwatch"`: permutation tests at the window's size, BH across the window's columns at
    level 0.01, and a column drifts only when its effect size also reaches the minimum; the dataset
    drifts when `dataset_drift_share` of the features drift. `auto="evidently"`: Evidently's
    DataDriftPreset exactly (level 0.05, no effect gate).
    """

    dataset_drift_share: float = 0.5
    multiple_testing: Literal["bh", "none"] = "bh"
    large_reference_rows: int = 1000
    psi_bins: int = 10
    alpha: float | None = None
    """The tests' level; None: 0.01 in driftwatch mode, Evidently's 0.05 in evidently mode."""
    auto: methods.AutoMode = "driftwatch"
    min_effect_numeric: float = 0.1
    """Smallest shift a test may flag, in normed Wasserstein (W1 / reference std)."""
    min_effect_categorical: float = 0.03
    """Smallest shift a test may flag, in total variation of the category (or value) shares."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.dataset_drift_share <= 1.0:
            raise ValueError(f"dataset_drift_share must be within [0, 1], got {self.dataset_drift_share!r}")
        if self.multiple_testing not in ("bh", "none"):
            raise ValueError(f"multiple_testing must be 'bh' or 'none', got {self.multiple_testing!r}")
        if self.psi_bins < 2:
            raise ValueError(f"psi_bins must be >= 2, got {self.psi_bins!r}")
        if self.alpha is not None and not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be within (0, 1), got {self.alpha!r}")
        if self.auto not in methods.AUTO_MODES:
            raise ValueError(f"auto must be one of {', '.join(methods.AUTO_MODES)}, got {self.auto!r}")
        if not (self.min_effect_numeric >= 0 and self.min_effect_categorical >= 0):
            raise ValueError("min_effect_numeric and min_effect_categorical must be >= 0")

    @property
    def level(self) -> float:
        """The level every test of a window shares (so BH has one)."""
        if self.alpha is not None:
            return self.alpha
        return DRIFTWATCH_LEVEL if self.auto == "driftwatch" else EVIDENTLY_LEVEL

    @property
    def gated(self) -> bool:
        """Tests must also reach the minimum effect size (driftwatch mode); Evidently's mode decides on
        the p-value alone."""
        return self.auto == "driftwatch"

    def min_effect(self, metric: str) -> float:
        if metric == EFFECT_EMBEDDING:
            return 0.0
        return self.min_effect_numeric if metric == EFFECT_NUMERIC else self.min_effect_categorical


def resolve_method(kind: Kind, method: str, n_reference: int, n_distinct: int, settings: EngineSettings) -> str:
    """The concrete method for `auto` in the settings' mode (driftwatch's tests, or Evidently's choice).

    Evidently decides per window from the reference *and* current distinct values; we decide once from
    the reference alone so a column's method (and its metric label) never flips between windows.
    """
    if method != "auto":
        return method
    if kind == "embedding":
        return methods.vector_method()
    return methods.auto_choice(auto_case(kind, n_reference, n_distinct, settings))


def auto_case(kind: Kind, n_reference: int, n_distinct: int, settings: EngineSettings) -> methods.AutoCase:
    """Which of the registry's `auto` situations a column is in, in the settings' mode."""
    small = n_reference <= settings.large_reference_rows
    # A numeric reference without a value is not "few distinct values": it must never fall back to a
    # categorical test (the column is untested either way, but its method label must stay numeric).
    discrete = kind == "categorical" or 0 < n_distinct <= AUTO_DISCRETE_MAX_VALUES
    if settings.auto == "driftwatch":
        return "discrete" if discrete else "continuous"
    if discrete:
        if not small:
            return "large_discrete"
        return "small_binary" if n_distinct <= 2 else "small_discrete"
    return "small_continuous" if small else "large_continuous"


def default_threshold(method: str, settings: EngineSettings) -> float:
    """The registry's default; every test shares the settings' one level, so BH has one."""
    declared = methods.get(method)
    return settings.level if declared.yields == "p_value" else declared.default_threshold


def specs_from_config(config: Config | ModelConfig, model: str | ModelConfig | None = None) -> tuple[list[ColumnSpec], EngineSettings]:
    """Column specs and engine settings for one model of a `Config` (or for a bare `ModelConfig`).

    Precedence per column: the feature's own `drift` fields that were set, then the model's (or the
    defaults') per-type policy, then `auto` with the method's default threshold.
    """
    cfg: Any = config  # duck-typed: a Config has `models`, a ModelConfig has `features`
    if hasattr(cfg, "models"):
        model_cfg = _pick_model(cfg, model)
        policy = cfg.drift_policy(model_cfg)
    else:
        model_cfg = cfg
        policy = getattr(model_cfg, "drift", None)
    settings = EngineSettings() if policy is None else EngineSettings(
        dataset_drift_share=float(policy.dataset_drift_share),
        multiple_testing=policy.multiple_testing,
        large_reference_rows=int(policy.large_reference_rows),
        psi_bins=int(policy.psi_bins),
        auto=policy.auto,
        alpha=None if policy.alpha is None else float(policy.alpha),
        min_effect_numeric=float(policy.min_effect_numeric),
        min_effect_categorical=float(policy.min_effect_categorical),
    )
    groups: tuple[tuple[Role, Any], ...] = (("feature", model_cfg.drift_features), ("output", model_cfg.drift_outputs))
    specs = [_column_spec(col, role, policy) for role, cols in groups for col in cols]
    return specs, settings


def _pick_model(config: Any, model: str | Any | None) -> Any:
    if model is None:
        if len(config.models) != 1:
            names = ", ".join(m.key for m in config.models)
            raise ValueError(f"the config has {len(config.models)} models ({names}); name one")
        return config.models[0]
    if not isinstance(model, str):
        return model
    try:
        return config.named(model)
    except KeyError as exc:
        raise ValueError(getattr(exc, "reason", str(exc))) from None


def _column_spec(col: Any, role: Role, policy: Any) -> ColumnSpec:
    type_policy = getattr(policy, col.type, None) if policy is not None else None
    method = getattr(type_policy, "method", "auto")
    threshold = getattr(type_policy, "threshold", None)
    override = getattr(col, "drift", None)
    if override is not None:
        explicit = getattr(override, "model_fields_set", {"method", "threshold"})
        if "method" in explicit:
            method = override.method
            threshold = None  # a new method does not inherit the type policy's threshold
        if "threshold" in explicit:
            threshold = override.threshold
    return ColumnSpec(
        name=col.name,
        kind=col.type,
        method=method,
        threshold=threshold,
        role=role,
        min_value=getattr(col, "min_value", None),
        max_value=getattr(col, "max_value", None),
        datetime=bool(getattr(col, "datetime", False)),
        dimensions=getattr(getattr(col, "embedding", None), "dimensions", None),
    )
