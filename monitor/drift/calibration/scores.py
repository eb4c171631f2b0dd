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


def _z(p: Array, valid: NDArray[np.bool_]) -> Array:
    z = np.clip(stats.norm.isf(np.clip(p, 1e-300, 1.0)), Z_FLOOR, Z_CEIL)
    return np.where(valid, z, np.nan)


SCORES = {"ks": ks_scores, "chisquare": chisquare_scores}

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
