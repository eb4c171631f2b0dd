"""The demo's summary tables: counts that agree with the share beside them, scores that say which way they point."""

from __future__ import annotations

from typing import Any

from monitor.app.demo.run import drifted_columns_cell, flagged_row


def feature(name: str, *, drifted: bool, role: str = "feature", method: str = "ks", score: float = 0.01,
            adjusted: float | None = None, threshold: float = 0.05, **details: Any) -> dict[str, Any]:
    return {"name": name, "role": role, "method": method, "score": score, "drifted": drifted,
            "adjusted_p_value": score if adjusted is None else adjusted, "threshold": threshold, "details": details}


def window(*features: dict[str, Any]) -> dict[str, Any]:
    inputs = [f for f in features if f["role"] == "feature"]
    n_drifted = sum(f["drifted"] for f in inputs)
    return {
        "dataset": {"n_drifted": n_drifted, "n_features": len(inputs), "drift_share": n_drifted / len(inputs)},
        "features": {f["name"]: f for f in features},
    }


def test_drifted_count_is_of_inputs_like_the_share_and_outputs_are_named_apart() -> None:
    result = window(feature("a", drifted=True), feature("b", drifted=False), feature("y", drifted=True, role="output"))
    assert drifted_columns_cell(result) == "1 of 2: a (+ output y)"


def test_more_than_three_drifted_inputs_are_cut_short_but_counted() -> None:
    result = window(*(feature(n, drifted=True) for n in "abcde"), feature("f", drifted=False))
    assert drifted_columns_cell(result) == "5 of 6: a, b, c, …"


def test_only_outputs_drifted_counts_zero_inputs() -> None:
    result = window(feature("a", drifted=False), feature("y", drifted=True, role="output"), feature("z", drifted=True, role="output"))
    assert drifted_columns_cell(result) == "0 of 1 (+ outputs y, z)"


def test_window_without_drift_has_an_empty_cell() -> None:
    assert drifted_columns_cell(window(feature("a", drifted=False))) == ""


def test_a_p_value_is_said_to_drift_when_low() -> None:
    row = flagged_row(feature("alcohol", drifted=True, score=1e-9))
    assert row == ("alcohol", "ks", "1e-09", "p-value ↓ (lower = drift)", "p < 0.05")


def test_the_p_value_shown_is_the_adjusted_one_the_threshold_was_applied_to() -> None:
    row = flagged_row(feature("hue", drifted=True, score=0.01, adjusted=0.03))
    assert row[2:] == ("0.03", "p-value ↓ (lower = drift)", "p < 0.05 (BH-adjusted)")


def test_the_effect_gate_of_the_default_tests_is_part_of_the_rule() -> None:
    row = flagged_row(feature("alcohol", drifted=True, method="wasserstein_test", score=0.0005, threshold=0.01, min_effect=0.1))
    assert row == ("alcohol", "wasserstein_test", "0.0005", "p-value ↓ (lower = drift)", "p < 0.01 and effect ≥ 0.1")


def test_a_distance_is_said_to_drift_when_high() -> None:
    row = flagged_row(feature("proline", drifted=True, method="wasserstein", score=0.42, threshold=0.1))
    assert row == ("proline", "wasserstein", "0.42", "distance ↑ (higher = drift)", "distance ≥ 0.1")


def test_outputs_are_marked() -> None:
    assert flagged_row(feature("confidence", drifted=True, role="output"))[0] == "confidence (output)"


def test_a_type_change_is_named_instead_of_a_score() -> None:
    row = flagged_row(feature("age", drifted=True, method="wasserstein", score=float("nan"), type_changed=True))
    assert row[2:] == ("—", "values changed type", "always")
