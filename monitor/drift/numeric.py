"""Two-sample statistics on *sorted, finite* numeric samples (pure numpy/scipy).

The reference side comes precomputed from the profile (sorted sample, centred prefix sums), the window
is sorted once; KS then costs O(m log n) for a window of m rows against a reference of n rows, and
Wasserstein O(min(m log n, n + m)). Results equal scipy's on the same data (tests/drift).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

Array = NDArray[np.float64]

# scipy's ks_2samp(method="auto") computes exact p-values up to this sample size, asymptotic above.
KS_EXACT_MAX_N = 10_000
# scipy's cramervonmises_2samp(method="auto") is exact up to this sample size.
CVM_EXACT_MAX_N = 20
# Evidently's normed Wasserstein divides by max(std, 0.001): a constant reference keeps a finite score.
WASSERSTEIN_MIN_STD = 0.001


def ks_statistic(ref: Array, cur: Array) -> float:
    """sup |F_ref - F_cur|. Between window points F_cur is flat and F_ref monotone, so the supremum is
    reached at a window point, from the right or from the left: four binary searches of the window."""
    n, m = ref.size, cur.size
    right = np.abs(np.searchsorted(ref, cur, "right") / n - np.searchsorted(cur, cur, "right") / m)
    left = np.abs(np.searchsorted(ref, cur, "left") / n - np.searchsorted(cur, cur, "left") / m)
    return float(max(right.max(), left.max()))


def ks_test(ref: Array, cur: Array) -> tuple[float, float]:
    """Two-sided two-sample KS: (D, p), identical to `scipy.stats.ks_2samp` (method="auto")."""
    n, m = ref.size, cur.size
    if max(n, m) <= KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # exact -> asymptotic fallback notice
            res = stats.ks_2samp(ref, cur)
        return float(res.statistic), float(res.pvalue)
    d = ks_statistic(ref, cur)
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    return d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def prefix_sums(ref: Array, center: float) -> Array:
    """Cumulative sums of the centred reference, P[k] = sum(ref[:k] - center); centring keeps the
    differences below well conditioned for large samples and offsets."""
    out = np.empty(ref.size + 1, dtype=np.float64)
    out[0] = 0.0
    np.cumsum(ref - center, out=out[1:])
    return out


def wasserstein(ref: Array, prefix: Array, center: float, cur: Array) -> float:
    """W1 = integral of |F_ref - F_cur|, equal to `scipy.stats.wasserstein_distance`.

    Two exact algorithms, the cheaper one for the sizes at hand: a window much smaller than the
    reference (m log n < n) integrates the CDFs against the reference's prefix sums, O(m log n);
    otherwise the two quantile functions are merged, O(n + m) without any search.
    """
    n, m = ref.size, cur.size
    if m * math.log2(max(n, 2)) < n:
        return _wasserstein_prefix(ref, prefix, center, cur)
    return _wasserstein_merged(ref, cur)


def _wasserstein_merged(x: Array, y: Array) -> float:
    """W1 = integral over u in (0, 1] of |Q_x(u) - Q_y(u)|, both quantile functions step functions.

    On the common grid of p*q units (p >= q the sizes), the larger sample's step a spans
    (a*q, (a+1)*q]; it starts inside the smaller sample's step b = floor(a*q / p), which ends at
    (b+1)*p, and since q <= p it reaches at most into step b + 1. So W1 * p * q is a sum over a of
    two weighted terms (see `_merge_grid`). Equal sizes are the special case b = a with no second
    term: the mean of |x_(i) - y_(i)|.
    """
    if x.size < y.size:
        x, y = y, x
    p, q = x.size, y.size
    if p == q:
        return float(np.mean(np.abs(x - y)))
    step, first, second = _merge_grid(p, q)
    buf = np.take(y, step)
    total = _weighted_abs_sum(x, buf, first)
    padded = np.append(y, y[-1])  # y[b + 1] for b = q - 1 has weight 0; the pad keeps the gather in bounds
    np.take(padded[1:], step, out=buf)
    total += _weighted_abs_sum(x, buf, second)
    return float(total / p / q)


def _weighted_abs_sum(x: Array, buf: Array, weights: Array) -> float:
    """sum(weights * |x - buf|), computed in `buf` (no temporaries; numpy's pairwise sum)."""
    np.subtract(x, buf, out=buf)
    np.abs(buf, out=buf)
    np.multiply(buf, weights, out=buf)
    return float(buf.sum())


@functools.lru_cache(maxsize=2)
def _merge_grid(p: int, q: int) -> tuple[NDArray[np.intp], Array, Array]:
    """For each step a of the larger sample: the smaller sample's step b it starts in, and the
    lengths (in 1/(p*q) units) of its overlaps with b and b + 1. Depends on the sizes only, so the
    columns of a window (and consecutive windows of one size) share it; cached read-only."""
    start = np.arange(p, dtype=np.intp) * q
    step = start // p
    first = np.minimum((step + 1) * p - start, q).astype(np.float64)
    second = q - first
    for arr in (step, first, second):
        arr.flags.writeable = False
    return step, first, second


def _wasserstein_prefix(ref: Array, prefix: Array, center: float, cur: Array) -> float:
    """With H(x) = integral of F_ref up to x = (k(x) * x - P[k(x)]) / n, each stretch between window
    points (where F_cur is a constant g) splits where F_ref crosses g (at ref[ceil(g*n) - 1]) into two
    pieces with closed-form integrals."""
    n, m = ref.size, cur.size
    r_top = ref[-1] - center
    c = cur - center
    k = np.searchsorted(ref, cur, "right")
    h = (k * c - prefix[k]) / n  # H at each window point

    total = h[0]  # left tail: F_cur = 0 before the first window point
    if m > 1:
        a, b, ha, hb = c[:-1], c[1:], h[:-1], h[1:]
        j = np.arange(1, m, dtype=np.int64)
        g = j / m
        i_star = (j * n + m - 1) // m  # smallest i with i/n >= g (1-based)
        q = ref[i_star - 1] - center
        hq = (i_star * q - prefix[i_star]) / n
        s = np.clip(q, a, b)
        hs = np.where(q <= a, ha, np.where(q >= b, hb, hq))
        total += float(np.sum(g * (s - a) - (hs - ha) + (hb - hs) - g * (b - s)))
    if r_top > c[-1]:  # right tail: F_cur = 1 after the last window point
        total += (r_top - c[-1]) - ((n * r_top - prefix[n]) / n - h[-1])
    return float(max(total, 0.0))


def wasserstein_normed(ref: Array, prefix: Array, center: float, std: float, cur: Array) -> float:
    """W1 / max(std(reference), 0.001), Evidently's `wasserstein` drift score."""
    return wasserstein(ref, prefix, center, cur) / max(std, WASSERSTEIN_MIN_STD)


def _merged_cdfs(ref: Array, cur: Array) -> tuple[Array, Array, Array]:
    """Both empirical CDFs on the pooled sorted values (a stable sort of two sorted runs is a merge)."""
    pooled = np.concatenate([ref, cur])
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    from_ref = order < ref.size
    f_ref = np.cumsum(from_ref) / ref.size
    f_cur = np.cumsum(~from_ref) / cur.size
    return values, f_ref, f_cur


def energy_distance(ref: Array, cur: Array) -> float:
    """sqrt(2 * integral of (F_ref - F_cur)^2), equal to `scipy.stats.energy_distance`."""
    values, f_ref, f_cur = _merged_cdfs(ref, cur)
    deltas = np.diff(values)
    return float(math.sqrt(2.0 * np.sum((f_ref[:-1] - f_cur[:-1]) ** 2 * deltas)))


def _midranks(sample: Array, other: Array) -> Array:
    """Average ranks of a sorted sample's points within the pooled sample (ties share their mean rank)."""
    lt = np.searchsorted(sample, sample, "left") + np.searchsorted(other, sample, "left")
    le = np.searchsorted(sample, sample, "right") + np.searchsorted(other, sample, "right")
    return (lt + le + 1) / 2.0


def _cdf_cvm_inf(x: float) -> float:
    """CDF of the limiting Cramér-von Mises distribution (Csörgő & Faraway 1996, eq. 1.2), summed
    until terms drop below 1e-7 like scipy's private `_cdf_cvm_inf`."""
    total, k = 0.0, 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (math.pi**1.5 * math.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        term = u * math.sqrt(y) * math.exp(-q) * float(special.kv(0.25, q))
        total += term
        if abs(term) < 1e-7:
            return total
        k += 1


def cramer_von_mises(ref: Array, cur: Array) -> tuple[float, float]:
    """Two-sample Cramér-von Mises (T, p), equal to `scipy.stats.cramervonmises_2samp` (auto method)."""
    n, m = ref.size, cur.size
    if n < 2 or m < 2:
        return math.nan, math.nan
    if max(n, m) <= CVM_EXACT_MAX_N:
        res = stats.cramervonmises_2samp(ref, cur)
        return float(res.statistic), float(res.pvalue)
    rx, ry = _midranks(ref, cur), _midranks(cur, ref)
    u = n * np.sum((rx - np.arange(1, n + 1)) ** 2) + m * np.sum((ry - np.arange(1, m + 1)) ** 2)
    k, big_n = n * m, n + m
    t = float(u / (k * big_n) - (4 * k - 1) / (6 * big_n))
    et = (1 + 1 / big_n) / 6
    vt = (big_n + 1) * (4 * k * big_n - 3 * (n**2 + m**2) - 2 * k) / (45 * big_n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    p = 1.0 if tn < 0.003 else max(0.0, 1.0 - _cdf_cvm_inf(tn))
    return t, p


def anderson_darling(ref: Array, cur: Array) -> tuple[float, float]:
    """k-sample Anderson-Darling (statistic, p) via `scipy.stats.anderson_ksamp`.

    scipy interpolates its p-value from a table and caps it to [0.001, 0.25]; we report that value.
    Undefined (NaN) when the pooled sample has a single distinct value.
    """
    if ref.size == 0 or cur.size == 0 or ref[0] == ref[-1] == cur[0] == cur[-1]:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "p-value capped/floored" notices
        res = stats.anderson_ksamp([ref, cur])
    return float(res.statistic), float(res.pvalue)


def sturges_edges(lo: float, hi: float, n_total: int) -> Array:
    """`np.histogram_bin_edges(pooled, bins="sturges")` from the pooled min, max and size alone.

    This is the binning Evidently uses for Jensen-Shannon, PSI and KL on continuous columns; the same
    floating-point steps as numpy so the edges match bit for bit.
    """
    width = (hi - lo) / (np.log2(n_total) + 1.0)
    bins = int(np.ceil((hi - lo) / width)) if width else 1
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1, endpoint=True)


def histogram_sorted(sample: Array, edges: Array) -> Array:
    """`np.histogram(sample, edges)[0]` for a sorted sample within [edges[0], edges[-1]]: bins are
    [e_i, e_i+1) with the last one closed, counted by binary search instead of a pass over the data."""
    cuts = np.searchsorted(sample, edges[1:-1], "left")
    bounds = np.concatenate([[0], cuts, [sample.size]])
    return np.diff(bounds).astype(np.float64)


def binned_counts(sample: Array, inner_edges: Array) -> Array:
    """Counts in (-inf, e1], (e1, e2], ..., (ek, inf) for a sorted sample (PSI's reference-quantile bins)."""
    cuts = np.searchsorted(sample, inner_edges, "right")
    bounds = np.concatenate([[0], cuts, [sample.size]])
    return np.diff(bounds).astype(np.float64)


def count_distinct(sample: Array) -> int:
    """Number of distinct values of a sorted sample (one comparison pass)."""
    return int(np.count_nonzero(sample[1:] != sample[:-1])) + 1 if sample.size else 0


def distinct_sorted(sample: Array) -> tuple[Array, Array]:
    """Distinct values of a sorted sample and their counts, in one pass (np.unique would re-sort)."""
    if sample.size == 0:
        return sample, np.empty(0)
    starts = np.flatnonzero(np.concatenate([[True], sample[1:] != sample[:-1]]))
    return sample[starts], np.diff(np.append(starts, sample.size)).astype(np.float64)


def quantiles_sorted(sample: Array, qs: Array) -> Array:
    """Linear-interpolated quantiles of a sorted sample (numpy's default method) without re-sorting."""
    if sample.size == 0:
        return np.full(qs.shape, np.nan)
    pos = qs * (sample.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, sample.size - 1)
    return sample[lo] + (sample[hi] - sample[lo]) * (pos - lo)
