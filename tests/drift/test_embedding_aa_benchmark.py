"""benchmarks/embedding_aa.py, small: unchanged windows judged against small references keep the
stated rate (a 500-row reference flagged 7.9% of them before a rare value it missed stopped being drift)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from tests.benchmark_modules import load_benchmark

WINDOWS = 300


def test_small_references_keep_the_stated_false_alarm_rate() -> None:
    flags, _ = load_benchmark("embedding_aa").rate(500, 100, WINDOWS, 50, 0.01, np.random.default_rng(7))
    assert flags <= stats.binom.ppf(0.999, WINDOWS, 0.01)
