"""Descriptors through the drift engine as ordinary features: quiet on unchanged text at the
engine's stated rate (docs/drift-methods.md: at most 1% of windows flag any feature with the
defaults), loud on a change of language, topic or length.

Repetitions are sized so a rate of 5% (five times the stated one) fails the one-sided binomial test
at 0.001: 200 windows, each against a fresh reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.drift import build_profile, evaluate
from monitor.drift.result import DriftResult
from monitor.text import build_text_profile, describe, describe_reference, descriptor_specs
from tests.infra.text_corpus import corpus

REFERENCE, WINDOW = 1000, 300
STATED_RATE = 0.01


def _drift(reference_texts: list[str], window_texts: list[str]) -> DriftResult:
    text_profile = build_text_profile(reference_texts)
    reference = describe_reference(reference_texts, text_profile)
    profile = build_profile(pd.DataFrame(reference), descriptor_specs(reference))
    return evaluate(profile, pd.DataFrame(describe(window_texts, text_profile)))


@pytest.mark.slow
def test_unchanged_text_flags_no_descriptor_beyond_the_stated_rate() -> None:
    rng = np.random.default_rng(11)
    windows = 200
    flagged = sum(_drift(corpus(rng, REFERENCE), corpus(rng, WINDOW)).dataset.n_drifted > 0 for _ in range(windows))
    assert stats.binomtest(flagged, windows, STATED_RATE, alternative="greater").pvalue > 0.001, f"{flagged} of {windows}"


def test_every_descriptor_is_tested_on_unchanged_text() -> None:
    """No descriptor is left untested (a column without usable reference values would never drift)."""
    rng = np.random.default_rng(12)
    result = _drift(corpus(rng, REFERENCE), corpus(rng, WINDOW))
    assert {n: f.untested for n, f in result.features.items() if f.untested} == {}


SHIFTS = {
    # change: (window topic, mean words, descriptors that must drift)
    "English to German": ("german", 12.0, {"non_ascii_share", "oov_share"}),
    "English to Russian": ("russian", 12.0, {"script", "non_ascii_share", "oov_share"}),
    "weather to finance": ("finance", 12.0, {"oov_share"}),
    "prompts three times longer": ("weather", 36.0, {"chars", "words"}),
}


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_a_change_of_language_topic_or_length_is_detected_in_every_window(shift: str) -> None:
    topic, mean_words, expected = SHIFTS[shift]
    rng = np.random.default_rng(sorted(SHIFTS).index(shift))
    trials = 10
    caught = 0
    for _ in range(trials):
        result = _drift(corpus(rng, REFERENCE), corpus(rng, WINDOW, topic, mean_words))
        caught += expected <= {f.name for f in result.drifted_features()}
    assert caught == trials, f"{shift}: {caught} of {trials}"
