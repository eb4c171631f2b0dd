"""Distances between two binned distributions, given as aligned count vectors (pure numpy).

Numeric histograms and categorical frequencies share these, so every method is defined once. Natural
logarithms throughout (as scipy's `entropy` and `jensenshannon` with `base=None`, which Evidently uses).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Counts = NDArray[np.float64]


def shares(counts: Counts) -> Counts:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def fill_empty(p: Counts) -> Counts:
    """Evidently's empty-bin rule for PSI and KL: zeros become min(non-zero)/1e6 if that minimum is
    <= 1e-4, else 1e-4; shares are not renormalised afterwards (matching Evidently bit for bit)."""
    nonzero = p[p > 0]
    if nonzero.size == 0 or nonzero.size == p.size:
        return p
    smallest = nonzero.min()
    eps = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return np.where(p > 0, p, eps)


def psi(ref: Counts, cur: Counts) -> float:
    """Population stability index: sum((r - c) * ln(r / c)) over bins, empty bins filled (see `fill_empty`)."""
    r, c = fill_empty(shares(ref)), fill_empty(shares(cur))
    return float(np.sum((r - c) * np.log(r / c)))


def kl_div(ref: Counts, cur: Counts) -> float:
    """Kullback-Leibler divergence KL(reference || current), natural log, empty bins filled like PSI."""
    r, c = fill_empty(shares(ref)), fill_empty(shares(cur))
    r, c = r / r.sum(), c / c.sum()  # scipy.stats.entropy normalises its inputs; so do we
    mask = r > 0
    return float(np.sum(r[mask] * np.log(r[mask] / c[mask])))


def jensenshannon(ref: Counts, cur: Counts) -> float:
    """Jensen-Shannon *distance* (square root of the divergence), natural log: within [0, sqrt(ln 2)]."""
    p, q = shares(ref), shares(cur)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log(p / m), 0.0)
        kq = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (kp.sum() + kq.sum()) / 2.0
    return float(np.sqrt(max(js, 0.0)))


def hellinger(ref: Counts, cur: Counts) -> float:
    """Hellinger distance sqrt(1 - sum(sqrt(p*q))), within [0, 1], computed as the equal but
    cancellation-free ||sqrt(p) - sqrt(q)|| / sqrt(2) so identical distributions give exactly 0."""
    diff = np.sqrt(shares(ref)) - np.sqrt(shares(cur))
    return float(min(1.0, np.sqrt(0.5 * np.sum(diff * diff))))


def linf(ref: Counts, cur: Counts) -> float:
    """L-infinity (Chebyshev) distance of the share vectors, TFDV's categorical drift measure."""
    return float(np.max(np.abs(shares(ref) - shares(cur)))) if ref.size else 0.0


def total_variation(ref: Counts, cur: Counts) -> float:
    """Total variation distance: half the L1 distance of the share vectors, within [0, 1]."""
    return float(0.5 * np.sum(np.abs(shares(ref) - shares(cur))))


DISTANCES = {
    "psi": psi,
    "kl_div": kl_div,
    "jensenshannon": jensenshannon,
    "hellinger": hellinger,
    "linf": linf,
    "total_variation": total_variation,
}
