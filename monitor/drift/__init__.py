"""The drift engine: pure statistics (numpy, scipy, pandas), no I/O.

    profile = build_profile(reference_df, specs, settings)   # once per reference
    result = evaluate(profile, window_df)                     # per window, costs the window's work
    detect(reference_df, current_df, config=None)             # both at once, for notebooks

Methods, binning, thresholds and edge-case rules: docs/drift-methods.md.
"""

from monitor.drift.engine import detect, evaluate, infer_specs
from monitor.drift.multiple import benjamini_hochberg
from monitor.drift.profile import ReferenceProfile, build_profile, unusable_columns
from monitor.drift.result import DatasetResult, DriftResult, FeatureResult, QualityResult
from monitor.drift.spec import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    P_VALUE_METHODS,
    ColumnSpec,
    EngineSettings,
    specs_from_config,
)

__all__ = [
    "CATEGORICAL_METHODS",
    "NUMERIC_METHODS",
    "P_VALUE_METHODS",
    "ColumnSpec",
    "DatasetResult",
    "DriftResult",
    "EngineSettings",
    "FeatureResult",
    "QualityResult",
    "ReferenceProfile",
    "benjamini_hochberg",
    "build_profile",
    "detect",
    "evaluate",
    "infer_specs",
    "specs_from_config",
    "unusable_columns",
]
