"""Benjamini-Hochberg adjustment against scipy's."""

from __future__ import annotations

import numpy as np
from scipy import stats

from monitor.drift import benjamini_hochberg


def test_matches_scipy_false_discovery_control() -> None:
    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 50, 500):
        p = np.concatenate([rng.uniform(size=m - m // 5), rng.uniform(0, 1e-3, m // 5)])
        np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


def test_nan_entries_are_kept_and_not_counted() -> None:
    adjusted = benjamini_hochberg([0.01, np.nan, 0.04])
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], stats.false_discovery_control([0.01, 0.04]))
    assert np.isnan(benjamini_hochberg([np.nan])).all()
    assert benjamini_hochberg([]).size == 0


def test_adjusted_values_never_fall_below_raw_and_stay_within_one() -> None:
    p = np.array([0.9, 0.001, 0.5, 0.02, 1.0])
    adjusted = benjamini_hochberg(p)
    assert (adjusted >= p).all() and (adjusted <= 1).all()
