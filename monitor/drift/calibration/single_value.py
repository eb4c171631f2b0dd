"""Single-valued reference columns (step 6): Fisher's exact test on the window values that differ.

A reference holding one value has no null variation to bootstrap; with none of its n rows differing,
k differing values of an m-row window have the exact two-sample p-value C(m, k) / C(n + m, k).
"""

from __future__ import annotations

import math

from scipy import special


def single_value_p(n_ref: float, m: float, k: float) -> float:
    """One-sided Fisher exact p-value of k of m window values differing from a reference whose n_ref
    values are all one value: the chance that all k differing values of the pooled n_ref + m rows land
    in the window, C(m, k) / C(n_ref + m, k). Exact under the two-sample null, whatever the true share."""
    if k <= 0:
        return 1.0
    log_p = special.gammaln(m + 1) - special.gammaln(m - k + 1) - special.gammaln(n_ref + m + 1) + special.gammaln(n_ref + m - k + 1)
    return float(math.exp(log_p))


def min_outside(n_ref: float, m: int, alpha: float) -> int:
    """The fewest differing values of an m-row window that alarm at level alpha (m + 1: none can)."""
    return next((k for k in range(1, m + 1) if single_value_p(n_ref, m, k) <= alpha), m + 1)
