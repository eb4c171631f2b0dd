"""Input checks and one-pass column sums for embedding matrices (float32 in, float64 out).

Sums run over row chunks of float32 values centred on the reference mean, each chunk's sum added in
float64: the rounding error stays ~1e-6 of a variance at 8k rows a chunk, far below the sampling
error of any window, while the data is read once and in float32 (a 100k x 768 window is 307 MB).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
CHUNK = 8192
THREADS = 2  # numpy releases the GIL in these loops; two halves of the rows run at once
ROUNDING = 1e-5
"""A sum of squared deviations below this share of the sum of squares about the float32 centre is
float32 rounding: the column is constant there (float32 sums keep ~1e-7 of it)."""


def check_matrix(values: object, what: str, dim: int | None = None) -> F32:
    """`values` as a C-contiguous float32 n x d matrix; ValueError saying what is wrong otherwise
    (not 2-D, empty, wrong width, NaN or infinite entries: with the first bad row's index)."""
    try:
        x = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged lists
        raise ValueError(f"{what} is not a matrix of numbers: {exc}") from None
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix (rows x dimensions), got {x.ndim}-D with shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {x.shape})")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what} has {x.shape[1]} dimensions, the reference has {dim}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{what} must hold numbers, not {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x.sum(axis=1))  # one reduction: a NaN or inf anywhere in a row makes its sum non-finite
    if not finite.all():
        bad = np.flatnonzero(~finite)
        row = int(bad[0])
        # a finite row can overflow float32 only when its entries are near 3e38: name what is really there
        kind = "NaN" if np.isnan(x[row]).any() else ("infinite" if np.isinf(x[row]).any() else "too large")
        raise ValueError(f"{what} has {kind} values in {bad.size} row(s), first at row {row}")
    return x


def column_moments(x: F32) -> tuple[F64, F64, F64]:
    """Per-column mean, sample variance (ddof=1) and kurtosis m4 / m2^2 (NaN where m2 = 0); two passes."""
    n = x.shape[0]
    first = np.zeros(x.shape[1])
    for start in range(0, n, CHUNK):
        first += x[start:start + CHUNK].sum(axis=0, dtype=np.float64)
    mean = first / n
    center = mean.astype(np.float32)
    s1, s2, s4 = (np.zeros(x.shape[1]) for _ in range(3))
    for start in range(0, n, CHUNK):
        y = x[start:start + CHUNK] - center
        y2 = y * y
        s1 += y.sum(axis=0)
        s2 += y2.sum(axis=0)
        s4 += np.einsum("ij,ij->j", y2, y2)
    # moments about the exact mean from those about the float32 centre (shift by the small offset)
    off = s1 / n
    m2 = s2 / n - off**2
    # a constant column leaves rounding behind (measured: -8e-82 on two of MiniLM's dimensions), and a
    # negative or rounding-sized variance is a constant dimension: 0, so the tests treat it as one
    m2 = np.where(m2 <= ROUNDING * (s2 / n), 0.0, m2)
    m4 = s4 / n  # the offset is ~1e-8 of a standard deviation: its effect on m4 is below rounding
    var = m2 * n / max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(m2 > 0, m4 / m2**2, np.nan)
    return mean, var, kurt


@dataclass(frozen=True)
class WindowSums:
    """A window's per-column first and second sums about the reference centre, and each row's
    projection statistics (see `profile.projection_statistics`)."""

    rows: int
    s1: F64
    s2: F64
    s3: F64
    s4: F64
    """Column sums of the 1st to 4th powers of the rows' deviations from the reference centre."""
    projections: F64  # (k + 1) x rows


def window_sums(x: F32, center: F32, axes: F32) -> WindowSums:
    """One pass over the window: column sums of the deviations' 1st to 4th powers (the 3rd and 4th
    give the window's kurtosis, which the variance test pools with the reference's), projections and
    residual norms."""
    m, k = x.shape[0], axes.shape[1]
    proj = np.empty((k + 1, m), dtype=np.float64)

    def run(lo: int, hi: int) -> tuple[F64, F64, F64, F64]:
        sums = [np.zeros(x.shape[1]) for _ in range(4)]
        for start in range(lo, hi, CHUNK):
            stop = min(start + CHUNK, hi)
            y = x[start:stop] - center
            y2 = y * y
            sums[0] += y.sum(axis=0)  # float32 within a chunk, float64 across chunks (module docstring)
            sums[1] += np.einsum("ij,ij->j", y, y)
            sums[2] += np.einsum("ij,ij->j", y2, y)
            sums[3] += np.einsum("ij,ij->j", y2, y2)
            p = y @ axes
            proj[:k, start:stop] = p.T
            proj[k, start:stop] = np.einsum("ij,ij->i", y, y) - np.einsum("ij,ij->i", p, p)
        return sums[0], sums[1], sums[2], sums[3]

    half = (m // 2 // CHUNK) * CHUNK if m >= 4 * CHUNK else m
    if half in (0, m):
        s1, s2, s3, s4 = run(0, m)
    else:
        with ThreadPoolExecutor(THREADS) as pool:
            a, b = pool.map(lambda bounds: run(*bounds), [(0, half), (half, m)])
        s1, s2, s3, s4 = (u + v for u, v in zip(a, b, strict=True))
    return WindowSums(rows=m, s1=s1, s2=s2, s3=s3, s4=s4, projections=proj)
