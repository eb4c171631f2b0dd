"""benchmarks/report_examples.py at a small size: its window drifts, so it times real picking (five
window texts and three reference texts per text column, not an early return)."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import load_benchmark

bench = load_benchmark("report_examples")


def test_the_benchmark_times_picking_examples_of_both_text_columns(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--size", "400", "--repeats", "1"])
    assert capsys.readouterr().out.splitlines()[1].endswith("; 16 texts shown")
