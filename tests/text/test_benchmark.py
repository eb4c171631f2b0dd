"""benchmarks/text_descriptors.py at a small size: its per-descriptor parts are the descriptors
`describe` returns, and beside Evidently they agree where the definitions are the same."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.text import build_text_profile, describe
from tests.benchmark_modules import load_benchmark
from tests.infra.text_corpus import corpus

bench = load_benchmark("text_descriptors")
TEXTS = corpus(np.random.default_rng(9), 600)


@pytest.fixture(scope="module")
def ours() -> dict:
    return bench.ours(TEXTS, repeats=1)


@pytest.fixture(scope="module")
def theirs() -> dict:
    return bench.evidently_descriptors(TEXTS, repeats=1)


@pytest.mark.parametrize("name", ["chars", "words", "non_ascii_share", "non_letter_share", "oov_share", "refusal", "pii_hits"])
def test_each_timed_part_computes_what_describe_returns(ours: dict, name: str) -> None:
    profile = build_text_profile(TEXTS[: len(TEXTS) // 2], json_expected=True)
    np.testing.assert_array_equal(ours[name][1], describe(TEXTS, profile)[name])


@pytest.mark.parametrize("name", ["chars", "non_letter_share", "refusal", "json_valid"])
def test_evidentlys_descriptor_of_the_same_definition_agrees(ours: dict, theirs: dict, name: str) -> None:
    np.testing.assert_allclose(ours[name][1], theirs[name][1], rtol=1e-9)
