"""The on-demand embedding check: maximum mean discrepancy with a permutation test, on a subsample.

MMD^2 (unbiased) with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 sigma^2)), sigma the median
pairwise distance of (up to 1,000 of) the pooled rows. The median is taken on the pooled sample, so
it is the same for every relabelling: the permutation test stays exact. Its p-value
(1 + #{permuted >= observed}) / (1 + permutations) satisfies P(p <= a) <= a for every a under no
change, at any size and dimension.

All permutations are evaluated in one pass over the kernel matrix, a block of rows at a time:
with the label indicators as the columns of A (observed first), MMD^2 of each labelling follows from
a'Ka and a'K1, so memory is one block (`block` x N) plus A (N x (permutations + 1)), never the N x N
matrix (Evidently's MMD builds it whole: 320 GB at 100k + 100k).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.drift.embedding.moments import check_matrix

F64 = NDArray[np.float64]
DEFAULT_SAMPLE = 2000
DEFAULT_PERMUTATIONS = 500
BANDWIDTH_ROWS = 1000
BLOCK = 1024


@dataclass(frozen=True)
class MMDResult:
    mmd2: float
    """Unbiased MMD^2 of the subsamples (can be slightly negative under no change)."""
    p_value: float
    drifted: bool
    alpha: float
    bandwidth: float
    n_reference: int
    n_window: int
    permutations: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sq_distances(a: F64, b: F64, a_sq: F64, b_sq: F64) -> F64:
    return np.maximum(a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T), 0.0)


def median_bandwidth(pooled: F64, rng: np.random.Generator) -> float:
    """Median pairwise Euclidean distance of up to BANDWIDTH_ROWS pooled rows (1.0 if all coincide)."""
    rows = pooled if pooled.shape[0] <= BANDWIDTH_ROWS else pooled[rng.choice(pooled.shape[0], BANDWIDTH_ROWS, replace=False)]
    sq = np.einsum("ij,ij->i", rows, rows)
    dist = _sq_distances(rows, rows, sq, sq)[np.triu_indices(rows.shape[0], 1)]
    med = float(np.sqrt(np.median(dist)))
    return med if med > 0 else 1.0


def mmd2_permutations(pooled: F64, labels: F64, bandwidth: float, block: int = BLOCK) -> F64:
    """Unbiased MMD^2 for each column of `labels` (N x L indicators of the reference rows, each with
    the same count n), one block of kernel rows at a time."""
    total = pooled.shape[0]
    n = float(labels[:, 0].sum())
    m = total - n
    sq = np.einsum("ij,ij->i", pooled, pooled)
    gamma = 1.0 / (2.0 * bandwidth**2)
    aka = np.zeros(labels.shape[1])
    ak1 = np.zeros(labels.shape[1])
    one_k_one = 0.0
    for start in range(0, total, block):
        stop = min(start + block, total)
        kb = _sq_distances(pooled[start:stop], pooled, sq[start:stop], sq)
        np.multiply(kb, -gamma, out=kb)
        np.exp(kb, out=kb)
        rows = kb.sum(axis=1)
        one_k_one += float(rows.sum())
        ak1 += labels[start:stop].T @ rows
        aka += np.einsum("ij,ij->j", labels[start:stop], kb @ labels)
    kxx = aka - n  # the diagonal k(x, x) = 1 left out
    kyy = one_k_one - 2.0 * ak1 + aka - m
    kxy = ak1 - aka
    return np.asarray(kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m), dtype=np.float64)


def mmd_test(reference: np.ndarray, window: np.ndarray, alpha: float = 0.01, sample: int = DEFAULT_SAMPLE,
             permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> MMDResult:
    """MMD permutation test of up to `sample` rows of each side (drawn without replacement, seeded).

    ValueError for empty, non-finite or differently wide matrices, fewer than 2 rows a side, or
    fewer than 1/alpha - 1 permutations (the test could never reach alpha)."""
    ref = check_matrix(reference, "reference")
    win = check_matrix(window, "window", ref.shape[1])
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if permutations + 1 < 1.0 / alpha:
        raise ValueError(f"{permutations} permutations cannot give a p-value <= {alpha}: use at least {int(np.ceil(1 / alpha)) - 1}")
    if min(ref.shape[0], win.shape[0]) < 2:
        raise ValueError("the MMD test needs at least 2 rows on each side")
    rng = np.random.default_rng(seed)
    xs = ref[rng.choice(ref.shape[0], min(sample, ref.shape[0]), replace=False)] if ref.shape[0] > sample else ref
    ys = win[rng.choice(win.shape[0], min(sample, win.shape[0]), replace=False)] if win.shape[0] > sample else win
    pooled = np.concatenate([xs, ys]).astype(np.float64)
    n, total = xs.shape[0], pooled.shape[0]
    bandwidth = median_bandwidth(pooled, rng)
    labels = np.zeros((total, permutations + 1))
    labels[:n, 0] = 1.0
    drawn = np.argsort(rng.random((permutations, total)), axis=1)[:, :n]  # a uniform n-subset per permutation
    labels[drawn, np.arange(1, permutations + 1)[:, None]] = 1.0
    stats = mmd2_permutations(pooled, labels, bandwidth)
    observed = stats[0]
    exceed = int(np.count_nonzero(stats[1:] >= observed - 1e-12 * abs(observed)))
    p = (1 + exceed) / (1 + permutations)
    return MMDResult(mmd2=float(observed), p_value=p, drifted=p <= alpha, alpha=alpha, bandwidth=bandwidth,
                     n_reference=n, n_window=total - n, permutations=permutations)
