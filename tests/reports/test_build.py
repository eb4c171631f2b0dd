"""The page builder on real engine results (churn example: reference vs drifted current)."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest

from monitor.drift import ColumnSpec, EngineSettings, build_profile, evaluate
from monitor.reports.build import EvidentlySection, render_error, render_index, render_report
from monitor.reports.plots import history_svg
from monitor.reports.source import Evaluation
from monitor.reports.view import effect_size, index_row, report_view, with_distributions
from tests.reports.conftest import check_golden
from tests.reports.memory_source import MemorySource


def _view(source: MemorySource, i: int = -1):
    ev = source.churn[i]
    view = report_view(ev, source.evaluations("churn", 30, before=ev.window_id))
    return with_distributions(view, source.reference, source.frames[ev.window_id])


def test_drifted_features_named_by_the_result_are_on_the_page_ranked(source: MemorySource) -> None:
    view = _view(source)
    html = render_report(view)
    ranked = [f.name for f in view.drifted]
    assert {f.name for f in view.result.drifted_features()} == set(ranked)  # the engine's verdicts
    assert {"tenure_months", "monthly_charges", "contract"} <= set(ranked)
    found = re.search(r'id="drifted-names">([^<]*)<', html)
    assert found is not None
    assert found.group(1).split(", ") == ranked
    rows = re.findall(r'<tr class="drifted" data-feature="([^"]+)"', html)
    assert rows == ranked  # the table lists drifted columns first
    effects = [effect_size(view.result.features[n]).value for n in ranked]
    assert effects == sorted(effects, reverse=True)  # largest effect first
    assert 'badge drift big' in html


def test_every_column_gets_a_distribution_plot(source: MemorySource) -> None:
    html = render_report(_view(source))
    for name in _view(source).result.features:
        assert html.count(f'<svg xmlns="http://www.w3.org/2000/svg" class="dist" data-feature="{name}"') == 1


def test_a_shifted_numeric_columns_histogram_moves_left(source: MemorySource) -> None:
    """tenure_months' drifted window has shorter tenures (new customers churn): more mass in the lower bins."""
    view = _view(source)
    tenure = next(d for d in view.distributions if d.feature == "tenure_months")
    h = tenure.shape
    assert h is not None and hasattr(h, "edges")
    half = len(h.reference) // 2
    assert sum(h.current[:half]) > sum(h.reference[:half]) + 0.1


def test_histogram_shares_of_each_side_sum_to_one(source: MemorySource) -> None:
    monthly = next(d for d in _view(source).distributions if d.feature == "monthly_charges")
    assert abs(sum(monthly.shape.reference) - 1) < 1e-4  # type: ignore[union-attr]
    assert abs(sum(monthly.shape.current) - 1) < 1e-4  # type: ignore[union-attr]


def test_category_bars_show_the_shares_the_engine_compared(source: MemorySource) -> None:
    view = _view(source)
    contract = next(d for d in view.distributions if d.feature == "contract")
    stored = view.result.features["contract"].details["categories"]
    assert contract.shape.labels == tuple(c["value"] for c in stored)  # type: ignore[union-attr]
    month = stored[contract.shape.labels.index("month-to-month")]  # type: ignore[union-attr]
    assert f"month-to-month: reference {100 * month['reference']:.1f}%, this window {100 * month['current']:.1f}%" in render_report(view)


def test_without_the_windows_records_numeric_plots_come_from_the_stored_quantiles(source: MemorySource) -> None:
    ev = source.churn[-1]
    view = with_distributions(report_view(ev, [ev]), None, None)
    tenure = next(d for d in view.distributions if d.feature == "tenure_months")
    q = tenure.shape
    assert q is not None and hasattr(q, "current")
    stored = view.result.features["tenure_months"].details["current"]["quantiles"]["50"]
    assert (stored, 0.5) in q.current  # type: ignore[union-attr]
    html = render_report(view)
    assert "no longer available: cumulative shares at the stored quantiles" in html


def test_the_share_note_explains_why_evidentlys_share_differs(source: MemorySource) -> None:
    view = _view(source)
    html = render_report(view)
    ds = view.result.dataset
    assert f"({ds.n_drifted} of {ds.n_features})" in html
    n_all = len(view.result.features)
    drifted_all = sum(f.drifted for f in view.result.features.values())
    assert drifted_all != ds.n_drifted  # the output drifted too: the two shares differ here
    assert f"outputs included: {drifted_all} of {n_all}" in html
    assert "churn_probability (drifted)" in html


def test_a_tiny_p_value_does_not_outrank_a_column_that_moved_further() -> None:
    """With 20,000 rows a 0.15-SD shift has p ~ 1e-40; a 1-SD shift measured as a distance ranks above it."""
    rng = np.random.default_rng(2)
    n = 20_000
    ref = pd.DataFrame({"slight": rng.normal(0, 1, n), "moved": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"slight": rng.normal(0.15, 1, n), "moved": rng.normal(1.0, 1, n)})
    specs = [ColumnSpec("slight", "numeric", "ks"), ColumnSpec("moved", "numeric", "wasserstein")]
    result = evaluate(build_profile(ref, specs, EngineSettings()), cur)
    slight = result.features["slight"]
    assert slight.p_value is not None and slight.p_value < 1e-20 and slight.drifted
    assert [f.name for f in result.drifted_features()] == ["slight", "moved"]  # the p-value ranking
    ev = Evaluation("m", n, 0.0, 1.0, 1, 2, n, 2.0, result.to_dict())
    html = render_report(report_view(ev, [ev]))
    assert re.findall(r'<tr class="drifted" data-feature="([^"]+)"', html) == ["moved", "slight"]
    row = re.search(r'<tr class="\w+" data-feature="slight">.*?</tr>', html)
    assert row is not None
    assert f"{slight.effect_size:.3g}<small>normed W1 (std units)</small>" in row.group(0)  # its effect
    assert slight.effect_size == pytest.approx(0.15, abs=0.03)
    assert f"{slight.p_value:.2e}" in row.group(0)  # and its p-value beside it
    assert "× threshold" not in html


def test_numbers_behind_plots_show_quantiles_and_category_shares(source: MemorySource) -> None:
    view = _view(source)
    html = render_report(view)
    contract = view.result.features["contract"].details["categories"]
    month = next(c for c in contract if c["value"] == "month-to-month")
    assert f"{100 * month['current']:.1f}%" in html
    q50 = view.result.features["tenure_months"].details["current"]["quantiles"]["50"]
    assert f"<td>p50</td><td class=num>{view.result.features['tenure_months'].details['reference']['quantiles']['50']:.4g}</td><td class=num>{q50:.4g}</td>" in html


def test_history_plot_has_a_panel_per_column_with_threshold_and_drifted_points(source: MemorySource) -> None:
    view = _view(source)
    svg = history_svg(view.series)
    assert svg.count('<g class="panel"') == len(view.result.features)
    assert svg.count("stroke-dasharray") == len(view.result.features)  # one threshold line each
    # tenure_months drifted in the last two windows only (the first three are reference resamples)
    tenure = next(s for s in view.series if s.feature == "tenure_months")
    assert [p.drifted for p in tenure.points] == [False, False, False, True, True]
    check_golden("history.svg", svg)


def test_p_value_series_use_the_adjusted_p_value_on_a_log_axis(source: MemorySource) -> None:
    senior = next(s for s in _view(source).series if s.feature == "senior")
    assert senior.lower_is_drift and senior.threshold == 0.01  # the default level (driftwatch mode)
    assert all(p.value is not None and 0 < p.value <= 1 for p in senior.points)
    assert "drift below" in history_svg([senior])


def test_report_page_is_deterministic_and_golden(source: MemorySource) -> None:
    html = render_report(_view(source))
    assert html == render_report(_view(source))
    check_golden("churn_window_2000.html", html)


def test_names_from_data_are_escaped(source: MemorySource) -> None:
    html = render_error(404, "Not found", "no model named '<script>alert(1)</script>'")
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_our_pages_forbid_script_and_evidentlys_frame_is_sandboxed(source: MemorySource) -> None:
    served = render_report(_view(source), evidently=EvidentlySection(scores={}, url="/e"))
    assert "script-src" not in served and "default-src &#x27;none&#x27;" in served  # no script may run
    assert '<iframe class="evidently" title="Evidently data drift report" sandbox="allow-scripts" ' in served
    offline = render_report(_view(source), evidently=EvidentlySection(scores={}, inline_html="<p>x</p>"))
    assert 'sandbox="allow-scripts" srcdoc=' in offline and "allow-same-origin" not in offline
    assert "connect-src" not in offline and "default-src &#x27;none&#x27;" in offline  # the frame inherits: no network


def test_index_lists_models_with_verdict_and_links(source: MemorySource) -> None:
    rows = [index_row(m, next(reversed(source.evaluations(m, 1)), None)) for m in source.models()]
    html = render_index(rows)
    assert 'href="/reports/churn"' in html and 'href="/reports/wine"' in html
    assert "not evaluated yet" in html  # wine has no window in this source
    assert 'data-model="churn"' in html and "badge drift" in html


def test_a_tests_raw_and_adjusted_p_values_are_both_shown_and_the_plot_names_the_adjusted_one() -> None:
    """The score metric exports the raw p-value; the verdict and the plot use the BH-adjusted one."""
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 600), "b": rng.normal(0, 1, 600)})
    cur = pd.DataFrame({"a": rng.normal(0.12, 1, 500), "b": rng.normal(0, 1, 500)})
    specs = [ColumnSpec("a", "numeric", "ks"), ColumnSpec("b", "numeric", "ks")]
    result = evaluate(build_profile(ref, specs, EngineSettings(multiple_testing="bh")), cur)
    a = result.features["a"]
    assert a.p_value is not None and a.adjusted_p_value is not None and a.adjusted_p_value > a.p_value
    ev = Evaluation("m", 500, 0.0, 1.0, 1, 2, 500, 2.0, result.to_dict())
    view = report_view(ev, [ev])
    series = next(s for s in view.series if s.feature == "a")
    assert series.points[-1].value == a.adjusted_p_value and series.quantity == "BH-adjusted p"
    html = render_report(view)
    row = re.search(r'<tr class="\w+" data-feature="a">.*?</tr>', html)
    assert row is not None and f'<td class="num pv">{a.p_value:.4g}<small>adjusted {a.adjusted_p_value:.4g}</small>' in row.group(0)
    assert "ks · BH-adjusted p" in html and "driftwatch_feature_drift_p_value" in html


def test_a_column_that_could_not_be_tested_says_why_instead_of_no_drift() -> None:
    """A data scientist must not read "no drift" for a column nobody could test."""
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 300), "empty": [np.nan] * 300})
    cur = pd.DataFrame({"a": rng.normal(0, 1, 200), "empty": rng.normal(0, 1, 200)})
    specs = [ColumnSpec("a", "numeric", "ks"), ColumnSpec("empty", "numeric", "ks")]
    result = evaluate(build_profile(ref, specs, EngineSettings()), cur)
    reason = result.features["empty"].untested
    assert reason is not None and result.features["a"].untested is None
    ev = Evaluation("m", 200, 0.0, 1.0, 1, 2, 200, 2.0, result.to_dict())
    view = report_view(ev, [ev])
    assert view.result.features["empty"].untested == reason and view.result.dataset.n_tested == 1
    html = render_report(view)
    row = re.search(r'<tr class="\w+" data-feature="empty">.*?</tr>', html)
    assert row is not None and "not tested" in row.group(0) and "no drift" not in row.group(0)
    assert html_escape(reason) in row.group(0)


def test_a_window_stamped_past_what_a_date_can_show_still_renders() -> None:
    """A store from before ingest bounded stamps may hold a millisecond stamp as a window's end."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 300)})
    result = evaluate(build_profile(ref, [ColumnSpec("a", "numeric", "ks")], EngineSettings()), ref.iloc[:100])
    ev = Evaluation("m", 100, 1795348800.0, 1.7e12, 1, 2, 100, 2.0, result.to_dict())
    html = render_report(report_view(ev, [ev]))
    assert "1.7e+12 s since 1970" in html
    assert "1.7e+12 s since 1970" in render_index([index_row("m", ev)])


def test_a_tests_effect_does_not_grow_with_the_sample_size() -> None:
    """The same 10-point share move is a total variation of 0.1 (and, for a result stored without the
    engine's effect size, a Cramér's V of about 0.1) at 2,000 and at 200,000 rows, while p collapses."""
    effects, stored_without, p_values = [], [], []
    for n in (2_000, 200_000):
        ref = pd.DataFrame({"plan": ["a"] * (n // 2) + ["b"] * (n // 2)})
        cur = pd.DataFrame({"plan": ["a"] * (6 * n // 10) + ["b"] * (4 * n // 10)})
        result = evaluate(build_profile(ref, [ColumnSpec("plan", "categorical", "chisquare")], EngineSettings()), cur)
        f = result.features["plan"]
        effect = effect_size(f)
        assert effect.label == "total variation"
        effects.append(effect.value)
        older = effect_size(replace(f, effect_size=math.nan))
        assert older.label == "Cramér's V"
        stored_without.append(older.value)
        p_values.append(f.p_value)
    for values in (effects, stored_without):
        assert values[0] == pytest.approx(0.1, abs=0.005)
        assert values[1] == pytest.approx(values[0], abs=0.001)
    assert p_values[1] < 1e-100 < p_values[0]
