"""False alarms and power, side by side: driftwatch's defaults, the calibrated path and Evidently's defaults.

    python3 benchmarks/power.py             # the full table (about 10 minutes on 2 cores)
    python3 benchmarks/power.py --quick     # a smaller run with wider error bars
    python3 benchmarks/power.py --per-reference   # false-alarm rates per fixed reference (docs: "Whose rate")

One reference per column kind (`--reference` rows, 5,000 by default: large enough that Evidently's
defaults are its fixed distances), then for windows of 200, 1,000 and 10,000 rows:

- **unchanged**: `--null` windows from the reference's population. Their flags are each detector's
  false-alarm rate at that window size; Evidently's *rate-matched* threshold is its statistic's null
  quantile at driftwatch's measured rate (at least one flag's worth), so the last column answers
  "Evidently's statistic, tuned to be as quiet as driftwatch".
- **changed**: `--trials` windows per change (mean +0.2 and +0.5 std, spread x1.2; one category's
  share +0.1, a new category at 5%); detection = the column flagged in that one window.

Every driftwatch verdict goes through the real engine (`monitor.drift.evaluate` with no settings:
the `auto` defaults) and `CalibratedDetector` (budget 1 false alarm per 30 days at one window a
minute, fresh CUSUM per window: its single-window power; it is built to accumulate evidence over
windows, see benchmarks/alarms.py); Evidently's through its own stattest functions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.core import methods
from monitor.drift import ColumnSpec, EngineSettings, build_profile, evaluate
from monitor.drift.calibration import BudgetSpec, CalibratedDetector, WindowPlan, calibrate
from monitor.drift.spec import resolve_method

WINDOWS = (200, 1000, 10_000)
SHARES = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
EVIDENTLY = EngineSettings(auto="evidently")


@dataclass(frozen=True)
class Column:
    kind: str
    draw: Callable[[np.random.Generator, int], np.ndarray]
    changes: dict[str, Callable[[np.random.Generator, int], np.ndarray]]


def _shares(shares: np.ndarray, categories: np.ndarray) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.choice(categories, n, p=shares)


def _plus_share(delta: float) -> np.ndarray:
    """The most frequent category's share up by `delta`, the others scaled down to make room."""
    out = SHARES * (1 - (SHARES[0] + delta)) / (1 - SHARES[0])
    out[0] = SHARES[0] + delta
    return out


COLUMNS = {
    "numeric (normal)": Column(
        "numeric",
        lambda rng, n: rng.normal(0.0, 1.0, n),
        {
            "mean +0.2 std": lambda rng, n: rng.normal(0.2, 1.0, n),
            "mean +0.5 std": lambda rng, n: rng.normal(0.5, 1.0, n),
            "spread x1.2": lambda rng, n: rng.normal(0.0, 1.2, n),
        },
    ),
    "categorical (5 values)": Column(
        "categorical",
        _shares(SHARES, CATEGORIES),
        {
            "top share +0.1": _shares(_plus_share(0.1), CATEGORIES),
            "new category 5%": _shares(np.append(SHARES * 0.95, 0.05), np.append(CATEGORIES, "new")),
        },
    ),
}


def evidently_test(method: str) -> Callable[[pd.Series, pd.Series], tuple[float, bool]]:
    """Evidently's own stattest for `method` (its default threshold); score: larger = more drift."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if "numeric" in methods.get(method).kinds else ColumnType.Categorical
    test = get_registered_stattest(method, kind)
    sign = -1.0 if methods.get(method).yields == "p_value" else 1.0

    def run(ref: pd.Series, cur: pd.Series) -> tuple[float, bool]:
        result = test(ref, cur, kind, None)
        return sign * float(result.drift_score), bool(result.drifted)

    return run


@dataclass
class Cell:
    driftwatch: float
    calibrated: float
    evidently: float
    matched: float
    n: int


def run_column(name: str, col: Column, n_ref: int, n_null: int, trials: int, seed: int) -> dict[tuple[int, str], Cell]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"x": col.draw(rng, n_ref)})
    specs = [ColumnSpec("x", col.kind)]
    profile = build_profile(reference, specs)
    method = resolve_method(col.kind, "auto", n_ref, int(reference["x"].nunique()), EVIDENTLY)
    ev_test = evidently_test(method)
    ref_series = reference["x"]
    out: dict[tuple[int, str], Cell] = {}
    for m in WINDOWS:
        t0 = time.perf_counter()
        budget = BudgetSpec(alarms=1, period=30 * 86400.0, resamples=300, seed=seed)
        detector = CalibratedDetector(profile, calibrate(reference, profile, WindowPlan(records=m, step=m, interval=60.0), budget))
        fresh = detector.state()

        def judge(values: np.ndarray, detector: CalibratedDetector = detector, fresh: dict = fresh) -> tuple[bool, bool, float, bool]:
            """(driftwatch defaults, calibrated, Evidently's score, Evidently's default verdict)."""
            detector.restore(fresh)
            result = detector.evaluate(pd.DataFrame({"x": values})).features["x"]
            score, ev_drifted = ev_test(ref_series, pd.Series(values))
            return bool(result.details["calibration"]["fixed_threshold_drifted"]), result.drifted, score, ev_drifted

        null = [judge(col.draw(rng, m)) for _ in range(n_null)]
        dw_rate = float(np.mean([j[0] for j in null]))
        scores = np.array([j[2] for j in null])
        # Evidently's threshold at driftwatch's rate: flag the top max(rate, 1/n_null) of null scores
        target = max(dw_rate, 1.0 / n_null)
        limit = float(np.quantile(scores, 1.0 - target, method="higher"))
        out[(m, "unchanged")] = Cell(dw_rate, float(np.mean([j[1] for j in null])), float(np.mean([j[3] for j in null])),
                                     float(np.mean(scores > limit)), n_null)
        for change, draw in col.changes.items():
            hits = [judge(draw(rng, m)) for _ in range(trials)]
            out[(m, change)] = Cell(*(float(np.mean([h[i] for h in hits])) for i in (0, 1, 3)),
                                    float(np.mean([h[2] > limit for h in hits])), trials)
        print(f"  {name}, window {m}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return out


def table(results: dict[str, dict[tuple[int, str], Cell]], n_ref: int, n_null: int, trials: int) -> str:
    rows = [
        "| column | data | window | driftwatch defaults | driftwatch calibrated | Evidently defaults | Evidently, rate-matched |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cells in results.items():
        for (m, change), c in cells.items():
            label = "unchanged: false alarms" if change == "unchanged" else change
            rows.append(f"| {name} | {label} | {m:,} | {c.driftwatch:.1%} | {c.calibrated:.1%} | {c.evidently:.1%} | {c.matched:.1%} |")
    return "\n".join(rows) + (f"\n\nFractions of windows flagged; reference {n_ref:,} rows, {n_null:,} unchanged windows per size, "
                               f"{trials:,} changed windows per cell.\n")


PER_REFERENCE_SIZES = ((100, 50), (100, 1000), (1000, 1000), (3000, 200))


def per_reference(references: int = 40, windows: int = 100, seed: int = 3) -> str:
    """Each reference's own false-alarm rate over unchanged windows of its population (normal data):
    the rate a single model sees, where the main table averages over references too."""
    rng = np.random.default_rng(seed)
    rows = ["| reference rows | window rows | mean rate | median | 90th percentile | worst | references above 5% |",
            "|---|---|---|---|---|---|---|"]
    for n, m in PER_REFERENCE_SIZES:
        rates = []
        for _ in range(references):
            profile = build_profile(pd.DataFrame({"x": rng.normal(size=n)}), [ColumnSpec("x", "numeric")])
            rates.append(np.mean([evaluate(profile, pd.DataFrame({"x": rng.normal(size=m)})).features["x"].drifted for _ in range(windows)]))
        r = np.array(rates)
        rows.append(f"| {n:,} | {m:,} | {r.mean():.1%} | {np.median(r):.0%} | {np.quantile(r, 0.9):.1%} | {r.max():.0%} | "
                    f"{int(np.sum(r > 0.05))} of {references} |")
    return "\n".join(rows) + f"\n\n{references} references x {windows} windows per size.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows (wider error bars)")
    parser.add_argument("--reference", type=int, default=5000, help="reference rows (default 5000)")
    parser.add_argument("--null", type=int, default=None, help="unchanged windows per size (default 2000, quick 400)")
    parser.add_argument("--trials", type=int, default=None, help="changed windows per change and size (default 300, quick 100)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--per-reference", action="store_true", help="per-reference false-alarm rates instead")
    args = parser.parse_args(argv)
    if args.per_reference:
        print(per_reference())
        return 0
    n_null = args.null or (400 if args.quick else 2000)
    trials = args.trials or (100 if args.quick else 300)
    start = time.perf_counter()
    results = {}
    for i, (name, col) in enumerate(COLUMNS.items()):
        results[name] = run_column(name, col, args.reference, n_null, trials, args.seed + i)
    print(table(results, args.reference, n_null, trials))
    print(f"unchanged windows per size: {n_null}; changed windows per cell: {trials}; "
          f"{time.perf_counter() - start:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
