"""Degradation thresholds that hold a stated false-alarm rate per window.

The question a threshold answers: if the window came from the reference's population, how much
worse than the reference could its metric look by chance? Bootstrap it: resample a window of the
window's size n from the reference and the reference itself (full size), take the difference of the
metric, and put the threshold at the `false_alarm_rate` quantile of that difference in the worse
direction. Resampling the reference too makes its own sampling error count: the reference value a
window is compared with is itself one draw. Thresholds are cached per n, bucketed on a geometric
grid and rounded DOWN (a smaller n gives a wider null, so rounding never makes a threshold more
permissive than stated). Seeded per (seed, purpose, bucket): the same n gives the same threshold
whatever order windows arrive in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["GRID_RATIO", "MAX_BUCKET", "MIN_BUCKET", "BootstrapThreshold", "bucket"]

GRID_RATIO = 2**0.25
"""Grid points 10·2^(k/4), floored: 10, 11, 14, 16, 20, 23, 28, …, each about 19% above the last."""
MIN_BUCKET = 10
MAX_BUCKET = 16_384
"""Windows larger than this are judged at this size: a wider null than theirs, never narrower,
and the bootstrap stays cheap (resamples × 16k indices)."""
_CHUNK = 4_000_000

Statistic = Callable[[np.ndarray], np.ndarray]
"""(B, m) indices into the reference → (B,) values of the metric on each resample."""


def bucket(n: int) -> int:
    """The largest grid point ≤ min(n, MAX_BUCKET); n below the grid is used as it is."""
    n = min(int(n), MAX_BUCKET)
    if n < MIN_BUCKET:
        return n
    k = math.floor(math.log(n / MIN_BUCKET, GRID_RATIO) + 1e-9)
    while math.floor(MIN_BUCKET * GRID_RATIO ** (k + 1)) <= n:
        k += 1
    while math.floor(MIN_BUCKET * GRID_RATIO**k) > n:
        k -= 1
    return math.floor(MIN_BUCKET * GRID_RATIO**k)


def _resampled(statistic: Statistic, n_reference: int, size: int, resamples: int, rng: np.random.Generator,
               width: int) -> np.ndarray:
    out = []
    step = max(1, _CHUNK // max(1, size * width))
    for start in range(0, resamples, step):
        d = min(step, resamples - start)
        out.append(statistic(rng.integers(0, n_reference, (d, size))))
    return np.concatenate(out)


class BootstrapThreshold:
    """The threshold of one metric (realized or estimated) at any window size, from one reference."""

    def __init__(self, statistic: Statistic, n_reference: int, reference_value: float, *, higher_is_better: bool,
                 false_alarm_rate: float, resamples: int, seed: int, purpose: int, width: int = 1) -> None:
        self._statistic = statistic
        self._n_reference = n_reference
        self.reference_value = reference_value
        self.higher_is_better = higher_is_better
        self.false_alarm_rate = false_alarm_rate
        self._resamples = resamples
        self._seed = seed
        self._purpose = purpose
        self._width = width
        self._cache: dict[int, float | None] = {}
        rng = np.random.default_rng([seed, purpose, 0])
        self._reference_boot = _resampled(statistic, n_reference, n_reference, resamples, rng, width)

    def at(self, n: int) -> float | None:
        """The threshold for a window of n records (None when too few resamples define the metric)."""
        size = bucket(n)
        if size not in self._cache:
            rng = np.random.default_rng([self._seed, self._purpose, size])
            window = _resampled(self._statistic, self._n_reference, size, self._resamples, rng, self._width)
            diff = window - self._reference_boot
            diff = diff[np.isfinite(diff)]
            if len(diff) < self._resamples // 2:
                self._cache[size] = None
            else:
                q = self.false_alarm_rate if self.higher_is_better else 1 - self.false_alarm_rate
                self._cache[size] = float(self.reference_value + np.quantile(diff, q))
        return self._cache[size]

    def degraded(self, value: float, n: int) -> bool | None:
        """Whether `value` at window size n is worse than the threshold (None when not judged)."""
        threshold = self.at(n)
        if threshold is None or not math.isfinite(value):
            return None
        return value < threshold if self.higher_is_better else value > threshold
