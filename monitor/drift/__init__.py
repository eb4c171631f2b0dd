"""The drift engine: pure statistics (numpy, scipy, pandas), no I/O.

    profile = build_profile(reference_df, specs, settings)   # once per reference
    result = evaluate(profile, window_df)                     # per window, costs the window's work
    detect(reference_df, current_df, config=None)             # both at once, for notebooks

Methods, binning, thresholds and edge-case rules: docs/drift-methods.md.

The names below load their module on first use (PEP 562), so importing `monitor.drift.result` or
`monitor.drift.spec` (the results the idle monitor publishes) does not load pandas and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {
    **dict.fromkeys(("detect", "evaluate", "infer_specs"), "engine"),
    "benjamini_hochberg": "multiple",
    **dict.fromkeys(("ReferenceProfile", "build_profile", "unusable_columns"), "profile"),
    **dict.fromkeys(("DatasetResult", "DriftResult", "FeatureResult", "QualityResult"), "result"),
    **dict.fromkeys(
        ("CATEGORICAL_METHODS", "NUMERIC_METHODS", "P_VALUE_METHODS", "ColumnSpec", "EngineSettings", "specs_from_config"),
        "spec",
    ),
}

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value
