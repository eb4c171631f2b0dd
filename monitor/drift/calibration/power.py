"""Power analysis: how large a shift a calibrated column catches, and how fast, by simulation."""

from __future__ import annotations

import math

import numpy as np

from monitor.drift import numeric
from monitor.drift.calibration.rules import Calibration, FeatureCalibration
from monitor.drift.calibration.scores import SCORES, Array, total_variation_cells, wasserstein_cells
from monitor.drift.calibration.single_value import min_outside
from monitor.drift.profile import CategoricalProfile, NumericProfile
from monitor.drift.sequential import cusum_step


def shifted_shares(cal: FeatureCalibration, profile: NumericProfile | CategoricalProfile, shift: float, kind: str = "auto") -> Array:
    """Cell shares after a shift of size `shift`.

    - single-valued reference (`outside`, the only kind there): `shift` of the rows leave its value;
    - numeric `mean`: every reference value moves by shift * std;
    - numeric `scale`: values spread around the mean by a factor (1 + shift);
    - categorical `share`: `shift` of the mass moves from the most frequent category to the others,
      in proportion to their shares (total variation = shift);
    - categorical `new`: a category the reference never had takes a share `shift`.
    """
    ref = np.asarray(cal.ref_counts, dtype=np.float64)
    if cal.single_value:
        return np.array([1.0 - shift, shift])
    if cal.kind == "numeric":
        assert isinstance(profile, NumericProfile)
        kind = "mean" if kind == "auto" else kind
        values = profile.sorted + shift * profile.std if kind == "mean" else profile.mean + (profile.sorted - profile.mean) * (1.0 + shift)
        return numeric.binned_counts(np.sort(values), np.asarray(cal.edges)) / values.size
    shares = ref / ref.sum()
    kind = "share" if kind == "auto" else kind
    if kind == "new":
        return np.append(shares[:-1] * (1.0 - shift), shares[-1] + shift)
    top = int(np.argmax(shares))
    moved = min(shift, shares[top])
    rest = shares.copy()
    rest[top] = 0.0
    out = shares + moved * (rest / rest.sum() if rest.sum() else rest)
    out[top] -= moved
    return out


def detection_probability(
    cal: FeatureCalibration, calibration: Calibration, after: Array, within: int, sims: int = 400, seed: int = 0
) -> tuple[float, float]:
    """P(alarm within `within` windows after a change to cell shares `after`) and the mean delay (in
    windows, among detected runs). The change happens at a window boundary; windows then fill with
    changed rows step by step (overlap), the CUSUM starts at rest, and the gate uses cell effects."""
    if cal.degenerate:
        return 0.0, math.nan
    if cal.single_value:
        return _single_value_detection(cal, calibration, after, within, sims, seed)
    plan, cusum = calibration.plan, calibration.cusum
    rng = np.random.default_rng(seed)
    ref = np.asarray(cal.ref_counts, dtype=np.float64)
    q = plan.overlap
    block = max(1, round(plan.records / q))
    before = rng.multinomial(block, ref / ref.sum(), size=(sims, q - 1)).astype(np.float64)
    changed = rng.multinomial(block, np.clip(after, 0, None) / np.clip(after, 0, None).sum(), size=(sims, within)).astype(np.float64)
    blocks = np.concatenate([before, changed], axis=1)
    s = np.zeros(sims)
    hit = np.full(sims, -1)
    for t in range(within):
        win = blocks[:, t : t + q].sum(axis=1)
        u = cal.standardize(SCORES[cal.statistic](ref, win))
        s, alarm = cusum_step(s, u, cusum.k, cusum.h)
        if cal.kind == "numeric":
            effect = wasserstein_cells(ref, win, np.asarray(cal.edges), cal.std)
        else:
            effect = total_variation_cells(ref, win)
        new = alarm & (effect >= cal.min_effect) & (hit < 0)
        hit[new] = t + 1
    detected = hit > 0
    return float(detected.mean()), float(hit[detected].mean()) if detected.any() else math.nan


def _single_value_detection(cal: FeatureCalibration, calibration: Calibration, after: Array, within: int, sims: int, seed: int) -> tuple[float, float]:
    """detection_probability for a single-valued column: `after[0]` is the share of the reference's
    value after the change; windows fill with changed rows block by block, as for the CUSUM columns.
    The effect gate is the share of differing values (exact for categories; for numbers the normed
    Wasserstein also depends on how far they lie, so this is the chance the test alarms)."""
    plan = calibration.plan
    rng = np.random.default_rng(seed)
    q = plan.overlap
    block = max(1, round(plan.records / q))
    outside = float(np.clip(1.0 - after[0] / max(after.sum(), 1e-300), 0.0, 1.0))
    changed = rng.binomial(block, outside, size=(sims, within))
    blocks = np.concatenate([np.zeros((sims, q - 1)), changed], axis=1)
    m = block * q
    k_min = max(min_outside(sum(cal.ref_counts), m, calibration.cusum.target_rate),
                math.ceil(cal.min_effect * m) if cal.kind == "categorical" else 0)
    hit = np.full(sims, -1)
    for t in range(within):
        alarm = (blocks[:, t : t + q].sum(axis=1) >= k_min) & (hit < 0)
        hit[alarm] = t + 1
    detected = hit > 0
    return float(detected.mean()), float(hit[detected].mean()) if detected.any() else math.nan


def detectable_shift(
    cal: FeatureCalibration,
    calibration: Calibration,
    profile: NumericProfile | CategoricalProfile,
    within: int = 3,
    power: float = 0.95,
    sims: int = 400,
    kind: str = "auto",
) -> float:
    """The smallest shift (reference stds for numeric, moved share for categorical) detected within
    `within` windows with probability `power`, by bisection on the shift with common random numbers;
    inf when even the largest shift tried is not."""
    if cal.degenerate:
        return math.inf
    if cal.single_value:
        hi, kind = 1.0, "outside"
    elif cal.kind == "numeric":
        hi = 8.0
    else:
        shares = np.asarray(cal.ref_counts) / sum(cal.ref_counts)
        hi = float(shares.max()) if kind != "new" else 1.0

    def ok(shift: float) -> bool:
        return detection_probability(cal, calibration, shifted_shares(cal, profile, shift, kind), within, sims)[0] >= power

    if not ok(hi):
        return math.inf
    lo = 0.0
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
