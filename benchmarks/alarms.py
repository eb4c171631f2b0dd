"""A/A and power harnesses for calibrated alarms (docs/calibration.md), printing both tables.

    python3 benchmarks/alarms.py            # the long version (about 40 minutes on one core)
    python3 benchmarks/alarms.py --quick    # a smaller run

Every window goes through the real path: records fed to `monitor.windows.SlidingWindow` in steps,
each due window turned into a DataFrame and decided by `CalibratedDetector` (the engine's `evaluate`
plus the calibrated rule), which also reports what the engine's fixed default thresholds said.

A/A: unchanged streams, drawn either from the reference's own rows or from the population the
reference was sampled from (synthetic, and scikit-learn's bundled breast_cancer and digits data),
for many budget periods; each trial draws a fresh reference and calibrates it. False alarms are
alarm *entries* (a column going from not drifted to drifted), summed over columns, so one page per
entry. The bound is the one-sided 95% Poisson upper bound on alarms per period.

Power: one reference, then per trial a window of unchanged rows followed by changed rows (mean shift
or variance change of a numeric column, share moved away from the most frequent category, a new
category); detection = the changed column drifted within `within` windows. Compared with the
defaults as configured (the `auto` permutation tests, docs/drift-methods.md) and with the same
default statistics with thresholds moved to the budget's rate (their null quantiles measured on
unchanged windows of the same reference).

tests/drift/test_alarms_harness.py runs small versions of these functions.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from monitor.core.config import WindowConfig
from monitor.drift import ColumnSpec, EngineSettings, build_profile
from monitor.drift.calibration import BudgetSpec, CalibratedDetector, WindowPlan, calibrate
from monitor.windows import SlidingWindow


@dataclass(frozen=True)
class Population:
    name: str
    frame: pd.DataFrame
    specs: tuple[ColumnSpec, ...]


def synthetic_population(rows: int = 20_000, seed: int = 7) -> Population:
    """Numeric columns of several shapes (normal, skewed, integer counts, uniform) and categorical
    ones (five categories, a rare category, a binary flag)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "normal": rng.normal(50, 10, rows),
        "lognormal": rng.lognormal(0, 0.8, rows),
        "counts": rng.poisson(3, rows).astype(float),
        "uniform": rng.uniform(0, 1, rows),
        "plan": rng.choice(["a", "b", "c", "d", "e"], rows, p=[0.4, 0.25, 0.15, 0.12, 0.08]),
        "region": rng.choice(["north", "south", "east", "west", "rare"], rows, p=[0.3, 0.3, 0.2, 0.19, 0.01]),
        "flag": rng.choice(["yes", "no"], rows, p=[0.2, 0.8]),
    })
    kinds = {"plan": "categorical", "region": "categorical", "flag": "categorical"}
    return Population("synthetic", frame, tuple(ColumnSpec(c, kinds.get(c, "numeric")) for c in frame.columns))


def sklearn_population(name: str, max_columns: int = 10) -> Population:
    """A dataset scikit-learn ships (no download): its feature table as the population."""
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits, "wine": datasets.load_wine}[name]
    frame = loader(as_frame=True).data
    if name == "digits":  # pixels at the image border are constant: keep columns that vary
        frame = frame.loc[:, frame.std() > 1.0]
    frame = frame.iloc[:, :max_columns].astype(float)
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    return Population(name, frame.reset_index(drop=True), tuple(ColumnSpec(c, "numeric") for c in frame.columns))


@dataclass(frozen=True)
class Setup:
    """Window and budget, in windows: the budget period is `period_windows` evaluations long."""

    reference_rows: int
    records: int
    step: int
    alarms: float = 1.0
    period_windows: float = 100.0
    resamples: int = 300

    @property
    def plan(self) -> WindowPlan:
        return WindowPlan(records=self.records, step=self.step, interval=1.0)

    @property
    def budget(self) -> BudgetSpec:
        return BudgetSpec(alarms=self.alarms, period=self.period_windows, resamples=self.resamples)

    @property
    def window(self) -> WindowConfig:
        return WindowConfig(records=self.records, step=self.step, min_records=self.records)


def calibrated(reference: pd.DataFrame, pop: Population, setup: Setup, seed: int,
               settings: EngineSettings | None = None) -> CalibratedDetector:
    """`settings`: the engine's, whose fixed thresholds are reported beside the calibrated rule (default:
    driftwatch's defaults; `EngineSettings(auto="evidently")` compares with Evidently's)."""
    profile = build_profile(reference, pop.specs, settings or EngineSettings())
    budget = BudgetSpec(**{**setup.budget.__dict__, "seed": seed})
    return CalibratedDetector(profile, calibrate(reference, profile, setup.plan, budget))


Change = Callable[[pd.DataFrame], pd.DataFrame]


def windows(source: pd.DataFrame, setup: Setup, n_windows: int, rng: np.random.Generator,
            change: Change | None = None, change_after: int = 0) -> Iterator[pd.DataFrame]:
    """`n_windows` evaluable windows of rows drawn from `source`, through a real SlidingWindow; rows
    drawn after `change_after` windows pass through `change` first."""
    sliding = SlidingWindow(setup.window)
    columns = list(source.columns)
    seq = rec_end = produced = 0
    while produced < n_windows:
        batch = source.iloc[rng.integers(0, len(source), setup.step)].reset_index(drop=True)
        if change is not None and produced >= change_after:
            batch = change(batch)
        seq += 1
        rec_end += len(batch)
        sliding.add(seq, float(seq), rec_end, batch.to_dict("records"), now=float(seq))
        due = sliding.due(float(seq))
        if due is None:
            continue
        sliding.done(due)
        if sliding.evaluable(due):
            produced += 1
            yield pd.DataFrame.from_records(due.records, columns=columns)


def _entries(previous: dict[str, bool], verdicts: dict[str, bool]) -> int:
    """Alarm entries (not drifted -> drifted) in this window; updates `previous`."""
    n = sum(now and not previous.get(name, False) for name, now in verdicts.items())
    previous.update(verdicts)
    return n


@dataclass(frozen=True)
class AARow:
    population: str
    source: str
    setup: Setup
    trials: int
    windows: int
    calibrated_alarms: int
    fixed_alarms: int
    fixed_windows_flagged: int
    extrapolated: bool

    @property
    def periods(self) -> float:
        return self.windows / self.setup.period_windows

    @property
    def budget_alarms(self) -> float:
        return self.setup.alarms * self.periods

    @property
    def upper_95(self) -> float:
        """One-sided 95% Poisson upper bound on calibrated false alarms per period."""
        return float(stats.chi2.ppf(0.95, 2 * (self.calibrated_alarms + 1)) / 2 / self.periods)


def aa_run(pop: Population, source: str, setup: Setup, trials: int, n_windows: int, seed: int = 0,
           settings: EngineSettings | None = None) -> AARow:
    """Unchanged streams: `source` is "reference" (rows of the reference itself) or "population";
    `settings` as for `calibrated`."""
    cal_alarms = fixed_alarms = fixed_flagged = 0
    extrapolated = False
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        reference = pop.frame.iloc[rng.integers(0, len(pop.frame), setup.reference_rows)].reset_index(drop=True)
        detector = calibrated(reference, pop, setup, seed=trial, settings=settings)
        extrapolated |= detector.calibration.cusum.extrapolated
        cal_state: dict[str, bool] = {}
        fixed_state: dict[str, bool] = {}
        for frame in windows(reference if source == "reference" else pop.frame, setup, n_windows, rng):
            features = detector.evaluate(frame).features
            fixed = {n: bool(f.details["calibration"]["fixed_threshold_drifted"]) for n, f in features.items()}
            cal_alarms += _entries(cal_state, {n: f.drifted for n, f in features.items()})
            fixed_alarms += _entries(fixed_state, fixed)
            fixed_flagged += any(fixed.values())
    return AARow(pop.name, source, setup, trials, trials * n_windows, cal_alarms, fixed_alarms, fixed_flagged, extrapolated)


# -- power -----------------------------------------------------------------------------------------


def change_for(scenario: str, column: str, size: float, reference: pd.DataFrame, rng: np.random.Generator) -> Change:
    """mean: + size * std; scale: spread * (1 + size); share: `size` of the rows move away from the
    most frequent category (to the others, proportionally); new: `size` of the rows become a new value."""
    col = reference[column]
    if scenario in ("mean", "scale"):
        mean, std = float(col.mean()), float(col.std(ddof=0))

        def numeric(batch: pd.DataFrame) -> pd.DataFrame:
            out = batch.copy()
            out[column] = out[column] + size * std if scenario == "mean" else mean + (out[column] - mean) * (1 + size)
            return out

        return numeric
    shares = col.value_counts(normalize=True)
    top = shares.index[0]
    others = shares.iloc[1:] / shares.iloc[1:].sum()

    def categorical(batch: pd.DataFrame) -> pd.DataFrame:
        out = batch.copy()
        if scenario == "new":
            hit = rng.random(len(out)) < size
            out.loc[hit, column] = "__new__"
        else:
            hit = (out[column] == top).to_numpy() & (rng.random(len(out)) < size / shares.iloc[0])
            out.loc[hit, column] = rng.choice(others.index.to_numpy(), int(hit.sum()), p=others.to_numpy())
        return out

    return categorical


@dataclass(frozen=True)
class PowerRow:
    scenario: str
    column: str
    size: float
    trials: int
    calibrated: tuple[float, float]
    fixed: tuple[float, float]
    matched: tuple[float, float] | None
    """(detection probability, mean delay in windows among detections)"""


def _summary(delays: Sequence[int | None]) -> tuple[float, float]:
    hits = [d for d in delays if d is not None]
    return len(hits) / len(delays), (float(np.mean(hits)) if hits else math.nan)


def matched_thresholds(detector: CalibratedDetector, source: pd.DataFrame, setup: Setup, n_windows: int, seed: int) -> dict[str, float]:
    """Per column, the engine default statistic's threshold whose per-window exceedance rate on
    unchanged windows equals the calibrated per-column rate (its null quantile)."""
    rate = detector.calibration.cusum.target_rate
    scores: dict[str, list[float]] = {}
    for frame in windows(source, setup, n_windows, np.random.default_rng(seed)):
        result = detector.evaluate(frame)
        for name, f in result.features.items():
            scores.setdefault(name, []).append(_default_score(f))
    return {name: float(np.quantile(v, 1.0 - rate)) for name, v in scores.items()}


def _default_score(f: object) -> float:
    """Larger = more drift, for distances and (as -log10 of the adjusted p-value) for tests."""
    if f.is_test:  # type: ignore[attr-defined]
        p = f.adjusted_p_value  # type: ignore[attr-defined]
        return -math.log10(max(p, 1e-300)) if p is not None else 0.0
    return float(f.score)  # type: ignore[attr-defined]


def power_run(pop: Population, setup: Setup, cases: Sequence[tuple[str, str, float]], trials: int, within: int,
              matched_windows: int = 0, seed: int = 0) -> list[PowerRow]:
    """Detection of each (scenario, column, size) change within `within` windows, over `trials` streams."""
    rng = np.random.default_rng(seed)
    reference = pop.frame.iloc[rng.integers(0, len(pop.frame), setup.reference_rows)].reset_index(drop=True)
    detector = calibrated(reference, pop, setup, seed)
    matched = matched_thresholds(detector, pop.frame, setup, matched_windows, seed) if matched_windows else None
    rows = []
    for scenario, column, size in cases:
        delays: dict[str, list[int | None]] = {"calibrated": [], "fixed": [], "matched": []}
        for trial in range(trials):
            trial_rng = np.random.default_rng([seed, trial, 1])
            det = CalibratedDetector(detector.profile, detector.calibration)  # CUSUM at rest
            change = change_for(scenario, column, size, reference, trial_rng)
            first: dict[str, int | None] = dict.fromkeys(delays)
            stream = windows(pop.frame, setup, setup.records // setup.step + within, trial_rng, change, change_after=setup.records // setup.step)
            for i, frame in enumerate(stream):
                f = det.evaluate(frame).features[column]
                t = i - setup.records // setup.step + 1  # windows since the change (>= 1 after it)
                if t < 1:
                    continue
                verdicts = {"calibrated": f.drifted, "fixed": f.details["calibration"]["fixed_threshold_drifted"],
                            "matched": matched is not None and _default_score(f) > matched[column]}
                for rule, hit in verdicts.items():
                    if hit and first[rule] is None:
                        first[rule] = t
            for rule in delays:
                delays[rule].append(first[rule])
        rows.append(PowerRow(scenario, column, size, trials, _summary(delays["calibrated"]), _summary(delays["fixed"]),
                             _summary(delays["matched"]) if matched is not None else None))
    return rows


# -- printing --------------------------------------------------------------------------------------


def aa_table(rows: Sequence[AARow]) -> str:
    head = ("| population | stream from | ref rows | window/step | budget | windows | periods | budget alarms "
            "| calibrated alarms | 95% upper / period | fixed-default alarms | windows with a fixed flag |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        s = r.setup
        lines.append(
            f"| {r.population} | {r.source} | {s.reference_rows} | {s.records}/{s.step} | {s.alarms:g} per {s.period_windows:g} windows "
            f"| {r.windows} | {r.periods:g} | {r.budget_alarms:g} | {r.calibrated_alarms} | {r.upper_95:.2f} "
            f"| {r.fixed_alarms} | {r.fixed_windows_flagged / r.windows:.1%} |"
        )
    return "\n".join(lines)


def power_table(rows: Sequence[PowerRow], within: int) -> str:
    def cell(x: tuple[float, float] | None) -> str:
        if x is None:
            return "—"
        return f"{x[0]:.0%} / {x[1]:.1f}" if not math.isnan(x[1]) else f"{x[0]:.0%} / —"

    lines = [f"| change | column | size | calibrated P(detect ≤ {within}) / delay | fixed default | fixed, rate-matched |", "|" + "---|" * 6]
    for r in rows:
        unit = "std" if r.scenario == "mean" else ("× spread" if r.scenario == "scale" else "share")
        size = f"+{r.size:g} {unit}" if r.scenario != "scale" else f"{1 + r.size:g}{unit}"
        lines.append(f"| {r.scenario} | {r.column} | {size} | {cell(r.calibrated)} | {cell(r.fixed)} | {cell(r.matched)} |")
    return "\n".join(lines)


POWER_CASES = [
    *(("mean", "normal", s) for s in (0.1, 0.2, 0.3, 0.5)),
    *(("scale", "lognormal", s) for s in (0.1, 0.2, 0.4)),
    *(("share", "plan", s) for s in (0.02, 0.05, 0.1)),
    *(("new", "region", s) for s in (0.02, 0.05, 0.1)),
]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials and windows")
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    started = time.perf_counter()
    synth = synthetic_population()
    aa_setups = [
        (synth, "population", Setup(reference_rows=5000, records=500, step=250, period_windows=500)),
        (synth, "reference", Setup(reference_rows=5000, records=500, step=250, period_windows=500)),
        (synth, "population", Setup(reference_rows=2000, records=1000, step=250, period_windows=500)),
        (sklearn_population("breast_cancer"), "population", Setup(reference_rows=2000, records=200, step=100, period_windows=500)),
        (sklearn_population("digits"), "population", Setup(reference_rows=2000, records=300, step=100, period_windows=500)),
    ]
    aa_rows = []
    for pop, source, setup in aa_setups:
        aa_rows.append(aa_run(pop, source, setup, trials=max(2, int(8 * scale)), n_windows=int(1500 * scale)))
        print(f"  A/A {pop.name}/{source} done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    print("## A/A: false alarms on unchanged streams\n")
    print(aa_table(aa_rows))
    within = 3
    power_setup = Setup(reference_rows=5000, records=500, step=250, period_windows=500)
    power_rows = power_run(synth, power_setup, POWER_CASES, trials=max(20, int(100 * scale)), within=within,
                           matched_windows=int(4000 * scale))
    print(f"\n## Power: detection within {within} windows of the change (window {power_setup.records} rows, step "
          f"{power_setup.step}, reference {power_setup.reference_rows} rows, budget 1 per {power_setup.period_windows:g} windows)\n")
    print(power_table(power_rows, within))
    print(f"\n({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
