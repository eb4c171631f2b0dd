"""Calibrated alarms: scores, bootstrap fit, CUSUM design, the detector's gate and state, the stored
form, and `driftwatch calibrate`. The false-alarm budget itself is checked end to end in
test_alarms_harness.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.core.config import FalseAlarmBudget, WindowConfig
from monitor.drift import ColumnSpec, EngineSettings, build_profile
from monitor.drift import categorical as ct
from monitor.drift import sequential as sq
from monitor.drift.calibration import (
    BudgetSpec,
    CalibratedDetector,
    Calibration,
    WindowPlan,
    calibrate,
    calibration_table,
    chisquare_scores,
    detectable_shift,
    fingerprint,
    ks_location_scale_scores,
    ks_scores,
    min_outside,
    plan_from_config,
    rank_location_scale_z,
    single_value_p,
)

PLAN = WindowPlan(records=400, step=200, interval=60.0)
BUDGET = BudgetSpec(alarms=1, period=7 * 86400.0, resamples=300)
SPECS = [ColumnSpec("x", "numeric"), ColumnSpec("ticks", "numeric"), ColumnSpec("color", "categorical"), ColumnSpec("const", "numeric")]


def _reference(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(10, 2, rows),
        "ticks": rng.poisson(2, rows).astype(float),
        "color": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
        "const": np.full(rows, 3.0),
    })


@pytest.fixture(scope="module")
def calibrated() -> tuple[pd.DataFrame, object, Calibration]:
    ref = _reference()
    profile = build_profile(ref, SPECS, EngineSettings())
    return ref, profile, calibrate(ref, profile, PLAN, BUDGET)


# -- scores ----------------------------------------------------------------------------------------


def test_cell_ks_equals_scipy_on_discrete_data() -> None:
    """On integer data with one cell per value the cell KS statistic is the exact KS statistic, and
    its p-value is scipy's asymptotic one up to Stephens' small-sample correction."""
    rng = np.random.default_rng(1)
    ref, cur = rng.poisson(3, 4000), rng.poisson(3.3, 900)
    values = np.arange(0, max(ref.max(), cur.max()) + 1)
    r, c = (np.bincount(a, minlength=values.size).astype(float) for a in (ref, cur))
    z = ks_scores(r, c)[0]
    d = stats.ks_2samp(ref, cur).statistic
    en = 4000 * 900 / 4900
    expected = stats.norm.isf(stats.kstwobign.sf((math.sqrt(en) + 0.12 + 0.11 / math.sqrt(en)) * d))
    assert z == pytest.approx(expected, rel=1e-9)
    assert stats.norm.sf(z) == pytest.approx(stats.ks_2samp(ref, cur, method="asymp").pvalue, rel=0.05)


def test_cell_chisquare_equals_the_engines_two_sample_test() -> None:
    ref = np.array([500.0, 300.0, 200.0, 0.0])
    cur = np.array([90.0, 80.0, 25.0, 5.0])
    _, p = ct.chisquare_two_sample(ref, cur)
    assert chisquare_scores(ref, cur)[0] == pytest.approx(stats.norm.isf(p), rel=1e-9)
    rows = chisquare_scores(np.vstack([ref, ref]), np.vstack([cur, ref]))
    assert rows[0] == pytest.approx(stats.norm.isf(p)) and rows[1] < -5  # identical shares: p = 1


def test_empty_window_scores_nan() -> None:
    assert math.isnan(ks_scores(np.array([5.0, 5.0]), np.zeros(2))[0])
    assert math.isnan(chisquare_scores(np.array([5.0, 5.0]), np.zeros(2))[0])
    assert math.isnan(ks_location_scale_scores(np.array([5.0, 5.0]), np.zeros(2))[0])


def _normal_scores(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """van der Waerden and Klotz z from raw samples (scipy's mid-ranks, the textbook permutation
    mean and variance), to check the cell version against."""
    pooled = np.concatenate([ref, cur])
    a = stats.norm.ppf(stats.rankdata(pooled) / (pooled.size + 1))
    out = []
    for score in (a, a * a):
        n, m, big_n = ref.size, cur.size, pooled.size
        centered = score - score.mean()
        var = m * n / (big_n * (big_n - 1)) * (centered**2).sum()
        out.append(centered[n:].sum() / math.sqrt(var))
    return out[0], out[1]


def test_rank_location_scale_equals_the_raw_sample_rank_tests() -> None:
    """With one cell per distinct value the cell statistics are van der Waerden's and Klotz's tests
    on the raw samples (ties by mid-ranks), and the location one tracks scipy's Mann-Whitney z."""
    rng = np.random.default_rng(2)
    ref, cur = rng.poisson(4, 3000), rng.poisson(4.3, 700)
    values = np.arange(0, max(ref.max(), cur.max()) + 1)
    r, c = (np.bincount(a, minlength=values.size).astype(float) for a in (ref, cur))
    z_loc, z_disp = rank_location_scale_z(r, c)
    exp_loc, exp_disp = _normal_scores(ref.astype(float), cur.astype(float))
    assert z_loc[0] == pytest.approx(exp_loc, rel=1e-9) and z_disp[0] == pytest.approx(exp_disp, rel=1e-9)
    mw = stats.mannwhitneyu(cur, ref, use_continuity=False, method="asymptotic")
    assert z_loc[0] > 3 and stats.norm.sf(z_loc[0]) == pytest.approx(mw.pvalue / 2, rel=0.5)
    # continuous data, the window spread 1.5x: dispersion, not location
    x, y = rng.normal(size=3000), rng.normal(0, 1.5, 700)
    edges = np.unique(np.concatenate([x, y]))[:-1]
    rx, cy = (np.diff(np.concatenate([[0], np.searchsorted(np.sort(a), edges, "right"), [a.size]])).astype(float) for a in (x, y))
    z_loc, z_disp = rank_location_scale_z(rx, cy)
    exp_loc, exp_disp = _normal_scores(x, y)
    assert z_loc[0] == pytest.approx(exp_loc, rel=1e-9) and z_disp[0] == pytest.approx(exp_disp, rel=1e-9)
    assert abs(z_loc[0]) < 3 and z_disp[0] > 5


def test_location_scale_score_is_sidak_of_the_three_tests() -> None:
    rng = np.random.default_rng(3)
    r = rng.multinomial(3000, np.full(50, 0.02)).astype(float)
    c = rng.multinomial(500, np.linspace(0.01, 0.03, 50) / np.linspace(0.01, 0.03, 50).sum()).astype(float)
    z_loc, z_disp = rank_location_scale_z(r, c)
    p_min = min(stats.norm.sf(ks_scores(r, c)[0]), 2 * stats.norm.sf(abs(z_loc[0])), 2 * stats.norm.sf(abs(z_disp[0])))
    assert ks_location_scale_scores(r, c)[0] == pytest.approx(stats.norm.isf(1 - (1 - p_min) ** 3), rel=1e-9)
    few_r, few_c = r[:21] + r[21:42], c[:21] + c[21:42]  # 21 cells: a distinct-valued column, KS alone
    assert ks_location_scale_scores(few_r, few_c)[0] == ks_scores(few_r, few_c)[0]


def test_location_scale_null_is_normal_in_the_upper_tail() -> None:
    """Under no change (reference and window drawn from one set of cell shares, as the bootstrap
    does) z is close to N(0, 1) in its upper tail: Sidak's correction holds each level up to the
    tests' mild anti-conservatism (at most 1.6x at 1e-3 here) and is conservative at moderate levels."""
    rng = np.random.default_rng(4)
    shares = np.full(200, 1 / 200)
    z = ks_location_scale_scores(rng.multinomial(5000, shares, size=60_000).astype(float),
                                 rng.multinomial(500, shares, size=60_000).astype(float))
    for level in (0.1, 0.01, 0.001):
        assert 0.5 * level < np.mean(z > stats.norm.isf(level)) < 1.6 * level, level


def test_location_scale_score_catches_a_mean_shift_cell_ks_misses() -> None:
    """A +0.2 std mean shift of a normal column, window 500 against a 5000-row reference over 200
    quantile cells: the combined score's z is larger than KS on cells' in most windows."""
    rng = np.random.default_rng(5)
    ref = np.sort(rng.normal(size=5000))
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 201)[1:-1]))
    r = np.diff(np.concatenate([[0], np.searchsorted(ref, edges, "right"), [ref.size]])).astype(float)
    wins = np.array([np.diff(np.concatenate([[0], np.searchsorted(np.sort(w), edges, "right"), [w.size]]))
                     for w in rng.normal(0.2, 1, size=(400, 500))]).astype(float)
    ks, combined = ks_scores(r, wins), ks_location_scale_scores(r, wins)
    threshold = stats.norm.isf(1e-3)
    assert np.mean(combined > threshold) > np.mean(ks > threshold) + 0.1
    assert np.mean(combined > ks) > 0.6


# -- the calibration -------------------------------------------------------------------------------


def test_bootstrap_fit_is_close_to_the_asymptotic_null_for_continuous_data(calibrated) -> None:
    _, _, cal = calibrated
    x = cal.features["x"]
    # Sidak's correction of the minimum of three p-values is conservative at moderate levels (the
    # tests are positively dependent), so the fitted location sits a little below 0
    assert -0.6 < x.location < 0.2 and 0.8 < x.scale < 1.35
    assert x.tail_exceedance_99 < 0.03  # the fitted normal tail is not too light
    assert not cal.features["color"].degenerate


def test_single_valued_column_drifts_when_enough_window_values_leave_its_value(calibrated) -> None:
    """A constant reference has no null variation to bootstrap; Fisher's exact test on the values that
    differ from it decides (it used to be 'degenerate' and never drift, even at 100% new values)."""
    ref, profile, cal = calibrated
    const = cal.features["const"]
    assert const.single_value and not const.degenerate
    k_min = int(const.single_window_statistic(cal.cusum, PLAN.records))
    assert 1 < k_min < 40
    base = ref.sample(400, random_state=0).reset_index(drop=True)
    detector = CalibratedDetector(profile, cal)
    assert not detector.evaluate(base).features["const"].drifted  # its own value only
    few = base.assign(const=np.where(np.arange(400) < k_min - 1, 99.0, 3.0))
    assert not detector.evaluate(few).features["const"].drifted  # below what the reference size allows
    result = detector.evaluate(base.assign(const=99.0))
    const_result = result.features["const"]
    assert const_result.drifted
    evidence = const_result.details["calibration"]
    assert evidence["rule"] == "single_value" and evidence["outside"] == 400 and evidence["p_value"] <= evidence["alpha"]


def test_single_valued_categories_and_numbers_flag_a_complete_change() -> None:
    """The reviewer's case: always "US" / flag 0 in the reference, a window of "FR" / flag 1."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"country": ["US"] * 2000, "flag": [0.0] * 2000, "x": rng.normal(size=2000)})
    specs = [ColumnSpec("country", "categorical"), ColumnSpec("flag", "numeric"), ColumnSpec("x", "numeric")]
    profile = build_profile(ref, specs)
    cal = calibrate(ref, profile, WindowPlan(records=500, step=250, interval=60), BudgetSpec(resamples=200))
    detector = CalibratedDetector(profile, cal)
    window = pd.DataFrame({"country": ["FR"] * 500, "flag": [1.0] * 500, "x": rng.normal(size=500)})
    result = detector.evaluate(window)
    assert result.features["country"].drifted and result.features["flag"].drifted
    assert not result.features["x"].drifted
    unchanged = pd.DataFrame({"country": ["US"] * 500, "flag": [0.0] * 500, "x": rng.normal(size=500)})
    assert not any(f.drifted for f in CalibratedDetector(profile, cal).evaluate(unchanged).features.values())


@pytest.mark.parametrize(("n", "m", "k"), [(2000, 500, 1), (2000, 500, 8), (50, 20, 20), (300, 1000, 37)])
def test_single_value_p_is_fishers_one_sided_exact_test(n: int, m: int, k: int) -> None:
    expected = stats.fisher_exact([[k, m - k], [0, n]], alternative="greater").pvalue
    assert single_value_p(n, m, k) == pytest.approx(expected, rel=1e-9)
    assert single_value_p(n, m, 0) == 1.0


def test_single_value_rule_holds_its_false_alarm_rate_under_the_two_sample_null() -> None:
    """Whatever the population's share q of other values, P(reference has none AND the window alarms)
    stays <= alpha (simulated over references and windows drawn from the same population)."""
    rng = np.random.default_rng(1)
    n, m, alpha, sims = 200, 100, 0.01, 200_000
    k_min = min_outside(n, m, alpha)
    assert single_value_p(n, m, k_min) <= alpha < single_value_p(n, m, k_min - 1)
    for q in (0.002, 0.01, 0.03, 0.1):
        ref_others = rng.binomial(n, q, sims)
        win_others = rng.binomial(m, q, sims)
        rate = np.mean((ref_others == 0) & (win_others >= k_min))
        assert rate <= alpha + 3 * math.sqrt(alpha / sims), (q, rate)


def test_power_of_a_single_valued_column_is_reported(calibrated) -> None:
    _, profile, cal = calibrated
    shift = detectable_shift(cal.features["const"], cal, profile.columns["const"], within=3, sims=200)
    assert 0.0 < shift < 0.2  # the share of rows leaving the value that is caught within 3 windows
    row = next(r for r in calibration_table(cal, profile, sims=100) if r["name"] == "const")
    assert row["single_value"] and row["shift_unit"].startswith("share of values differing")


def test_json_round_trip_and_determinism(calibrated) -> None:
    ref, profile, cal = calibrated
    back = Calibration.from_dict(json.loads(cal.to_json()))
    assert back == cal
    assert calibrate(ref, profile, PLAN, BUDGET) == cal  # seeded: the same inputs give the same rules
    assert back.features["x"].statistic == "ks_location_scale" and back.features["color"].statistic == "chisquare"
    for stale in ("0", "2"):  # "2": numeric columns scored by KS alone, before ks_location_scale
        with pytest.raises(ValueError, match="recompute"):
            Calibration.from_dict({**cal.to_dict(), "version": stale})


def test_fingerprint_changes_with_reference_window_and_budget(calibrated) -> None:
    ref, profile, cal = calibrated
    assert fingerprint(ref, profile, PLAN, BUDGET) == cal.fingerprint
    changed = ref.copy()
    changed.loc[7, "x"] += 1e-9
    assert fingerprint(changed, profile, PLAN, BUDGET) != cal.fingerprint
    assert fingerprint(ref, profile, WindowPlan(400, 100, 60.0), BUDGET) != cal.fingerprint
    assert fingerprint(ref, profile, PLAN, BudgetSpec(alarms=2, period=BUDGET.period, resamples=300)) != cal.fingerprint


def test_budget_is_split_over_columns_and_periods(calibrated) -> None:
    _, _, cal = calibrated
    live = sum(not f.degenerate for f in cal.features.values())
    windows = BUDGET.period / PLAN.interval
    assert cal.cusum.target_rate == pytest.approx(1 / (windows * live))
    assert cal.expected_false_alarms() * live == pytest.approx(BUDGET.alarms)


def test_a_budget_that_allows_an_alarm_every_window_is_refused() -> None:
    ref = _reference(500)
    profile = build_profile(ref, SPECS[:1], EngineSettings())
    with pytest.raises(ValueError, match="constrains nothing"):
        calibrate(ref, profile, PLAN, BudgetSpec(alarms=10, period=60.0, resamples=100))


# -- the CUSUM -------------------------------------------------------------------------------------


def test_cusum_meets_its_target_rate_on_fresh_null_streams() -> None:
    """Designed on one simulation, checked on another (different seed) with the same correlation."""
    for overlap, rho in ((1, 0.0), (3, 0.2)):
        d = sq.design(2e-3, overlap, rho)
        scores = sq.null_scores(np.random.default_rng(99), 256, 8000, overlap, rho)
        rate = sq.alarm_counts(scores, d.k, np.array([d.h]))[0] / scores.size
        assert rate == pytest.approx(2e-3, rel=0.3), (overlap, rho, rate)


def test_cusum_agrees_with_siegmund_and_accounts_for_overlap() -> None:
    iid = sq.design(1e-3, 1, 0.0)
    # Siegmund counts first passages only; re-crossings after a dip make our rate higher, never lower
    assert 1e3 <= sq.siegmund_arl(iid.k, iid.h) <= 3e3
    assert sq.design(1e-3, 4, 0.0).h > iid.h + 3  # correlated windows need a wider interval
    assert sq.design(1e-3, 1, 0.3).k > iid.k  # a shared noisy reference raises the slack


def test_nan_scores_leave_the_cusum_unchanged() -> None:
    s, alarm = sq.cusum_step(np.array([1.5]), np.array([math.nan]), 0.5, 2.0)
    assert s[0] == 1.5 and not alarm[0]


# -- deciding windows ------------------------------------------------------------------------------


def test_practical_size_gate_ignores_negligible_shifts_in_huge_windows() -> None:
    """100k-row windows make a 0.04 std shift overwhelmingly significant; the gate keeps it quiet,
    while a 0.3 std shift of the same windows is drifted."""
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    profile = build_profile(ref, [ColumnSpec("x", "numeric")], EngineSettings())
    plan = WindowPlan(records=100_000, step=100_000, interval=3600.0)
    cal = calibrate(ref, profile, plan, BudgetSpec(resamples=200))
    small = CalibratedDetector(profile, cal).evaluate(pd.DataFrame({"x": rng.normal(0.04, 1, 100_000)})).features["x"]
    evidence = small.details["calibration"]
    assert evidence["alarm"] and evidence["effect"] < 0.1 and not small.drifted
    big = CalibratedDetector(profile, cal).evaluate(pd.DataFrame({"x": rng.normal(0.3, 1, 100_000)})).features["x"]
    assert big.drifted and big.details["calibration"]["effect"] > 0.25


def test_detector_catches_shifts_and_new_categories_and_recomputes_the_dataset_verdict(calibrated) -> None:
    ref, profile, cal = calibrated
    rng = np.random.default_rng(5)
    quiet = CalibratedDetector(profile, cal)
    unchanged = quiet.evaluate(ref.sample(400, random_state=1))
    assert not any(f.drifted for f in unchanged.features.values())
    detector = CalibratedDetector(profile, cal)
    window = ref.sample(400, random_state=2).reset_index(drop=True)
    window["x"] += 1.5 * ref["x"].std()
    window.loc[rng.random(400) < 0.3, "color"] = "purple"
    result = detector.evaluate(window)
    assert result.features["x"].drifted and result.features["color"].drifted
    assert result.dataset.n_drifted == 2 and result.dataset.drift_share == pytest.approx(0.5) and result.dataset.drifted


def test_detector_state_survives_a_restart(calibrated) -> None:
    ref, profile, cal = calibrated
    windows = [ref.sample(400, random_state=i).assign(x=lambda d: d.x + 0.25 * ref.x.std()) for i in range(4)]
    one = CalibratedDetector(profile, cal)
    for w in windows[:2]:
        one.evaluate(w)
    two = CalibratedDetector(profile, cal)
    two.restore(json.loads(json.dumps(one.state())))
    assert [one.evaluate(w).to_dict() for w in windows[2:]] == [two.evaluate(w).to_dict() for w in windows[2:]]


def test_detectable_shift_grows_when_the_budget_tightens(calibrated) -> None:
    ref, profile, cal = calibrated
    loose = calibrate(ref, profile, PLAN, BudgetSpec(alarms=100, period=BUDGET.period, resamples=300))
    tight = detectable_shift(cal.features["x"], cal, profile.columns["x"], within=3, sims=200)
    easy = detectable_shift(loose.features["x"], loose, profile.columns["x"], within=3, sims=200)
    assert 0.1 <= easy < tight < 2.0
    assert detectable_shift(cal.features["color"], cal, profile.columns["color"], within=3, sims=200) < 0.5
    rows = calibration_table(cal, profile, within=3, sims=100)
    assert [r["name"] for r in rows] == ["x", "ticks", "color", "const"]
    assert rows[3]["single_value"] and not rows[3]["degenerate"] and 0 < rows[3]["detectable_shift"] < 1


# -- config ----------------------------------------------------------------------------------------


def test_window_plan_from_config() -> None:
    rate = FalseAlarmBudget(expected_records_per_second=10)
    assert plan_from_config(WindowConfig(records=1000, step=250), rate) == WindowPlan(1000, 250, 25.0)
    assert plan_from_config(WindowConfig(records=1000, step_duration=60), rate) == WindowPlan(1000, 600, 60.0)
    assert plan_from_config(WindowConfig(records=None, duration=600, step_duration=60), rate) == WindowPlan(6000, 600, 60.0)
    assert plan_from_config(WindowConfig(records=1000, step=500, step_duration=30), FalseAlarmBudget()) == WindowPlan(1000, 500, 30.0)
    with pytest.raises(ValueError, match="expected_records_per_second"):
        plan_from_config(WindowConfig(records=1000), FalseAlarmBudget())
    with pytest.raises(ValueError, match="expected_records_per_second"):
        plan_from_config(WindowConfig(records=None, duration=600, step_duration=60), FalseAlarmBudget())


# -- the CLI ---------------------------------------------------------------------------------------


def _config(tmp_path: Path, budget: dict | None) -> Path:
    ref = _reference(2000)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    model = {
        "name": "toy",
        "features": [{"name": s.name, "type": s.kind} for s in SPECS],
        "reference": {"path": "ref.csv"},
        "window": {"records": 400, "step": 200},
    }
    if budget is not None:
        model["false_alarm_budget"] = budget
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "models": [model]}))
    return path


def test_cli_calibrate_prints_thresholds_and_json(tmp_path: Path) -> None:
    config = _config(tmp_path, {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5})
    res = CliRunner().invoke(app, ["calibrate", "--config", str(config), "--within", "2"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "Calibrated alarms for toy" in text and "k = " in text and "h = " in text and "Fisher" in text and "7 differ" in text
    res = CliRunner().invoke(app, ["calibrate", "--config", str(config), "--model", "toy", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["window"] == {"records": 400, "step": 200, "interval": 40.0} and doc["within_windows"] == 3
    x = next(f for f in doc["features"] if f["name"] == "x")
    assert 0 < x["single_window_p_value"] < 1e-4 and 0 < x["detectable_shift"] < 2
    assert sum(f["expected_false_alarms_per_period"] for f in doc["features"]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("budget", "args", "message"),
    [
        (None, [], "has no false_alarm_budget"),
        ({"alarms": 1, "period": "7d"}, [], "expected_records_per_second"),
        ({"alarms": 1, "period": "7d", "expected_records_per_second": 5}, ["--model", "nope"], "no model 'nope' is configured"),
        ({"alarms": 100000, "period": "1h", "expected_records_per_second": 5}, [], "constrains nothing"),
    ],
)
def test_cli_calibrate_user_errors_exit_2(tmp_path: Path, budget: dict | None, args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, ["calibrate", "--config", str(_config(tmp_path, budget)), *args])
    assert res.exit_code == 2 and message in res.output.replace("\n", " ") and "Traceback" not in res.output


# -- the running monitor ---------------------------------------------------------------------------


def _events(start: int, rows: pd.DataFrame) -> list[dict]:
    """One `POST /v1/events` event per 50 rows (plain JSON records)."""
    out = []
    for k, lo in enumerate(range(0, len(rows), 50)):
        body = rows.iloc[lo : lo + 50].to_dict("records")
        out.append({
            "id": f"ev-{start + k}", "model": "toy", "timestamp": 1_700_000_000.0 + start + k, "latency_seconds": 0.001,
            "status": 200, "method": "POST", "path": "/predict",
            "request": {"body": json.dumps(body), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
            "response": {"body": json.dumps([{}] * len(body)), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        })
    return out


def test_monitor_decides_windows_of_a_budgeted_model_with_the_calibrated_rule(tmp_path: Path) -> None:
    """The real Monitor (SQLite store, sliding windows, evaluation) uses the calibration when the
    model has a false_alarm_budget: unchanged windows stay quiet, a shift is drifted, and the
    evidence is in the stored result."""
    import asyncio

    from monitor.capture import CapturedEvent
    from monitor.core.config import load_config
    from monitor.runtime import Monitor

    path = _config(tmp_path, {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5})
    data = yaml.safe_load(path.read_text())
    data["models"][0]["protocol"] = "json"
    data["server"] = {"store": {"path": str(tmp_path / "dw.db")}}
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    ref = pd.read_csv(tmp_path / "ref.csv")
    unchanged = ref.sample(800, random_state=1, replace=True).reset_index(drop=True)
    shifted = ref.sample(800, random_state=2, replace=True).reset_index(drop=True).assign(x=lambda d: d.x + 3.0)

    async def scenario() -> list[dict]:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            verdicts = []
            for start, rows in ((0, unchanged), (100, shifted)):
                for ev in _events(start, rows):
                    await mon.ingest([CapturedEvent.model_validate(ev)])
                    if mon.evaluate_due():
                        verdicts.append(mon.snapshot()["toy"].result.to_dict())
            return verdicts
        finally:
            await mon.stop()

    verdicts = asyncio.run(scenario())
    assert len(verdicts) == 8  # 1600 records, a window every 200
    assert all("calibration" in f["details"] for v in verdicts for f in v["features"].values())
    assert not any(f["drifted"] for v in verdicts[:4] for f in v["features"].values())
    assert verdicts[-1]["features"]["x"]["drifted"] and not verdicts[-1]["features"]["color"]["drifted"]
