"""Per-window scores and effect sizes on cell counts, vectorised over simulated windows.

`SCORES` is calibration's score table, keyed by the names the drift-method registry
(monitor.core.methods) declares as methods' calibration scores; it is checked against them at import.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from monitor.core import methods
from monitor.drift import numeric

Z_FLOOR, Z_CEIL = -8.0, 37.0
Array = NDArray[np.float64]


def ks_scores(ref: Array, win: Array) -> Array:
    """z-scores of the two-sample KS test on cell counts, row-wise ((B, K) or (K,) arrays).

    D is the largest gap between the cumulative shares; the p-value is Kolmogorov's asymptotic one with
    Stephens' small-sample correction (lambda = (sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D)."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    nr, nw = ref.sum(axis=1), win.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.cumsum(ref, axis=1)[:, :-1] / nr[:, None]
        cw = np.cumsum(win, axis=1)[:, :-1] / nw[:, None]
        d = np.abs(cr - cw).max(axis=1, initial=0.0)
        en = nr * nw / (nr + nw)
        lam = (np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d
    return _z(special.kolmogorov(lam), valid=(nr > 0) & (nw > 0))


def chisquare_scores(ref: Array, win: Array) -> Array:
    """z-scores of the two-sample chi-square test of homogeneity on cell counts, row-wise
    (the vectorised twin of `categorical.chisquare_two_sample`)."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    nr, nw = ref.sum(axis=1, keepdims=True), win.sum(axis=1, keepdims=True)
    col = ref + win
    keep = col > 0
    total = nr + nw
    with np.errstate(invalid="ignore", divide="ignore"):
        er, ew = nr * col / total, nw * col / total
        terms = np.where(keep, (ref - er) ** 2 / er + (win - ew) ** 2 / ew, 0.0)
    stat = terms.sum(axis=1)
    dof = keep.sum(axis=1) - 1
    p = np.where(dof > 0, stats.chi2.sf(stat, np.maximum(dof, 1)), 1.0)
    return _z(p, valid=(nr[:, 0] > 0) & (nw[:, 0] > 0))


LOCATION_SCALE_TESTS = 3
"""KS, van der Waerden and Klotz: the Sidak factor of `ks_location_scale_scores`."""
RANK_TESTS_MIN_CELLS = 22
"""Fewer cells (a numeric column of at most 20 distinct values, one cell each, or a tiny reference):
`ks_location_scale_scores` is KS alone. On a few lumpy cells (a pixel that is 0 in 70% of rows) the
rank statistics' null is a skewed lattice whose far tail is heavier than the normal fitted to the
bootstrap's upper half (measured: up to 1.5x the fitted rate at z = 3.5, and A/A alarms above the
budget on scikit-learn's digits), where KS on the same cells is conservative."""


def rank_location_scale_z(ref: Array, win: Array) -> tuple[Array, Array]:
    """Standardized two-sample linear rank statistics on cell counts, row-wise: van der Waerden's
    (location; normal scores a) and Klotz's (dispersion; squared normal scores a**2).

    Ranks are the pooled sample's mid-ranks (each cell's rows share the cell's mid-rank, the usual
    handling of ties), scores a = Phi^-1(mid-rank / (N + 1)); the window's score sum is standardized by
    its exact permutation mean and variance given the pooled cell counts, so each z is asymptotically
    N(0, 1) under no change whatever the distribution and the ties. Normal scores are bounded
    (|a| < Phi^-1(N / (N + 1))), so extreme values weigh no more than their rank. NaN where a row has
    no variation (all pooled rows in one cell) or an empty sample."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    pooled = ref + win
    big_n = pooled.sum(axis=1, keepdims=True)
    n, m = ref.sum(axis=1, keepdims=True), win.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = (np.cumsum(pooled, axis=1) - (pooled - 1.0) / 2.0) / (big_n + 1.0)
        a = special.ndtri(np.clip(mid, 1e-300, 1.0 - 1e-16))
        factor = (m * n / (big_n * (big_n - 1.0)))[:, 0]
        out = []
        for score in (a, a * a):
            centered = score - (pooled * score).sum(axis=1, keepdims=True) / big_n
            var = factor * (pooled * centered * centered).sum(axis=1)
            z = (win * centered).sum(axis=1) / np.sqrt(var)
            out.append(np.where(var > 1e-12, z, np.nan))
    return out[0], out[1]


def ks_location_scale_scores(ref: Array, win: Array) -> Array:
    """z-scores of the minimum p-value of three two-sample tests on cell counts, row-wise: KS
    (`ks_scores`, any difference of the distributions), van der Waerden (location) and Klotz
    (dispersion), both two-sided (`rank_location_scale_z`). Sidak's correction
    p = 1 - (1 - min p)**3 makes the minimum a p-value (exact for independent tests, conservative for
    these positively dependent ones, and equal to Bonferroni's 3 * min p in the far tail, where the
    budget's alarms are decided), without Bonferroni's atom at p = 1 that would break the upper-half
    fit of the bootstrap; z = Phi^-1(1 - p) as for the other scores. With fewer than
    `RANK_TESTS_MIN_CELLS` cells, `ks_scores` alone."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    if ref.shape[1] < RANK_TESTS_MIN_CELLS:
        return ks_scores(ref, win)
    p_ks = stats.norm.sf(ks_scores(ref, win))
    z_loc, z_disp = rank_location_scale_z(ref, win)
    p_loc = np.where(np.isnan(z_loc), 1.0, 2.0 * stats.norm.sf(np.abs(z_loc)))
    p_disp = np.where(np.isnan(z_disp), 1.0, 2.0 * stats.norm.sf(np.abs(z_disp)))
    p_min = np.minimum(np.minimum(np.nan_to_num(p_ks, nan=1.0), p_loc), p_disp)
    p = -np.expm1(LOCATION_SCALE_TESTS * np.log1p(-np.clip(p_min, 0.0, 1.0 - 1e-16)))
    return _z(p, valid=(ref.sum(axis=1) > 0) & (win.sum(axis=1) > 0))


def _z(p: Array, valid: NDArray[np.bool_]) -> Array:
    z = np.clip(stats.norm.isf(np.clip(p, 1e-300, 1.0)), Z_FLOOR, Z_CEIL)
    return np.where(valid, z, np.nan)


SCORES = {"ks_location_scale": ks_location_scale_scores, "chisquare": chisquare_scores}

if set(SCORES) != methods.CALIBRATION_SCORES:
    raise RuntimeError(f"calibration scores {sorted(SCORES)} disagree with the registry's {sorted(methods.CALIBRATION_SCORES)}")


def wasserstein_cells(ref: Array, win: Array, edges: Array, std: float) -> Array:
    """Normed W1 from cell counts (CDF gaps times the widths between inner edges), row-wise: the
    effect size of simulated windows, where raw values do not exist."""
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    if edges.size < 2:
        return np.zeros(win.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.cumsum(ref, axis=1)[:, :-1] / ref.sum(axis=1, keepdims=True)
        cw = np.cumsum(win, axis=1)[:, :-1] / win.sum(axis=1, keepdims=True)
    gaps = np.abs(cr - cw)[:, :-1]
    return (gaps * np.diff(edges)).sum(axis=1) / max(std, numeric.WASSERSTEIN_MIN_STD)


def total_variation_cells(ref: Array, win: Array) -> Array:
    ref, win = np.atleast_2d(ref), np.atleast_2d(win)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * np.abs(ref / ref.sum(axis=1, keepdims=True) - win / win.sum(axis=1, keepdims=True)).sum(axis=1)
