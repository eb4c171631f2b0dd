"""Our scores against Evidently 0.7's own, on the same data through its public Report API.

Equal within 1e-6: normed Wasserstein, Jensen-Shannon (numeric and categorical), KS p-value,
categorical PSI, KL divergence, z-test p-value, and the `auto` choices of the evidently mode.
Different by design, each explained and tested below: numeric PSI (our bins are reference quantiles,
Evidently's are Sturges bins over the pooled range) and chi-square (ours is two-sample).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.drift import ColumnSpec, EngineSettings, build_profile, detect, evaluate, infer_specs
from monitor.drift import distance as dd
from monitor.drift import numeric as nm
from monitor.drift.categorical import chisquare_two_sample

TOL = 1e-6


@pytest.fixture(scope="module")
def evidently_scores() -> Callable[..., dict[str, float]]:
    """Run Evidently's DataDriftPreset; returns {column: drift score}. Imported once (~5 s)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def run(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str], **preset: Any) -> dict[str, float]:
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        snapshot = Report([DataDriftPreset(**preset)]).run(
            Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
        )
        return {
            m["config"]["column"]: float(m["value"])
            for m in snapshot.dict()["metrics"]
            if m["config"]["type"].endswith("ValueDrift")
        }

    return run


def _data(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float, shares: list[float]) -> pd.DataFrame:
        num = rng.normal(10 + shift, 3, n)
        num[rng.random(n) < 0.02] = np.nan  # both sides drop missing values ...
        num[rng.random(n) < 0.005] = np.inf  # ... and infinities before testing
        return pd.DataFrame(
            {
                "num": num,
                "skewed": rng.lognormal(shift / 3, 1, n),
                "cat": rng.choice(["a", "b", "c", "d"], n, p=shares),
                "binary": rng.choice(["yes", "no"], n, p=[shares[0] + shares[1], shares[2] + shares[3]]),
            }
        )

    return frame(n_ref, 0.0, [0.4, 0.3, 0.2, 0.1]), frame(n_cur, 0.4, [0.3, 0.3, 0.2, 0.2])


def _ours(ref: pd.DataFrame, cur: pd.DataFrame, methods: dict[str, str]) -> dict[str, float]:
    kinds = {"num": "numeric", "skewed": "numeric", "cat": "categorical", "binary": "categorical"}
    specs = [ColumnSpec(name, kinds[name.split("__")[0]], method) for name, method in methods.items()]  # type: ignore[arg-type]
    return {name: f.score for name, f in evaluate(build_profile(ref, specs), cur).features.items()}


def _duplicated(frame: pd.DataFrame, methods: dict[str, str]) -> pd.DataFrame:
    """One copy of a base column per method (`num__ks`), so one Evidently run covers every method."""
    return pd.DataFrame({name: frame[name.split("__")[0]] for name in methods})


@pytest.mark.parametrize(("n_ref", "n_cur"), [(3000, 1200), (800, 800)])
def test_same_scores_as_evidently_for_shared_definitions(evidently_scores: Callable[..., dict[str, float]], n_ref: int, n_cur: int) -> None:
    methods = {
        "num__wasserstein": "wasserstein",
        "num__jensenshannon": "jensenshannon",
        "num__ks": "ks",
        "num__kl_div": "kl_div",
        "skewed__wasserstein": "wasserstein",
        "skewed__jensenshannon": "jensenshannon",
        "skewed__ks": "ks",
        "cat__jensenshannon": "jensenshannon",
        "cat__psi": "psi",
        "binary__z": "z",
    }
    ref, cur = _data(n_ref, n_cur, seed=n_ref)
    ref_d, cur_d = _duplicated(ref, methods), _duplicated(cur, methods)
    theirs = evidently_scores(
        ref_d,
        cur_d,
        numeric=[c for c in methods if c.startswith(("num", "skewed"))],
        categorical=[c for c in methods if c.startswith(("cat", "binary"))],
        per_column_method=methods,
    )
    ours = _ours(ref_d, cur_d, methods)
    for column in methods:
        assert ours[column] == pytest.approx(theirs[column], abs=TOL), column


@pytest.mark.parametrize(("n_ref", "expected"), [(5000, {"num": "wasserstein", "skewed": "wasserstein", "cat": "jensenshannon", "binary": "jensenshannon"}), (1000, {"num": "ks", "skewed": "ks", "binary": "z"})])
def test_auto_matches_evidentlys_defaults(evidently_scores: Callable[..., dict[str, float]], n_ref: int, expected: dict[str, str]) -> None:
    ref, cur = _data(n_ref, 2000, seed=3)
    theirs = evidently_scores(ref, cur, numeric=["num", "skewed"], categorical=["cat", "binary"])
    result = evaluate(build_profile(ref, infer_specs(ref, cur), EngineSettings(auto="evidently")), cur)
    for column, method in expected.items():
        assert result.features[column].method == method
        assert result.features[column].score == pytest.approx(theirs[column], abs=TOL), column


@pytest.mark.parametrize("n_ref", [5000, 1000])
def test_auto_by_default_picks_the_permutation_tests_at_any_reference_size(n_ref: int) -> None:
    """driftwatch's default mode does not follow Evidently: one test per column type, whatever the size."""
    ref, cur = _data(n_ref, 2000, seed=3)
    result = detect(ref, cur)
    expected = {"num": "wasserstein_test", "skewed": "wasserstein_test", "cat": "chisquare_test", "binary": "chisquare_test"}
    assert {c: f.method for c, f in result.features.items()} == expected


def test_numeric_psi_differs_only_by_binning(evidently_scores: Callable[..., dict[str, float]]) -> None:
    """Evidently bins numeric PSI like Jensen-Shannon (Sturges bins over the pooled min..max, which move
    with every window); we use reference deciles, the industry convention, fixed in the profile so a
    window's PSI is comparable with the next one's. Same formula and empty-bin rule: with Evidently's
    bins our PSI equals theirs; with ours the value differs but both call the shift."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"num": rng.normal(0, 1, 4000)})
    cur = pd.DataFrame({"num": rng.normal(0.5, 1, 1500)})
    theirs = evidently_scores(ref[["num"]], cur[["num"]], numeric=["num"], categorical=[], per_column_method={"num": "psi"})["num"]
    r, c = np.sort(ref["num"].to_numpy()), np.sort(cur["num"].to_numpy())
    edges = nm.sturges_edges(min(r[0], c[0]), max(r[-1], c[-1]), r.size + c.size)
    assert dd.psi(nm.histogram_sorted(r, edges), nm.histogram_sorted(c, edges)) == pytest.approx(theirs, abs=TOL)
    ours = _ours(ref, cur, {"num": "psi"})["num"]
    assert abs(ours - theirs) > 1e-3 and ours >= 0.1 and theirs >= 0.1


def _evidently_chisquare() -> Callable[[pd.Series, pd.Series], float]:
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
    from evidently.legacy.core import ColumnType

    return lambda ref, cur: float(_chi_stat_test(ref, cur, ColumnType.Categorical, 0.05)[0])


def test_chisquare_is_two_sample_unlike_evidentlys_goodness_of_fit(evidently_scores: Callable[..., dict[str, float]]) -> None:
    """Evidently scales the reference counts to the window size and runs a one-sample goodness-of-fit
    test (scipy.stats.chisquare), treating the reference shares as exact. They are a sample too: the
    statistic's variance roughly doubles, so on unchanged data at 1k rows per side it flags far above
    5%. Our contingency test accounts for both samples and holds its nominal rate."""
    from scipy import stats

    ref, cur = _data(800, 800, seed=9)
    theirs = evidently_scores(ref[["cat"]], cur[["cat"]], numeric=[], categorical=["cat"], per_column_method={"cat": "chisquare"})["cat"]
    ref_counts = ref["cat"].value_counts().reindex(list("abcd")).to_numpy(float)
    cur_counts = cur["cat"].value_counts().reindex(list("abcd")).to_numpy(float)
    one_sample = stats.chisquare(cur_counts, ref_counts * cur_counts.sum() / ref_counts.sum()).pvalue
    assert theirs == pytest.approx(one_sample, abs=TOL)  # what Evidently computes
    assert _ours(ref, cur, {"cat": "chisquare"})["cat"] == pytest.approx(chisquare_two_sample(ref_counts, cur_counts)[1])

    rng = np.random.default_rng(1)
    evidently_chi = _evidently_chisquare()
    reps, shares, cats = 300, [0.3, 0.25, 0.2, 0.15, 0.1], np.array(list("abcde"))
    ours_flags = theirs_flags = 0
    for _ in range(reps):
        r, c = pd.Series(rng.choice(cats, 1000, p=shares)), pd.Series(rng.choice(cats, 1000, p=shares))
        rc = r.value_counts().reindex(cats, fill_value=0).to_numpy(float)
        cc = c.value_counts().reindex(cats, fill_value=0).to_numpy(float)
        ours_flags += chisquare_two_sample(rc, cc)[1] < 0.05
        theirs_flags += evidently_chi(r, c) < 0.05
    se = np.sqrt(0.05 * 0.95 / reps)
    assert abs(ours_flags / reps - 0.05) < 3 * se, ours_flags / reps
    assert theirs_flags / reps > 0.2, theirs_flags / reps  # ~0.3 expected for 5 categories (statistic ~ 2 x chi2(4))
