"""Two-sample tests on category counts: chi-square contingency, two-proportion z, Fisher exact.

All take aligned count vectors (one entry per category, reference and current) and return
(statistic, p-value). They are *two-sample* tests: the reference is a sample too, not the truth.
Evidently's `chisquare` instead tests the current counts against expected counts scaled from the
reference (a one-sample goodness-of-fit test); that ignores the reference's own sampling noise and
flags unchanged data far above its nominal rate (see tests/drift/test_categorical.py).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

Counts = NDArray[np.float64]


def chisquare_two_sample(ref: Counts, cur: Counts) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x K table, no continuity correction.

    Same as `scipy.stats.chi2_contingency(table, correction=False)` after dropping all-zero columns;
    with fewer than two observed categories the samples cannot differ: (0, 1).
    """
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]]).astype(np.float64)
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof))


def z_two_proportion(ref: Counts, cur: Counts) -> tuple[float, float]:
    """Pooled two-proportion z-test on a two-valued column (share of the first category).

    z squared equals the 2 x 2 chi-square statistic above, so both tests agree on binary columns.
    """
    n1, n2 = float(ref.sum()), float(cur.sum())
    if ref.size != 2 or n1 == 0 or n2 == 0:
        return 0.0, 1.0
    p1, p2 = ref[0] / n1, cur[0] / n2
    pooled = (ref[0] + cur[0]) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0:
        return 0.0, 1.0
    z = float((p1 - p2) / math.sqrt(var))
    return z, float(2.0 * stats.norm.sf(abs(z)))


def fisher_exact(ref: Counts, cur: Counts) -> tuple[float, float]:
    """Fisher's exact test on the 2 x 2 table; statistic is scipy's (sample) odds ratio."""
    if ref.size != 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0
    table = np.vstack([ref, cur]).astype(np.int64)
    res = stats.fisher_exact(table)
    return float(res.statistic), float(res.pvalue)


TESTS = {"chisquare": chisquare_two_sample, "z": z_two_proportion, "fisher_exact": fisher_exact}
