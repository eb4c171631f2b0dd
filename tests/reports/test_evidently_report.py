"""Evidently run with our engine's per-column methods and thresholds: the numbers must agree."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.drift import ColumnSpec, EngineSettings, build_profile, evaluate
from monitor.reports.build import EvidentlySection, render_agreement
from monitor.reports.evidently_report import EvidentlyScore, definition_note, plans_from_result, run_evidently
from monitor.reports.view import report_view
from tests.reports.memory_source import MemorySource

TOL = 1e-6


def _agree(result: Mapping[str, Any], scores: Mapping[str, EvidentlyScore]) -> dict[str, tuple[float, float]]:
    return {n: (f["score"], scores[n].score) for n, f in result["features"].items() if definition_note(f["kind"], f["method"]) is None}


def test_churn_numbers_equal_evidentlys_and_the_page_says_so(source: MemorySource) -> None:
    ev = source.churn[-1]
    outcome = run_evidently(source.reference, source.frames[ev.window_id], plans_from_result(ev.result), 0.5)
    pairs = _agree(ev.result, outcome.scores)
    assert set(pairs) == set(ev.result["features"])  # wasserstein, jensenshannon and z: all shared
    for name, (ours, theirs) in pairs.items():
        assert ours == pytest.approx(theirs, abs=TOL), name
        assert outcome.scores[name].drifted == ev.result["features"][name]["drifted"], name
    assert outcome.html.lstrip().lower().startswith("<html") or "<html" in outcome.html[:200].lower()
    assert "http://" not in outcome.html.split("<script", 1)[0]  # self-contained: no external stylesheet
    view = report_view(ev, source.evaluations("churn", 30))
    page = render_agreement(view, EvidentlySection(scores=outcome.scores))
    assert page.count("✓") == len(pairs) and "differs by" not in page


def test_every_shared_method_agrees_on_small_samples() -> None:
    """Reference <= 1000 rows: tests (p-values) and binned distances (Sturges bins, as Evidently)."""
    rng = np.random.default_rng(3)
    methods = ["ks", "psi", "jensenshannon", "kl_div", "wasserstein", "hellinger", "anderson", "cramer_von_mises", "energy"]
    ref = pd.DataFrame({m: rng.normal(0, 1, 800) for m in methods})
    cur = pd.DataFrame({m: rng.normal(0.2, 1.1, 600) for m in methods})
    ref["cat_psi"] = ref["cat_js"] = rng.choice(list("xyz"), 800, p=[0.5, 0.3, 0.2])
    cur["cat_psi"] = cur["cat_js"] = rng.choice(list("xyz"), 600, p=[0.4, 0.3, 0.3])
    specs = [ColumnSpec(m, "numeric", m) for m in methods]
    specs += [ColumnSpec("cat_psi", "categorical", "psi"), ColumnSpec("cat_js", "categorical", "jensenshannon")]
    result = evaluate(build_profile(ref, specs, EngineSettings(multiple_testing="none")), cur).to_dict()
    outcome = run_evidently(ref, cur, plans_from_result(result), 0.5)
    pairs = _agree(result, outcome.scores)
    assert set(pairs) == set(result["features"]) - {"psi"}  # numeric PSI bins differently, by design
    for name, (ours, theirs) in pairs.items():
        assert math.isclose(ours, theirs, rel_tol=0, abs_tol=TOL), (name, ours, theirs)
        assert outcome.scores[name].drifted == result["features"][name]["drifted"], name


def test_methods_defined_differently_are_flagged_not_compared(source: MemorySource) -> None:
    ev = source.churn[-1]
    result = {**ev.result, "features": {**ev.result["features"], "contract": {**ev.result["features"]["contract"], "method": "chisquare", "threshold": 0.05}}}
    plans = {p.name: p for p in plans_from_result(result)}
    assert plans["contract"].evidently_method == "chisquare" and plans["contract"].kind == "categorical"
    view = report_view(type(ev)(**{**ev.__dict__, "result": result}), [])
    from monitor.reports.evidently_report import EvidentlyScore

    page = render_agreement(view, EvidentlySection(scores={"contract": EvidentlyScore("chisquare", 0.05, 0.5)}))
    assert "defined differently" in page
