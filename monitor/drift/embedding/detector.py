"""The always-on embedding drift test: one window against a prepared `EmbeddingProfile`.

Three families of tests, each on every dimension or component, combined by a weighted Bonferroni
rule into one p-value whose false-alarm rate is at most `alpha` under no change, however the
dimensions are correlated (docs/drift-methods.md, "Embeddings"):

- location: Welch's t per dimension (`scipy.stats.ttest_ind(equal_var=False)`, same t, df and p);
- dispersion: the log ratio of the window's to the reference's variance per dimension, standardised
  by its large-sample standard error from the reference's kurtosis, Var(log s^2) ~ kappa/m -
  (m-3)/(m(m-1)) (valid for any distribution with four moments; the F test's is right only for
  normal data), with the two log-variances' bias Var/2 removed; a window constant where the
  reference is not (a sparse dimension's all-zero window) gets the chance of that under no change,
  bounded by the reference's largest share of one value to the power m - 1;
- shape: two-sample Kolmogorov-Smirnov per principal component (the window's projections against
  held-out reference projections) and on the squared residual norm off the components. The CDFs are
  compared at the profile's grid of held-out quantiles, from both sides of each grid point; with at
  most GRID held-out rows that is every held-out value and D is exactly scipy's `ks_2samp` statistic,
  above it D on the grid is at most the full D, so the p-value from the same null is conservative
  (the lost resolution, 1/GRID, is a tenth of the smallest D detectable at 100k rows).

Each family gets a third of alpha, split evenly over its tests; the overall p-value is
min over tests of p / weight (capped at 1). A window of 100k x 768 costs one pass over its rows (sums,
sums of squares, a 768 x k projection) plus k + 1 sorts of the window's projections: ~0.5 s on 2 cores (benchmarks/embedding_drift.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from monitor.drift.embedding.moments import ROUNDING, THREADS, check_matrix, window_sums
from monitor.drift.embedding.profile import EmbeddingProfile

F64 = NDArray[np.float64]
DEFAULT_ALPHA = 0.01
FAMILIES = ("mean", "variance", "pca")
TOP = 5  # dimensions and components listed in a result, most shifted first
TINY = 1e-18
"""Means of constant dimensions this close are equal (see `welch`)."""


@dataclass(frozen=True)
class DimensionShift:
    """One dimension's tests (for reports): the window's mean minus the reference's in reference
    standard deviations, the variance ratio, and each test's raw and overall-adjusted p-value."""

    dimension: int
    mean_shift_sd: float
    mean_p: float
    variance_ratio: float
    variance_p: float
    adjusted_p: float


@dataclass(frozen=True)
class ComponentShift:
    """One principal component (`pc1`, ...) or `residual`: the KS distance and its p-values."""

    component: str
    ks: float
    p: float
    adjusted_p: float


@dataclass(frozen=True)
class EmbeddingDriftResult:
    p_value: float
    """Weighted-Bonferroni p-value of the window: drift when <= alpha."""
    drifted: bool
    alpha: float
    n_reference: int
    n_window: int
    dimensions: int
    family_p: dict[str, float]
    """Each family's Bonferroni p-value over its own tests, times 3 (its share of alpha)."""
    top_dimensions: tuple[DimensionShift, ...]
    top_components: tuple[ComponentShift, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DimensionTests:
    """Per-dimension statistics and two-sided p-values (exposed for cross-checks and reports)."""

    mean_t: F64
    mean_df: F64
    mean_p: F64
    log_variance_z: F64
    variance_p: F64
    mean_shift_sd: F64
    variance_ratio: F64


def welch(mean_r: F64, var_r: F64, n: int, mean_w: F64, var_w: F64, m: int) -> tuple[F64, F64, F64]:
    """Welch's t, Welch-Satterthwaite df and the two-sided p (scipy's `ttest_ind(equal_var=False)`)."""
    vr, vw = var_r / n, var_w / m
    se2 = vr + vw
    diff = mean_w - mean_r
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / np.sqrt(se2)
        df = se2**2 / (vr**2 / (n - 1) + vw**2 / (m - 1))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    # both samples constant in a dimension: equal means are no evidence, different ones are certain.
    # "Equal" within TINY: deviations that small square below float32's normal range, so float32
    # variances of such a dimension are 0 while its values still differ (MiniLM has two at ~1e-33).
    constant = se2 == 0
    same = np.abs(diff) <= TINY
    t = np.where(constant, np.where(same, 0.0, np.copysign(np.inf, diff)), t)
    p = np.where(constant, np.where(same, 1.0, 0.0), p)
    return t, np.where(constant, np.nan, df), p


def log_variance(var_r: F64, kurt: F64, n: int, var_w: F64, m: int) -> tuple[F64, F64]:
    """z of log(var_w / var_r) with its kurtosis-based standard error, and its two-sided normal p."""
    def v(size: int) -> F64:
        return np.maximum(kurt / size - (size - 3) / (size * (size - 1.0)), 1e-12)

    vn, vm = v(n), v(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = ((np.log(var_w) + vm / 2) - (np.log(var_r) + vn / 2)) / np.sqrt(vn + vm)
        p = special.erfc(np.abs(z) / np.sqrt(2.0))
    ref_const, win_const = var_r == 0, var_w == 0
    z = np.where(ref_const & win_const, 0.0, np.where(ref_const | win_const, np.where(win_const, -np.inf, np.inf), z))
    p = np.where(ref_const & win_const, 1.0, np.where(ref_const | win_const, 0.0, p))
    return z, p


def pooled_kurtosis(profile: EmbeddingProfile, s1: F64, s2: F64, s3: F64, s4: F64, m: int) -> F64:
    """Kurtosis (m4 / m2^2) of reference and window pooled, each about its own mean (Layard's
    estimate): the log-variance test's standard error rests on it, and the reference's alone, from a
    few hundred skewed rows, is often too low (a 500-row reference flagged 8-10% of unchanged windows
    at level 1%: benchmarks/embedding_aa.py)."""
    n = profile.n
    d = s1 / m
    m4_w = s4 - 4 * d * s3 + 6 * d * d * s2 - 3 * m * d**4
    ss_w = np.maximum(s2 - m * d * d, 0.0)
    ss_r = profile.var * (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m4_r = np.nan_to_num(profile.kurtosis) * n * (ss_r / n) ** 2
        pooled = (m4_r + np.maximum(m4_w, 0.0)) / (n + m) / ((ss_r + ss_w) / (n + m)) ** 2
    return np.asarray(pooled, dtype=np.float64)


def dimension_tests(profile: EmbeddingProfile, s1: F64, s2: F64, m: int, s3: F64 | None = None,
                    s4: F64 | None = None) -> DimensionTests:
    """Welch and log-variance tests per dimension from the window's sums about the profile's centre.
    With the 3rd and 4th power sums, the variance test's kurtosis is pooled (`pooled_kurtosis`), and a
    dimension constant in the reference but not in the window is judged by how likely so constant a
    reference is (below); without them, the reference's kurtosis, and such a dimension is drift."""
    if m < 2:
        raise ValueError(f"the window has {m} row: the embedding test needs at least 2")
    center = profile.center.astype(np.float64)
    mean_w = center + s1 / m
    spread = np.maximum(s2 - s1 * s1 / m, 0.0)
    # float32 sums about the reference centre leave ~1e-7 of s2 behind where the window is constant
    var_w = np.where(spread <= ROUNDING * s2, 0.0, spread) / (m - 1)
    # A window constant where the reference varies: its zero variance is no standard error (Welch
    # would divide by ~0 and call a sparse dimension's all-zero window certain drift), so the mean test
    # takes the reference's variance there, and the dispersion test's p-value is the chance of a
    # constant window under no change, at most (largest share of one value)^(m-1).
    only_window = (var_w == 0) & (profile.var > 0)
    t, df, p_mean = welch(profile.mean, profile.var, profile.n, mean_w, np.where(only_window, profile.var, var_w), m)
    kurtosis = profile.kurtosis if s3 is None or s4 is None else pooled_kurtosis(profile, s1, s2, s3, s4, m)
    z, p_var = log_variance(profile.var, kurtosis, profile.n, var_w, m)
    p_var = np.where(only_window, np.minimum(profile.mode_share ** (m - 1), 1.0), p_var)
    if s4 is not None:
        # The reverse: a reference constant where the window varies (a sparse dimension whose few
        # non-zero values all fell outside a small reference) is drift only if a reference of n rows
        # all at that value is unlikely under no change: q^n, with q the pooled share of the value,
        # at most (n + m - k) / (n + m) where k >= s2^2 / s4 window rows differ from it.
        only_reference = (profile.var == 0) & (var_w > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            differ = np.where(s4 > 0, np.ceil(s2 * s2 / s4 - 1e-9), 1.0)
        q = (profile.n + m - np.clip(differ, 1.0, m)) / (profile.n + m)
        p_var = np.where(only_reference, q ** profile.n, p_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = (mean_w - profile.mean) / np.sqrt(profile.var)
        ratio = var_w / profile.var
    return DimensionTests(t, df, p_mean, z, p_var, shift, ratio)


def ks_p_value(d: F64, n: int, m: int) -> F64:
    """`scipy.stats.ks_2samp(method="asymp")`'s p-value: `kstwo` at the effective size n m / (n + m)."""
    en = np.round(n * m / (n + m))
    return np.asarray(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0), dtype=np.float64)


def ks_on_grid(edges: F64, cdf_at: F64, cdf_below: F64, values: F64) -> float:
    """max over grid points e of |F_ref(e) - F_win(e)| and of the same left limits (at e-): the
    window's values sorted once, then two binary searches of the grid in them."""
    ordered = np.sort(values)
    at = np.searchsorted(ordered, edges, "right") / ordered.size
    below = np.searchsorted(ordered, edges, "left") / ordered.size
    return float(max(np.abs(cdf_at - at).max(), np.abs(cdf_below - below).max()))


def component_tests(profile: EmbeddingProfile, projections: F64) -> tuple[F64, F64]:
    """KS distance and p per component (and the residual norm), the rows split over threads."""
    def one(j: int) -> float:
        return ks_on_grid(profile.edges[j], profile.cdf_at[j], profile.cdf_below[j], projections[j])

    with ThreadPoolExecutor(THREADS) as pool:
        d = np.array(list(pool.map(one, range(projections.shape[0]))))
    return d, ks_p_value(d, profile.held_out, projections.shape[1])


def test(profile: EmbeddingProfile, window: np.ndarray, alpha: float = DEFAULT_ALPHA) -> EmbeddingDriftResult:
    """Is `window` (m x d) drawn from the reference's distribution? See the module docstring.

    ValueError for a window that is empty, not 2-D, of another width than the reference, non-finite,
    or of a single row, and for alpha outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    x = check_matrix(window, "window", profile.dim)
    if x.shape[0] < 2:
        raise ValueError(f"the window has {x.shape[0]} row: the embedding test needs at least 2")
    sums = window_sums(x, profile.center, profile.axes)
    dims = dimension_tests(profile, sums.s1, sums.s2, sums.rows, sums.s3, sums.s4)
    ks, ks_p = component_tests(profile, sums.projections)
    return combine(profile, dims, ks, ks_p, sums.rows, alpha)


def combine(profile: EmbeddingProfile, dims: DimensionTests, ks: F64, ks_p: F64, m: int, alpha: float) -> EmbeddingDriftResult:
    """Weighted Bonferroni over the three families (a third of alpha each, even within a family)."""
    d, c = dims.mean_p.size, ks_p.size
    adj_mean = np.minimum(dims.mean_p * 3 * d, 1.0)
    adj_var = np.minimum(dims.variance_p * 3 * d, 1.0)
    adj_pca = np.minimum(ks_p * 3 * c, 1.0)
    family = {"mean": float(adj_mean.min()), "variance": float(adj_var.min()), "pca": float(adj_pca.min())}
    p_value = min(family.values())
    adj_dim = np.minimum(adj_mean, adj_var)
    order = np.lexsort((-np.maximum(np.abs(dims.mean_t), np.abs(dims.log_variance_z)), adj_dim))[:TOP]
    top_dims = tuple(
        DimensionShift(int(i), float(dims.mean_shift_sd[i]), float(dims.mean_p[i]), float(dims.variance_ratio[i]),
                       float(dims.variance_p[i]), float(adj_dim[i]))
        for i in order
    )
    names = [f"pc{j + 1}" for j in range(c - 1)] + ["residual"]
    comp_order = np.lexsort((-ks, adj_pca))[:TOP]
    top_comps = tuple(ComponentShift(names[j], float(ks[j]), float(ks_p[j]), float(adj_pca[j])) for j in comp_order)
    return EmbeddingDriftResult(
        p_value=float(p_value), drifted=bool(p_value <= alpha), alpha=alpha, n_reference=profile.n, n_window=m,
        dimensions=d, family_p=family, top_dimensions=top_dims, top_components=top_comps,
    )
