"""The embedding reference profile: what the always-on test needs from an n x d reference, computed once.

Per dimension: mean, variance and kurtosis (the variance test's standard error). Across dimensions:
the top-k principal axes and, for each, the CDF of the *held-out* reference projections on a grid of
their quantiles (the 1-D KS test per component), plus the same for the held-out squared residual norms
off those axes (the KS test for change outside them).

The reference rows are split by a seeded permutation: the principal axes are fitted on one part and
the projections taken on the other. Projections of the rows the axes were fitted on are not
exchangeable with a new window's (the fit maximises their variance: with d/n = 768/50,000 the top
sample eigenvalue of isotropic data is ~18% above the true one), so a window from the same
distribution would be flagged. Held-out rows are exchangeable with the window's under no change.

Everything is a numpy array or a number (`to_arrays` / `from_arrays`), so the runtime can store a
profile with `np.savez` and load it without pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from monitor.drift.embedding.moments import check_matrix, column_moments, window_sums

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

DEFAULT_COMPONENTS = 32
MAX_FIT_ROWS = 50_000  # rows the principal axes are fitted on (their covariance: ~1 s at 50k x 768)
POWER_ITERATIONS = 6
OVERSAMPLE = 10
MAX_HELD_OUT = 100_000  # held-out rows projected (the KS test's reference side)
GRID = 4096  # KS grid points per component: every held-out value when there are at most this many
MODE_ROWS = 20_000  # rows the largest share of one value per dimension is counted on
PROFILE_VERSION = 2


@dataclass(frozen=True, eq=False)
class EmbeddingProfile:
    """A prepared embedding reference (see the module docstring)."""

    n: int
    """Reference rows (all of them feed the per-dimension statistics)."""
    mean: F64
    var: F64
    """Per-dimension sample variance (ddof=1)."""
    kurtosis: F64
    """Per-dimension (non-excess) kurtosis m4 / m2^2, NaN for a constant dimension."""
    mode_share: F64
    """Per dimension, an upper confidence bound on the largest share of rows holding one value (1 for a
    constant dimension, ~1/MODE_ROWS for a continuous one): how likely a window is to be constant there
    under no change (`detector.dimension_tests`; a sparse dimension, 0 in 99.8% of rows, makes many
    windows constant)."""
    axes: F32
    """d x k orthonormal principal axes of the fit rows, largest variance first."""
    eigenvalues: F64
    edges: F64
    """(k + 1) x G grid per statistic (the projection on each axis, then the squared residual norm):
    held-out quantiles, or every held-out value when there are at most GRID (sorted, may repeat)."""
    cdf_at: F64
    """Share of held-out values <= each edge."""
    cdf_below: F64
    """Share of held-out values < each edge."""
    held_out: int
    """Held-out rows (the KS test's reference size)."""

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    @property
    def components(self) -> int:
        return int(self.axes.shape[1])

    @property
    def center(self) -> F32:
        """The mean as float32: windows are centred with it before any sum (keeps float32 sums exact enough)."""
        return self.mean.astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for `np.savez` (no pickles); `from_arrays` restores the profile."""
        return {
            "version": np.array(PROFILE_VERSION),
            "n": np.array(self.n),
            "mean": self.mean,
            "var": self.var,
            "kurtosis": self.kurtosis,
            "mode_share": self.mode_share,
            "axes": self.axes,
            "eigenvalues": self.eigenvalues,
            "edges": self.edges,
            "cdf_at": self.cdf_at,
            "cdf_below": self.cdf_below,
            "held_out": np.array(self.held_out),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> EmbeddingProfile:
        version = int(arrays["version"])
        if version != PROFILE_VERSION:
            raise ValueError(f"embedding profile version {version} is not {PROFILE_VERSION}: prepare it again")
        return cls(
            n=int(arrays["n"]),
            mean=np.asarray(arrays["mean"], dtype=np.float64),
            var=np.asarray(arrays["var"], dtype=np.float64),
            kurtosis=np.asarray(arrays["kurtosis"], dtype=np.float64),
            mode_share=np.asarray(arrays["mode_share"], dtype=np.float64),
            axes=np.asarray(arrays["axes"], dtype=np.float32),
            eigenvalues=np.asarray(arrays["eigenvalues"], dtype=np.float64),
            edges=np.asarray(arrays["edges"], dtype=np.float64),
            cdf_at=np.asarray(arrays["cdf_at"], dtype=np.float64),
            cdf_below=np.asarray(arrays["cdf_below"], dtype=np.float64),
            held_out=int(arrays["held_out"]),
        )


def profile(reference: np.ndarray, components: int = DEFAULT_COMPONENTS, seed: int = 0) -> EmbeddingProfile:
    """Prepare `reference` (n x d, finite; any float dtype, used as float32) for `test`.

    ValueError for an empty, non-2-D or non-finite matrix, or fewer than 20 rows (too few to split
    into fit and held-out rows). `components` is capped at d and at the fit rows minus one.
    """
    x = check_matrix(reference, "reference")
    n, d = x.shape
    if n < 20:
        raise ValueError(f"reference has {n} rows: an embedding profile needs at least 20")
    mean, var, kurt = column_moments(x)
    order = np.random.default_rng(seed).permutation(n)
    n_fit = min(n // 2, MAX_FIT_ROWS)
    fit, held = np.sort(order[:n_fit]), np.sort(order[n_fit:n_fit + MAX_HELD_OUT])
    k = max(1, min(components, d, n_fit - 1))
    center = mean.astype(np.float32)
    y = x[fit] - center
    cov = (y.T @ y).astype(np.float64) / (n_fit - 1)  # float32 GEMM (BLAS threads), eigh in float64
    values, vectors = top_eigenpairs(cov, k, np.random.default_rng(seed + 1))
    axes = np.ascontiguousarray(vectors, dtype=np.float32)
    held_stats = window_sums(x[held], center, axes).projections
    held_stats.sort(axis=1)
    h = held_stats.shape[1]
    ranks = np.arange(h) if h <= GRID else (np.arange(1, GRID + 1) * h) // GRID - 1
    edges = held_stats[:, ranks]
    cdf_at = np.stack([np.searchsorted(row, e, "right") for row, e in zip(held_stats, edges, strict=True)]) / h
    cdf_below = np.stack([np.searchsorted(row, e, "left") for row, e in zip(held_stats, edges, strict=True)]) / h
    return EmbeddingProfile(
        n=n, mean=mean, var=var, kurtosis=kurt, mode_share=mode_share_bound(x, var, seed), axes=axes, eigenvalues=np.maximum(values, 0.0),
        edges=edges, cdf_at=cdf_at, cdf_below=cdf_below, held_out=h,
    )


def mode_share_bound(x: F32, var: F64, seed: int, block: int = 64) -> F64:
    """Per dimension, a 99.9% upper bound on the largest share of one value, counted on up to MODE_ROWS
    rows (sorted a block of columns at a time: the longest run of equal values); exactly 1 where the
    reference is constant."""
    n, d = x.shape
    rows = x if n <= MODE_ROWS else x[np.sort(np.random.default_rng(seed + 2).choice(n, MODE_ROWS, replace=False))]
    k = rows.shape[0]
    longest = np.ones(d)
    for lo in range(0, d, block):
        s = np.sort(rows[:, lo:lo + block], axis=0)
        equal = s[1:] == s[:-1]
        run = np.cumsum(equal, axis=0, dtype=np.int32)
        run -= np.maximum.accumulate(np.where(equal, 0, run), axis=0)
        longest[lo:lo + block] = run.max(axis=0, initial=0) + 1
    share = longest / k
    bound = np.minimum(share + 3.1 * np.sqrt(share * (1 - share) / k) + 10.0 / k, 1.0)
    return np.where(var == 0, 1.0, bound)


def top_eigenpairs(cov: F64, k: int, rng: np.random.Generator) -> tuple[F64, F64]:
    """The k largest eigenvalues of a symmetric matrix and their vectors, largest first, by block
    power iteration with Rayleigh-Ritz (Halko, Martinsson and Tropp 2011): matrix products only,
    where a full `eigh` of 768 x 768 is a d^3 tridiagonalisation that LAPACK runs poorly on a busy
    machine (0.2 s idle, 8 s measured under load). Any axes keep the test's level (the held-out rows
    make it exact); better ones only add power, and at the spectra of embeddings these are close to
    exact (tests/drift/test_embedding.py compares them with `numpy.linalg.eigh`)."""
    d = cov.shape[0]
    width = min(d, k + OVERSAMPLE)
    q = np.linalg.qr(cov @ rng.standard_normal((d, width)))[0]
    for _ in range(POWER_ITERATIONS):
        q = np.linalg.qr(cov @ q)[0]
    values, small = np.linalg.eigh(q.T @ cov @ q)
    order = np.argsort(values)[::-1][:k]
    return values[order], q @ small[:, order]
