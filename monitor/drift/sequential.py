"""Sequential control across windows: a CUSUM on per-window standardized scores (pure numpy).

Each calibrated feature turns a window into a score `u` that is approximately N(0, 1) when nothing
changed (see calibration.py). Consecutive windows overlap and share one fixed reference, so their
scores are correlated in two ways, both modelled here:

- overlap: a window of `q` steps shares `q - L` of them with the window `L` evaluations later, so a
  mean-like statistic has lag-L correlation max(0, 1 - L/q): a moving sum of `q` independent blocks;
- the reference: every window is compared with the *same* reference sample, whose own sampling error
  is a persistent offset. For a two-sample statistic its share of the score's variance is
  rho = m / (n + m) (window m rows, reference n rows); an unlucky reference shifts every window.

Null score streams u_t = sqrt(rho) * A + sqrt(1 - rho) * MA_q(t), with one A ~ N(0, 1) per stream,
feed the CUSUM S_t = min(cap, max(0, S_{t-1} + u_t - k)); an alarm is an upward crossing of h. The
decision interval h is read off the simulated false-alarm rate (alarms per evaluated window, averaged
over references) on a grid of h with common random numbers, interpolating log(rate) linearly in h,
which is how it behaves for large h (Siegmund's approximation). Rates below what the simulation
resolves are extrapolated along the fitted slope of the deepest well-resolved points; `extrapolated`
records when that happened. The ceiling `cap = 2h` keeps an alarm standing while drift persists and
lets it clear within a few windows once drift ends; crossings after a dip count as new alarms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

# Simulation size: streams x steps window evaluations per grid point (common random numbers).
SIM_STREAMS = 256
SIM_STEPS = 12_000
H_GRID = np.geomspace(0.05, 30.0, 48)
# A grid point's rate counts as resolved with at least this many simulated alarms.
MIN_ALARMS = 25
CAP_FACTOR = 2.0


@dataclass(frozen=True)
class CusumDesign:
    """One model's CUSUM: reference value k, decision interval h, and how h was obtained."""

    k: float
    h: float
    target_rate: float
    """False alarms per evaluated window and feature the budget allows."""
    overlap: int
    reference_share: float
    extrapolated: bool
    """True when target_rate lay below what the simulation resolves (h from the fitted tail)."""

    @property
    def cap(self) -> float:
        return CAP_FACTOR * self.h

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CusumDesign:
        return cls(**data)


def reference_value(reference_share: float, target_rate: float) -> float:
    """k: half a standard deviation (the classic choice for a one-sigma shift) plus the reference's
    persistent offset at its (1 - target_rate) quantile, so that an unlucky reference alone drives the
    CUSUM upward window after window only with the budgeted probability. With a reference much larger
    than the window this is close to 0.5; with one the window's size the CUSUM tends to a per-window
    (Shewhart) rule, because windows compared with one noisy reference carry little new evidence."""
    rho = max(0.0, min(1.0, reference_share))
    z_target = float(stats.norm.isf(target_rate))
    # never so large that the per-window rule alone (h -> 0) is already far below the budget
    return min(0.5 + math.sqrt(rho) * z_target, max(0.5, z_target - 1.0))


def null_scores(rng: np.random.Generator, streams: int, steps: int, overlap: int, reference_share: float) -> NDArray[np.float64]:
    """Standard-normal score streams with the overlap and shared-reference correlation (streams x steps)."""
    q = max(1, int(overlap))
    e = rng.standard_normal((streams, steps + q - 1))
    c = np.cumsum(e, axis=1)
    c = np.concatenate([np.zeros((streams, 1)), c], axis=1)
    moving = (c[:, q:] - c[:, :-q]) / math.sqrt(q)
    offset = rng.standard_normal((streams, 1))
    rho = max(0.0, min(1.0, reference_share))
    return math.sqrt(rho) * offset + math.sqrt(1.0 - rho) * moving


def cusum_step(s: NDArray[np.float64], u: NDArray[np.float64], k: float, h: float | NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """One CUSUM update; NaN scores (window not computable) leave the statistic unchanged."""
    cap = CAP_FACTOR * np.asarray(h)
    nxt = np.minimum(cap, np.maximum(0.0, s + u - k))
    nxt = np.where(np.isnan(u), s, nxt)
    return nxt, nxt >= h


def alarm_counts(scores: NDArray[np.float64], k: float, hs: NDArray[np.float64]) -> NDArray[np.int64]:
    """Upward crossings of each h in `hs` over all streams (one vectorised pass over time)."""
    h = hs[:, None]
    s = np.zeros((hs.size, scores.shape[0]))
    above = np.zeros_like(s, dtype=bool)
    counts = np.zeros(hs.size, dtype=np.int64)
    cap = CAP_FACTOR * h
    for t in range(scores.shape[1]):
        s += scores[:, t] - k
        np.maximum(s, 0.0, out=s)
        np.minimum(s, cap, out=s)
        now = s >= h
        counts += (now & ~above).sum(axis=1)
        above = now
    return counts


@lru_cache(maxsize=64)
def design(target_rate: float, overlap: int, reference_share: float, seed: int = 0) -> CusumDesign:
    """The CUSUM meeting `target_rate` false alarms per window (cached: it depends on these only)."""
    if not 0.0 < target_rate < 1.0:
        raise ValueError(f"target false-alarm rate per window must be within (0, 1), got {target_rate!r}")
    k = reference_value(reference_share, target_rate)
    rng = np.random.default_rng(seed)
    scores = null_scores(rng, SIM_STREAMS, SIM_STEPS, overlap, reference_share)
    counts = alarm_counts(scores, k, H_GRID)
    h, extrapolated = _solve_h(H_GRID, counts, scores.size, target_rate)
    return CusumDesign(k=k, h=h, target_rate=target_rate, overlap=int(overlap), reference_share=float(reference_share), extrapolated=extrapolated)


def _solve_h(hs: NDArray[np.float64], counts: NDArray[np.int64], n_windows: int, target: float) -> tuple[float, bool]:
    """h where log(rate) crosses log(target): interpolated between resolved grid points, else extrapolated."""
    resolved = counts >= MIN_ALARMS
    if not resolved.any():
        raise ValueError("CUSUM simulation resolved no false-alarm rate; the h grid is too coarse")
    last = int(np.flatnonzero(resolved)[-1])
    log_rate = np.log(np.maximum(counts[: last + 1], 1) / n_windows)
    log_target = math.log(target)
    if log_target >= log_rate[0]:
        return float(hs[0]), False
    if log_target >= log_rate[last]:
        # first grid point at or below the target, interpolated with its predecessor
        i = int(np.flatnonzero(log_rate <= log_target)[0])
        x0, x1, y0, y1 = hs[i - 1], hs[i], log_rate[i - 1], log_rate[i]
        return float(x0 + (log_target - y0) * (x1 - x0) / (y1 - y0)) if y1 != y0 else float(x1), False
    tail = slice(max(0, last - 7), last + 1)
    slope, intercept = np.polyfit(hs[tail], log_rate[tail], 1)
    if slope >= 0:
        raise ValueError("CUSUM simulation: false-alarm rate does not fall with h")
    return float((log_target - intercept) / slope), True


def siegmund_arl(k: float, h: float) -> float:
    """Siegmund's approximation of the in-control ARL of a CUSUM on i.i.d. N(0, 1) scores (no cap);
    a cross-check of the simulation in the tests."""
    b = h + 1.166
    return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)
