"""Benjamini-Hochberg adjustment: with many unchanged features in a window, a p-value test at 0.05
would page on ~5% of features every window; BH bounds the expected share of false discoveries instead."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """BH-adjusted p-values (step-up, `scipy.stats.false_discovery_control(method="bh")`); NaN entries
    stay NaN and do not count towards the number of tests."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out
    pv = p[valid]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.clip(ranked, 0.0, 1.0)
    out[valid] = adjusted
    return out
