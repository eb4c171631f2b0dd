"""A small run of benchmarks/power.py (same functions, one window size, fewer windows): the issue's
finding and its fix, side by side in one run."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import load_benchmark

power = load_benchmark("power")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cells(monkeypatch_module: pytest.MonkeyPatch) -> dict:  # type: ignore[type-arg]
    monkeypatch_module.setattr(power, "WINDOWS", (200,))
    return power.run_column("numeric", power.COLUMNS["numeric (normal)"], 5000, n_null=150, trials=40, seed=1)


@pytest.fixture(scope="module")
def monkeypatch_module():  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_evidentlys_defaults_flag_unchanged_200_row_windows_often(cells) -> None:  # type: ignore[no-untyped-def]
    assert cells[(200, "unchanged")].evidently > 0.2


def test_driftwatchs_defaults_stay_quiet_on_the_same_windows(cells) -> None:  # type: ignore[no-untyped-def]
    assert cells[(200, "unchanged")].driftwatch <= 0.03


def test_a_half_std_shift_is_caught_by_the_defaults_and_by_rate_matched_evidently(cells) -> None:  # type: ignore[no-untyped-def]
    shifted = cells[(200, "mean +0.5 std")]
    assert (shifted.driftwatch >= 0.9, shifted.matched >= 0.9) == (True, True)


def test_the_table_has_a_row_per_window_and_change(cells) -> None:  # type: ignore[no-untyped-def]
    text = power.table({"numeric": cells}, 5000, 150, 40)
    assert text.count("| numeric |") == 4
