"""A/A and power harnesses, small versions of benchmarks/alarms.py (same functions, fewer windows).

Every window goes through the real SlidingWindow and CalibratedDetector (the engine's evaluate plus
the calibrated rule). The budget period is scaled down to 100 windows so that many periods fit in a
test; the calibrated rule must stay within budget: the measured count may not exceed the Poisson
99.5% quantile of the budgeted count (a one-sided test at 0.5%, fixed seeds).
"""

from __future__ import annotations

import pytest
from scipy import stats

from monitor.drift import EngineSettings
from tests.benchmark_modules import load_benchmark

alarms = load_benchmark("alarms")

pytestmark = pytest.mark.slow


def _within_budget(row) -> None:  # type: ignore[no-untyped-def]
    limit = stats.poisson.ppf(0.995, row.budget_alarms)
    assert row.calibrated_alarms <= limit, f"{row.calibrated_alarms} false alarms, budget {row.budget_alarms:g} (limit {limit:g})"


@pytest.mark.parametrize(
    ("population", "source", "setup"),
    [
        ("synthetic", "population", alarms.Setup(reference_rows=2000, records=200, step=100, period_windows=100)),
        ("synthetic", "reference", alarms.Setup(reference_rows=2000, records=200, step=100, period_windows=100)),
        ("breast_cancer", "population", alarms.Setup(reference_rows=1500, records=100, step=50, period_windows=100)),
    ],
)
def test_aa_false_alarms_stay_within_budget(population: str, source: str, setup) -> None:  # type: ignore[no-untyped-def]
    pop = alarms.synthetic_population() if population == "synthetic" else alarms.sklearn_population(population)
    # Evidently's fixed defaults reported beside the calibrated rule (driftwatch's own defaults are
    # quiet on unchanged data: tests/drift/test_quiet_by_default.py)
    row = alarms.aa_run(pop, source, setup, trials=4, n_windows=250, settings=EngineSettings(auto="evidently"))
    assert row.windows == 1000 and row.periods == 10
    _within_budget(row)
    # Evidently's fixed defaults, on the same windows, page far more often than the budget allows
    assert row.fixed_alarms > 5 * row.budget_alarms


def test_power_detects_real_changes_and_ignores_negligible_ones() -> None:
    pop = alarms.synthetic_population()
    setup = alarms.Setup(reference_rows=2000, records=200, step=100, period_windows=100)
    cases = [("mean", "normal", 0.6), ("scale", "lognormal", 0.6), ("share", "plan", 0.25), ("new", "region", 0.15), ("mean", "normal", 0.03)]
    rows = {(r.scenario, r.size): r for r in alarms.power_run(pop, setup, cases, trials=12, within=3)}
    for case in [("mean", 0.6), ("scale", 0.6), ("share", 0.25), ("new", 0.15)]:
        prob, delay = rows[case].calibrated
        assert prob >= 0.9 and 1 <= delay <= 3, (case, rows[case])
        assert rows[case].fixed[0] >= 0.9  # the defaults catch them too, at their far higher false-alarm rate
    assert rows[("mean", 0.03)].calibrated[0] <= 0.1  # below the practical-size gate (0.1 std)
    table = alarms.power_table(list(rows.values()), 3)
    assert table.count("\n") == len(cases) + 1 and "calibrated P(detect ≤ 3)" in table
