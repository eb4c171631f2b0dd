"""The drift-method registry (monitor/core/methods.py) is the only list of methods: the engine's
implementations, its results, the `auto` choice, calibration's scores, the docs table and the
dashboards' PromQL each agree with it, and the registry's own checks catch a bad declaration."""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.core import methods
from monitor.drift import ColumnSpec, EngineSettings, build_profile, evaluate
from monitor.drift import implementations as impl
from monitor.drift.calibration import SCORES, BudgetSpec, WindowPlan, calibrate
from monitor.drift.spec import AUTO_DISCRETE_MAX_VALUES, resolve_method

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "drift-methods.md"
APPLICABLE = [(m.name, kind) for m in methods.METHODS for kind in methods.KINDS if kind in m.kinds]


def _frames(kind: str, shift: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A two-valued reference and window (every method applies to two values), shifted or not; for
    an embedding column, 8-dimensional vectors whose first dimension moves by one standard deviation."""
    rng = np.random.default_rng(7)
    if kind == "embedding":
        ref_v, cur_v = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
        cur_v[:, 0] += 1.0 if shift else 0.0
        return pd.DataFrame({"c": list(ref_v)}), pd.DataFrame({"c": list(cur_v)})
    ref = rng.choice([0.0, 1.0], 300, p=[0.8, 0.2]) if kind == "numeric" else rng.choice(["a", "b"], 300, p=[0.8, 0.2])
    p = [0.2, 0.8] if shift else [0.8, 0.2]
    cur = rng.choice([0.0, 1.0], 300, p=p) if kind == "numeric" else rng.choice(["a", "b"], 300, p=p)
    return pd.DataFrame({"c": ref}), pd.DataFrame({"c": cur})


def _result(method: str, kind: str, shift: bool = False):  # type: ignore[no-untyped-def]
    ref, cur = _frames(kind, shift)
    return evaluate(build_profile(ref, [ColumnSpec("c", kind, method)]), cur).features["c"]  # type: ignore[arg-type]


# -- the registry itself ---------------------------------------------------------------------------


def test_the_registry_declares_each_method_once_and_consistently() -> None:
    assert methods.problems(methods.METHODS) == []


def test_a_method_declared_twice_is_a_problem() -> None:
    assert any("declared twice" in p for p in methods.problems([*methods.METHODS, methods.get("ks")]))


def test_a_p_value_that_drifts_when_high_is_a_problem() -> None:
    bad = [replace(m, direction="high") if m.name == "ks" else m for m in methods.METHODS]
    assert any(p.startswith("'ks': a p_value drifts when low") for p in methods.problems(bad))


def test_an_auto_case_without_a_method_is_a_problem() -> None:
    bad = [replace(m, auto=frozenset()) if m.name == "wasserstein" else m for m in methods.METHODS]
    assert any("'large_continuous' must pick exactly one method" in p for p in methods.problems(bad))


def test_a_method_without_a_calibration_score_for_a_kind_it_applies_to_is_a_problem() -> None:
    bad = [replace(m, calibration={"numeric": "ks"}) if m.name == "psi" else m for m in methods.METHODS]
    assert any(p.startswith("'psi': calibration scores") for p in methods.problems(bad))


def test_an_unknown_method_names_the_choices() -> None:
    with pytest.raises(KeyError, match="unknown drift method 'kolmogorov'; choose one of wasserstein_test, chisquare_test, ks, wasserstein"):
        methods.get("kolmogorov")


def test_the_registry_imports_nothing_from_driftwatch_and_nothing_heavy() -> None:
    """It sits in the bottom layer beside the config schema: stdlib imports only."""
    tree = ast.parse((ROOT / "monitor" / "core" / "methods.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# -- the engine's implementations ------------------------------------------------------------------


def test_every_declared_method_has_an_implementation_and_every_implementation_a_declaration() -> None:
    assert impl.mismatches(impl.ON_SAMPLES, impl.ON_COUNTS) == []


def test_a_declared_method_without_an_implementation_is_a_mismatch() -> None:
    counts = {k: v for k, v in impl.ON_COUNTS.items() if k != "linf"}
    assert impl.mismatches(impl.ON_SAMPLES, counts) == ["'linf' applies to categorical columns but has no implementation on counts"]


def test_an_implementation_without_a_declaration_is_a_mismatch() -> None:
    counts = {**impl.ON_COUNTS, "bhattacharyya": impl.ON_COUNTS["hellinger"]}
    assert impl.mismatches(impl.ON_SAMPLES, counts) == ["'bhattacharyya' is implemented but not declared in monitor.core.methods"]


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_a_method_yields_what_the_registry_declares(method: str, kind: str) -> None:
    f = _result(method, kind)
    assert (f.p_value is not None) == (methods.get(method).yields == "p_value"), f


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_a_result_is_a_test_exactly_when_its_method_yields_a_p_value(method: str, kind: str) -> None:
    assert _result(method, kind).is_test == (methods.get(method).yields == "p_value")


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_a_column_without_threshold_gets_the_declared_default(method: str, kind: str) -> None:
    """A distance gets the registry's default; a test gets the window's one level (0.01 by default)."""
    declared = methods.get(method)
    expected = EngineSettings().level if declared.yields == "p_value" else declared.default_threshold
    assert _result(method, kind).threshold == expected


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_in_evidently_mode_a_column_without_threshold_gets_the_registry_default(method: str, kind: str) -> None:
    ref, cur = _frames(kind, shift=False)
    profile = build_profile(ref, [ColumnSpec("c", kind, method)], EngineSettings(auto="evidently"))  # type: ignore[arg-type]
    assert evaluate(profile, cur).features["c"].threshold == methods.get(method).default_threshold


def test_every_registry_test_default_is_evidentlys_level_so_bh_has_one_level() -> None:
    assert {m.default_threshold for m in methods.METHODS if m.yields == "p_value"} == {EngineSettings(auto="evidently").level}


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_a_clear_shift_drifts_in_the_declared_direction(method: str, kind: str) -> None:
    f = _result(method, kind, shift=True)
    past = f.score < f.threshold if methods.get(method).direction == "low" else f.score >= f.threshold
    assert past, f


@pytest.mark.parametrize(("method", "kind"), APPLICABLE)
def test_a_clear_shift_is_drift(method: str, kind: str) -> None:
    assert _result(method, kind, shift=True).drifted


# -- auto ------------------------------------------------------------------------------------------

# (kind, reference rows, distinct reference values) in each of the registry's auto cases
AUTO_INPUTS: dict[str, tuple[str, int, int]] = {
    "continuous": ("numeric", 5000, 100),
    "discrete": ("categorical", 500, 3),
    "small_continuous": ("numeric", 500, 100),
    "large_continuous": ("numeric", 5000, 100),
    "small_discrete": ("categorical", 500, 3),
    "small_binary": ("categorical", 500, 2),
    "large_discrete": ("categorical", 5000, 3),
}


def test_every_auto_case_is_exercised() -> None:
    assert set(AUTO_INPUTS) == set(methods.AUTO_CASES)


def _mode(case: methods.AutoCase) -> methods.AutoMode:
    (mode,) = [m for m in methods.AUTO_MODES if case in methods.AUTO_CASES_BY_MODE[m]]
    return mode


def test_every_auto_case_belongs_to_exactly_one_mode() -> None:
    assert sorted(c for m in methods.AUTO_MODES for c in methods.AUTO_CASES_BY_MODE[m]) == sorted(set(methods.AUTO_CASES))


@pytest.mark.parametrize("case", methods.AUTO_CASES)
def test_auto_picks_the_method_the_registry_declares_for_the_case(case: methods.AutoCase) -> None:
    kind, rows, distinct = AUTO_INPUTS[case]
    settings = EngineSettings(auto=_mode(case))
    assert resolve_method(kind, "auto", rows, distinct, settings) == methods.auto_choice(case)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(methods.DISCRETE_AUTO_CASES))
def test_a_few_valued_numeric_column_resolves_like_a_categorical_one(case: methods.AutoCase) -> None:
    _, rows, distinct = AUTO_INPUTS[case]
    assert distinct <= AUTO_DISCRETE_MAX_VALUES
    settings = EngineSettings(auto=_mode(case))
    assert resolve_method("numeric", "auto", rows, distinct, settings) == methods.auto_choice(case)


def test_by_default_auto_picks_the_permutation_tests() -> None:
    assert methods.auto_choice("continuous") == "wasserstein_test"
    assert methods.auto_choice("discrete") == "chisquare_test"
    assert resolve_method("numeric", "auto", 500, 100, EngineSettings()) == "wasserstein_test"
    assert resolve_method("numeric", "auto", 500, 3, EngineSettings()) == "chisquare_test"
    assert resolve_method("categorical", "auto", 500, 3, EngineSettings()) == "chisquare_test"


# -- calibration -----------------------------------------------------------------------------------


def test_calibration_scores_are_the_ones_the_registry_names() -> None:
    assert set(SCORES) == methods.CALIBRATION_SCORES


@pytest.mark.parametrize(("method", "kind"), [(m.name, k) for m in methods.METHODS for k in methods.CALIBRATED_KINDS if k in m.applies_to])
def test_calibrate_scores_a_column_with_its_methods_declared_score(method: str, kind: str) -> None:
    ref, _ = _frames(kind, shift=False)
    profile = build_profile(ref, [ColumnSpec("c", kind)], EngineSettings())  # type: ignore[arg-type]
    # a numeric column gets a discrete method from `auto` (few values): set the resolved method directly
    profile = replace(profile, columns={"c": replace(profile.columns["c"], method=method)})
    cal = calibrate(ref, profile, WindowPlan(records=100, step=100, interval=60.0), BudgetSpec(resamples=50))
    assert cal.features["c"].statistic == methods.calibration_score(method, kind)  # type: ignore[arg-type]


# -- documentation and dashboards ------------------------------------------------------------------


def test_the_docs_method_table_is_the_one_the_registry_renders() -> None:
    """Regenerate it with `python -m monitor.core.methods` (between the methods-table markers)."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- methods-table:[^\n]*-->\n(.*?)<!-- /methods-table -->", text, re.S)
    assert found is not None, "docs/drift-methods.md lost its methods-table markers"
    assert found.group(1) == methods.markdown_table()


def test_no_generated_query_needs_to_know_which_method_yields_what() -> None:
    """One meaning per metric family: dashboards and rules never select by method name."""
    import dashboards
    from alerts.rules import groups
    from monitor.core.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "config.yaml")
    generated = json.dumps(dashboards.generate(cfg)) + json.dumps(groups(cfg))
    assert re.findall(r"method[!=]~?", generated) == []


def test_the_evidently_comparison_maps_only_registry_methods() -> None:
    from monitor.reports import evidently_report as ev

    assert set(ev.EVIDENTLY_METHODS) <= set(methods.NAMES)


def test_the_evidently_comparison_explains_every_method_it_does_not_map() -> None:
    from monitor.reports import evidently_report as ev

    unexplained = [n for n in methods.NAMES if n not in ev.EVIDENTLY_METHODS and ev.definition_note("categorical", n) is None]
    assert unexplained == []


def test_the_evidently_comparison_treats_the_registry_p_value_methods_as_tests() -> None:
    from monitor.reports import evidently_report as ev

    assert ev.P_VALUE_STATTESTS == methods.P_VALUE_METHODS
