"""Example texts of a drifted window (`monitor.reports.examples`): which texts are picked and in what
order, how they are shown (masked, cut, invisible characters visible) and escaped in the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift import build_profile, evaluate
from monitor.drift.result import FeatureResult
from monitor.reports.examples import (
    EXAMPLE_CHARS,
    examples_html,
    pick_examples,
    shown,
    text_columns_by_role,
    window_examples,
)
from monitor.reports.view import report_view, with_examples
from monitor.text import build_text_profile, describe, describe_reference, descriptor_specs
from tests.reports.text_source import PLANTED_EMAIL, TextSource

WORDS = ("rain", "sun", "wind", "snow", "cloud", "storm", "fog", "heat")


def sentence(n_words: int, rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, n_words))


def evaluated(reference: list[str], current: list[str]) -> tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]:
    """A text column `t` described and evaluated by the real engine; frames hold texts and descriptors."""
    profile = build_text_profile(reference)
    ref = pd.DataFrame({f"t.{k}": v for k, v in describe_reference(reference, profile).items()})
    cur = pd.DataFrame({f"t.{k}": v for k, v in describe(current, profile).items()})
    result = evaluate(build_profile(ref, descriptor_specs(describe(reference[:2], profile), "t.")), cur)
    ref["t"], cur["t"] = reference, current
    return list(result.features.values()), ref, cur


@pytest.fixture(scope="module")
def longer() -> tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]:
    """Prompts of 4-12 words in the reference, 10-30 in the window."""
    rng = np.random.default_rng(1)
    return evaluated([sentence(int(k), rng) for k in rng.integers(4, 13, 600)],
                     [sentence(int(k), rng) for k in rng.integers(10, 31, 300)])


def test_when_prompts_got_longer_the_longest_come_first(longer: tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]) -> None:
    features, ref, cur = longer
    picked = pick_examples("t", features, ref, cur, 5)
    assert min(dict(e.values)["chars"] for e in picked.current) >= cur["t.chars"].quantile(0.95)


def test_when_prompts_got_shorter_the_shortest_come_first() -> None:
    rng = np.random.default_rng(2)
    features, ref, cur = evaluated([sentence(int(k), rng) for k in rng.integers(10, 31, 600)],
                                   [sentence(int(k), rng) for k in rng.integers(2, 9, 300)])
    picked = pick_examples("t", features, ref, cur, 3)
    assert max(dict(e.values)["chars"] for e in picked.current) <= cur["t.chars"].quantile(0.05)


def test_texts_in_a_script_the_reference_never_used_come_first() -> None:
    rng = np.random.default_rng(3)
    latin = [sentence(6, rng) for _ in range(600)]
    window = [sentence(6, rng) for _ in range(200)] + ["где мой зонтик сегодня вечером"] * 100
    features, ref, cur = evaluated(latin, window)
    picked = pick_examples("t", features, ref, cur, 1)
    assert picked.current[0].text == "где мой зонтик сегодня вечером"


def test_a_text_repeated_in_the_window_is_shown_once_with_its_count() -> None:
    rng = np.random.default_rng(3)
    window = [sentence(6, rng) for _ in range(200)] + ["где мой зонтик сегодня вечером"] * 100
    features, ref, cur = evaluated([sentence(6, rng) for _ in range(600)], window)
    assert pick_examples("t", features, ref, cur, 1).current[0].count == 100


def test_the_window_examples_are_ranked_by_score(longer: tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]) -> None:
    scores = [e.score for e in pick_examples("t", *longer, 20).current]
    assert scores == sorted(scores, reverse=True)


def test_the_reference_examples_are_its_most_typical_texts() -> None:
    reference = [" ".join(["rain"] * k) for k in range(1, 100)]  # 1..99 words: the median is 50
    window = [" ".join(["rain"] * k) for k in range(150, 250)]
    features, ref, cur = evaluated(reference, window)
    assert dict(pick_examples("t", features, ref, cur, 1).reference[0].values)["words"] == 50.0


def test_a_few_reference_texts_stand_beside_the_window_s(longer: tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]) -> None:
    assert len(pick_examples("t", *longer, 5).reference) == 3


def test_a_column_without_drift_has_no_examples_and_says_so() -> None:
    rng = np.random.default_rng(4)
    features, ref, cur = evaluated([sentence(8, rng) for _ in range(600)], [sentence(8, rng) for _ in range(300)])
    picked = pick_examples("t", features, ref, cur, 5)
    assert (picked.current, picked.note) == ((), "No descriptor of t drifted in this window.")


def test_a_window_whose_texts_are_gone_says_so(longer: tuple[list[FeatureResult], pd.DataFrame, pd.DataFrame]) -> None:
    features, ref, _ = longer
    assert "no longer stored" in pick_examples("t", features, ref, None, 5).note


@pytest.fixture(scope="module")
def german() -> TextSource:
    return TextSource()


def test_zero_examples_leaves_the_column_out(german: TextSource) -> None:
    view = report_view(german.chat[1], german.chat)
    picked = window_examples(view.columns, german.reference, german.frames[600], {"prompt": 0, "completion": 5})
    assert [e.column for e in picked] == ["completion"]


def test_every_text_column_gets_its_examples(german: TextSource) -> None:
    view = with_examples(report_view(german.chat[1], german.chat), german.reference, german.frames[600], german.text_examples("chat"))
    assert [(e.column, len(e.current)) for e in view.examples] == [("prompt", 5), ("completion", 5)]


def test_a_planted_email_is_masked_even_behind_a_zero_width_space(german: TextSource) -> None:
    view = with_examples(report_view(german.chat[1], german.chat), german.reference, german.frames[600], german.text_examples("chat"))
    assert shown(PLANTED_EMAIL) in [e.text for e in view.examples[0].current]


# -- how a text is shown -----------------------------------------------------------------------------


def test_a_long_text_is_cut_with_an_ellipsis() -> None:
    assert shown("a" * 1000) == "a" * EXAMPLE_CHARS + "…"


def test_a_text_of_the_limit_is_whole() -> None:
    assert shown("a" * EXAMPLE_CHARS) == "a" * EXAMPLE_CHARS


def test_pii_is_masked_before_the_cut_so_no_part_of_it_shows() -> None:
    assert shown("x" * 285 + " jane.doe@example.com tail") == "x" * 285 + " [EMAIL] tail"  # the email spans char 300


@pytest.mark.parametrize(("raw", "visible"), [
    ("a\u200bb", "a[U+200B]b"),
    ("bell\x07", "bell[U+0007]"),
    ("\u202eevil", "[U+202E]evil"),
    ("lone \ud800 surrogate", "lone [U+D800] surrogate"),
    ("carriage\rreturn", "carriage[U+000D]return"),
])
def test_invisible_and_control_characters_are_shown_as_code_points(raw: str, visible: str) -> None:
    assert shown(raw) == visible


def test_newlines_and_tabs_stay_as_they_are() -> None:
    assert shown("line one\n\tline two") == "line one\n\tline two"


def test_markup_in_a_text_is_escaped_in_the_page(german: TextSource) -> None:
    view = with_examples(report_view(german.chat[1], german.chat), german.reference, german.frames[600], german.text_examples("chat"))
    assert "<script" not in examples_html(view.examples)


def test_markup_in_a_text_is_shown_as_text(german: TextSource) -> None:
    view = with_examples(report_view(german.chat[1], german.chat), german.reference, german.frames[600], german.text_examples("chat"))
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in examples_html(view.examples)


def test_prompts_come_before_completions_whichever_drifted_more(german: TextSource) -> None:
    columns = report_view(german.chat[1], german.chat).columns
    assert list(text_columns_by_role(columns[::-1])) == ["prompt", "completion"]
