"""What `driftwatch calibrate` prints: per column thresholds, expected false alarms and the
smallest detectable shift, and the JSON document of `--json`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.drift.calibration.plan import Progress
from monitor.drift.calibration.power import detectable_shift
from monitor.drift.calibration.rules import Calibration, FeatureCalibration
from monitor.drift.profile import ReferenceProfile
from monitor.drift.result import json_safe
from monitor.drift.vectors import EmbeddingColumnProfile


def calibration_table(calibration: Calibration, profile: ReferenceProfile, within: int = 3, sims: int = 400,
                      progress: Progress | None = None) -> list[dict[str, Any]]:
    """Per column: the thresholds, expected false alarms per period and the smallest detectable shift
    (what `driftwatch calibrate` prints)."""
    rows = []
    names = list(calibration.features)
    for i, name in enumerate(names):
        cal = calibration.features[name]
        column = profile.columns.get(name)
        shift = math.inf
        if column is not None and not isinstance(column, EmbeddingColumnProfile):
            shift = detectable_shift(cal, calibration, column, within, sims=sims)
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
