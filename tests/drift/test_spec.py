"""Column specs, automatic method choice and the config bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.config import load_config, parse_config
from monitor.drift import ColumnSpec, EngineSettings, specs_from_config
from monitor.drift.spec import resolve_method

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "config.yaml"


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_distinct", "expected"),
    [
        ("numeric", 1000, 500, "ks"),
        ("numeric", 1001, 500, "wasserstein"),
        ("numeric", 800, 5, "chisquare"),  # few distinct values: compared as categories, like Evidently
        ("numeric", 800, 2, "z"),
        ("numeric", 5000, 4, "jensenshannon"),
        ("categorical", 1000, 6, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("categorical", 1001, 2, "jensenshannon"),
    ],
)
def test_auto_in_evidently_mode_follows_evidently_defaults(kind: str, n_ref: int, n_distinct: int, expected: str) -> None:
    assert resolve_method(kind, "auto", n_ref, n_distinct, EngineSettings(auto="evidently")) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_distinct", "expected"),
    [
        ("numeric", 1000, 500, "wasserstein_test"),
        ("numeric", 1_000_000, 500, "wasserstein_test"),  # no switch to a fixed distance on a large reference
        ("numeric", 50, 6, "wasserstein_test"),
        ("numeric", 800, 5, "chisquare_test"),  # few distinct values: compared as categories
        ("numeric", 800, 2, "chisquare_test"),
        ("numeric", 5000, 4, "chisquare_test"),
        ("categorical", 1000, 6, "chisquare_test"),
        ("categorical", 1000, 2, "chisquare_test"),
        ("categorical", 1_000_000, 2, "chisquare_test"),
    ],
)
def test_auto_by_default_picks_the_permutation_tests(kind: str, n_ref: int, n_distinct: int, expected: str) -> None:
    assert EngineSettings().auto == "driftwatch"
    assert resolve_method(kind, "auto", n_ref, n_distinct, EngineSettings()) == expected  # type: ignore[arg-type]


def test_the_default_level_is_0_01_in_driftwatch_mode_and_0_05_in_evidently_mode_unless_alpha_is_set() -> None:
    assert EngineSettings().level == 0.01
    assert EngineSettings(auto="evidently").level == 0.05
    assert EngineSettings(alpha=0.02).level == EngineSettings(auto="evidently", alpha=0.02).level == 0.02
    with pytest.raises(ValueError, match="auto"):
        EngineSettings(auto="scipy")  # type: ignore[arg-type]


def test_explicit_method_is_kept_and_large_reference_rows_moves_the_switch() -> None:
    assert resolve_method("numeric", "energy", 10, 10, EngineSettings()) == "energy"
    assert resolve_method("numeric", "energy", 10, 10, EngineSettings(auto="evidently")) == "energy"
    assert resolve_method("numeric", "auto", 5000, 100, EngineSettings(auto="evidently", large_reference_rows=10_000)) == "ks"
    # driftwatch mode has no switch to move
    assert resolve_method("numeric", "auto", 5000, 100, EngineSettings(large_reference_rows=10_000)) == "wasserstein_test"


def test_bad_specs_and_settings_are_rejected_with_the_column_name() -> None:
    with pytest.raises(ValueError, match=r"'age'.*chisquare"):
        ColumnSpec("age", "numeric", method="chisquare")
    with pytest.raises(ValueError, match="kind"):
        ColumnSpec("age", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        ColumnSpec("age", "numeric", threshold=0)
    with pytest.raises(ValueError, match="dataset_drift_share"):
        EngineSettings(dataset_drift_share=1.5)


def test_example_config_churn_model() -> None:
    specs, settings = specs_from_config(load_config(EXAMPLE), "churn")
    by_name = {s.name: s for s in specs}
    assert [s.name for s in specs][-1] == "churn_probability" and by_name["churn_probability"].role == "output"
    assert by_name["tenure_months"] == ColumnSpec("tenure_months", "numeric", "wasserstein", 0.1, "feature")
    assert by_name["contract"].method == "jensenshannon" and by_name["contract"].threshold == 0.1
    # a per-feature method replaces the per-type one and does not inherit its threshold
    assert (by_name["senior"].method, by_name["senior"].threshold) == ("z", None)
    assert settings == EngineSettings(dataset_drift_share=0.5, multiple_testing="bh")


def _config(extra_feature: dict, drift: dict | None = None) -> dict:
    model = {
        "name": "m",
        "features": [{"name": "a", "type": "numeric", "min_value": 0, "max_value": 10}, extra_feature],
        "outputs": [{"name": "y", "type": "categorical"}],
        "reference": {"path": "ref.csv"},
    }
    if drift is not None:
        model["drift"] = drift
    return {"models": [model]}


def test_feature_threshold_alone_keeps_the_type_method_and_ranges_flow_through() -> None:
    cfg = parse_config(
        _config(
            {"name": "b", "type": "numeric", "drift": {"threshold": 0.3}},
            {"numeric": {"method": "psi", "threshold": 0.2}, "multiple_testing": "none", "large_reference_rows": 50},
        )
    )
    specs, settings = specs_from_config(cfg)  # a single model need not be named
    by_name = {s.name: s for s in specs}
    assert (by_name["a"].method, by_name["a"].threshold) == ("psi", 0.2)
    assert (by_name["b"].method, by_name["b"].threshold) == ("psi", 0.3)
    assert (by_name["a"].min_value, by_name["a"].max_value) == (0, 10)
    assert by_name["y"] == ColumnSpec("y", "categorical", role="output")
    assert settings.multiple_testing == "none" and settings.large_reference_rows == 50


def test_model_config_alone_and_model_selection_errors() -> None:
    cfg = load_config(EXAMPLE)
    wine = cfg.model("wine")
    specs, settings = specs_from_config(wine)
    assert [s.name for s in specs] == [c.name for c in (*wine.features, *wine.outputs)]
    assert settings == EngineSettings()
    with pytest.raises(ValueError, match="2 models"):
        specs_from_config(cfg)
    with pytest.raises(ValueError, match="no model 'nope' is configured"):
        specs_from_config(cfg, "nope")


def test_a_numeric_column_without_reference_values_never_resolves_to_a_categorical_test() -> None:
    assert resolve_method("numeric", "auto", 0, 0, EngineSettings()) == "wasserstein_test"
    assert resolve_method("numeric", "auto", 0, 0, EngineSettings(auto="evidently")) == "ks"


def test_type_datetime_in_the_config_is_a_numeric_datetime_spec() -> None:
    cfg = parse_config({"models": [{"name": "m", "features": [{"name": "t", "type": "datetime"}], "reference": {"path": "r.csv"}}]})
    spec = specs_from_config(cfg)[0][0]
    assert (spec.kind, spec.datetime) == ("numeric", True)
