"""Calibrated alarms: decision rules derived from a false-alarm budget and the reference itself.

Fixed thresholds (p < 0.05, W1/std >= 0.1) alarm at a rate that depends on window size, feature
count and evaluation frequency. Here the user states what they can afford ("1 false alert per 30
days") and each column gets a rule meeting it. The method (docs/calibration.md has the details and
the guarantee):

1. Cells. Each column becomes counts over fixed cells taken from the reference: numeric columns over
   reference-quantile cells (or their distinct values when few), categorical columns over the
   reference's categories plus one cell for values never seen in it.
2. Per-window score. Numeric (`ks_location_scale`): the smallest p-value of three two-sample tests
   on the cells, KS (any difference), van der Waerden (location) and Klotz (dispersion) (linear rank
   statistics with normal scores of the pooled mid-ranks, standardized by their permutation mean and
   variance given the pooled cell counts: bounded scores, no influence of extreme values, ties
   handled), corrected by Sidak, p = 1 - (1 - min p)**3 (= 3 min p in the far tail); categorical:
   two-sample chi-square. The p-values are turned into z = Phi^-1(1 - p), which is N(0, 1) for a
   continuous statistic under no change (for the minimum of three tests: in the far tail, where
   Sidak's and Bonferroni's corrections become exact). The far tail therefore comes from theory,
   not from a few hundred resamples. KS on cells alone is insensitive to small location and scale
   changes; the rank tests have the t and F tests' efficiency at the normal and more elsewhere.
   Numeric columns with fewer than 22 cells (at most 20 distinct values) keep KS alone: on a few
   lumpy cells the rank statistics' tail is heavier than the fitted normal.
3. Bootstrap. `resamples` times, a pseudo-reference of n rows and a window of m rows are drawn from
   the reference's cell shares (the two-sample null, seeded), giving the statistic's real null
   distribution (ties, discreteness, sparse categories, the chi-square approximation). A normal
   location/scale is fitted to its upper half (a quantile-quantile regression), and each window's
   standardized score is u = (z - location) / scale. The fit's tail is checked (`tail_exceedance_99`).
4. Sequential control. A CUSUM per column on u with a decision interval chosen by simulation for the
   budget's alarm rate, accounting for window overlap and the shared reference (sequential.py). The
   budget is split evenly over the model's columns (a union bound across features).
5. Practical-size gate. A column is drifted only while its CUSUM is in alarm AND its effect size
   reaches `min_effect_*` (normed Wasserstein for numeric, total variation for categorical).
6. Single-valued reference columns (one category, or a constant number) have no null variation to
   bootstrap. A window is then judged by Fisher's exact test on the k window values that differ from
   the reference's value: with none among the n reference rows, p = C(m, k) / C(n + m, k); the column
   alarms when p <= the per-window false-alarm rate of the budget (and the gate passes).

Pure numpy/scipy/pandas, no I/O: the caller loads the reference and stores the JSON form.
"""

from monitor.drift.calibration.detector import CalibratedDetector, calibrated_detector
from monitor.drift.calibration.fit import calibrate, fingerprint
from monitor.drift.calibration.plan import BudgetSpec, Progress, WindowPlan, plan_from_config
from monitor.drift.calibration.power import detectable_shift, detection_probability, shifted_shares
from monitor.drift.calibration.rules import METHOD_VERSION, Calibration, FeatureCalibration
from monitor.drift.calibration.scores import (
    SCORES,
    chisquare_scores,
    ks_location_scale_scores,
    ks_scores,
    rank_location_scale_z,
)
from monitor.drift.calibration.single_value import min_outside, single_value_p
from monitor.drift.calibration.table import calibration_table, summarize

__all__ = [
    "METHOD_VERSION",
    "SCORES",
    "BudgetSpec",
    "CalibratedDetector",
    "Calibration",
    "FeatureCalibration",
    "Progress",
    "WindowPlan",
    "calibrate",
    "calibrated_detector",
    "calibration_table",
    "chisquare_scores",
    "detectable_shift",
    "detection_probability",
    "fingerprint",
    "ks_location_scale_scores",
    "ks_scores",
    "min_outside",
    "plan_from_config",
    "rank_location_scale_z",
    "shifted_shares",
    "single_value_p",
    "summarize",
]
