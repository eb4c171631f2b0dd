"""Descriptor values: against a plain-Python reference implementation of each definition
(docs/text.md), against Evidently where it has the same descriptor, and on the documented patterns."""

from __future__ import annotations

import json
import math
import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.text import INPUT_TOKENS, OUTPUT_TOKENS, TextProfile, build_text_profile, describe, describe_reference
from tests.infra.text_corpus import corpus

ALPHABETS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßñ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГД",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是不了人我在有他这为之大来以个中上们ひらがなカタカナ",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "אבגדהוזחטיכלמנסעפצקרשת",
    "한국어문장입니다",
    "0123456789",
    " .,;:!?-'\"()\n\t@#%",
)
NAMED = {"LATIN": "latin", "CYRILLIC": "cyrillic", "GREEK": "greek", "ARABIC": "arabic", "HEBREW": "hebrew",
         "HANGUL": "hangul", "CJK": "cjk", "HIRAGANA": "cjk", "KATAKANA": "cjk", "DEVANAGARI": "devanagari", "THAI": "thai"}


def _mixed(rng: np.random.Generator, n: int) -> list[str]:
    """Texts mostly in one alphabet with some mixing, spaces, digits and punctuation; some empty."""
    texts = []
    for _ in range(n):
        main = ALPHABETS[rng.integers(0, 7)]
        pool = main * 6 + "".join(ALPHABETS)
        size = int(rng.integers(0, 60))
        texts.append("".join(pool[k] for k in rng.integers(0, len(pool), size)))
    return texts


def _script(ch: str) -> str:
    return NAMED.get(unicodedata.name(ch, "?").split()[0], "other")


def reference_implementation(text: str, vocabulary: set[str]) -> dict[str, object]:
    """Each descriptor by its definition, one character or word at a time."""
    letters = [_script(ch) for ch in text if ch.isalpha()]
    counts = {s: letters.count(s) for s in dict.fromkeys(letters)}
    top = max(counts.values()) if counts else 0
    words = [w for w in "".join(ch if ch.isalpha() else " " for ch in text.lower()).split()]
    n = len(text)
    return {
        "chars": n,
        "words": len(text.split()),
        "non_ascii_share": sum(ord(ch) > 127 for ch in text) / n if n else math.nan,
        "non_letter_share": sum(not ch.isalpha() and ch != " " for ch in text) / n if n else math.nan,
        "script_mix": 1 - top / len(letters) if letters else math.nan,
        "oov_share": sum(w not in vocabulary for w in words) / len(words) if words else math.nan,
    }


@pytest.fixture(scope="module")
def mixed() -> tuple[list[str], TextProfile, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    texts = _mixed(rng, 3000)
    profile = build_text_profile(texts[:1000], max_vocabulary=500)
    return texts, profile, describe(texts, profile)


@pytest.mark.parametrize("name", ["chars", "words", "non_ascii_share", "non_letter_share", "script_mix", "oov_share"])
def test_each_numeric_descriptor_matches_its_plain_python_definition(mixed, name: str) -> None:
    texts, profile, columns = mixed
    expected = np.array([reference_implementation(t, set(profile.vocabulary))[name] for t in texts], dtype=float)
    np.testing.assert_allclose(columns[name], expected, rtol=1e-12, equal_nan=True)


def test_the_dominant_script_matches_the_unicode_names_of_the_letters(mixed) -> None:
    texts, _, columns = mixed
    expected = []
    for text in texts:
        letters = [_script(ch) for ch in text if ch.isalpha()]
        # ties go to the first script of the documented order, as argmax does
        order = ("latin", "greek", "cyrillic", "hebrew", "arabic", "devanagari", "thai", "hangul", "cjk", "other")
        expected.append(max(order, key=lambda s: (letters.count(s), -order.index(s))) if letters else "none")
    assert list(columns["script"]) == expected


def test_a_russian_text_is_cyrillic_and_a_mixed_one_reports_its_mix() -> None:
    profile = build_text_profile(["a b", "c d"])
    columns = describe(["Привет мир", "Привет world"], profile)
    assert (list(columns["script"]), columns["script_mix"].round(3).tolist()) == (["cyrillic", "cyrillic"], [0.0, 0.455])


# -- Evidently's descriptors of the same definition -------------------------------------------------


@pytest.fixture(scope="module")
def evidently_columns() -> tuple[list[str], pd.DataFrame]:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import IsValidJSON, NonLetterCharacterPercentage, TextLength, WordCount

    rng = np.random.default_rng(8)
    texts = [t for t in _mixed(rng, 400) if t] + corpus(rng, 400) + [t.rstrip(".?") for t in corpus(rng, 50)] + ['{"a": 1}', "[1, 2", '"x"', "null", "{'a': 1}"]
    data = Dataset.from_pandas(
        pd.DataFrame({"text": texts}),
        data_definition=DataDefinition(text_columns=["text"]),
        descriptors=[TextLength("text", alias="len"), NonLetterCharacterPercentage("text", alias="non_letter"),
                     WordCount("text", alias="words"), IsValidJSON("text", alias="json")],
    )
    return texts, data.as_dataframe()


def test_chars_equal_evidentlys_text_length(evidently_columns) -> None:
    texts, theirs = evidently_columns
    ours = describe(texts, build_text_profile(texts))
    np.testing.assert_array_equal(ours["chars"], theirs["len"].to_numpy(dtype=float))


def test_non_letter_share_equals_evidentlys_non_letter_character_percentage(evidently_columns) -> None:
    texts, theirs = evidently_columns
    ours = describe(texts, build_text_profile(texts))
    np.testing.assert_allclose(100 * ours["non_letter_share"], theirs["non_letter"].to_numpy(dtype=float), rtol=1e-12)


def test_words_equal_evidentlys_word_count_on_texts_of_ascii_letters_and_spaces(evidently_columns) -> None:
    """Evidently drops every character but a-z, A-Z and spaces before splitting; on such texts the definitions agree."""
    texts, theirs = evidently_columns
    plain = np.array([all(ch == " " or ("a" <= ch.lower() <= "z") for ch in t) for t in texts])
    assert plain.sum() >= 40  # the comparison covers some texts
    ours = describe(texts, build_text_profile(texts))
    np.testing.assert_array_equal(ours["words"][plain], theirs["words"].to_numpy(dtype=float)[plain])


def test_json_valid_equals_evidentlys_is_valid_json(evidently_columns) -> None:
    texts, theirs = evidently_columns
    ours = describe(texts, build_text_profile(texts, json_expected=True))
    np.testing.assert_array_equal(ours["json_valid"], theirs["json"].to_numpy(dtype=float))


# -- patterns ---------------------------------------------------------------------------------------

PII_CASES = {
    "an email": ("write to jane.doe+x@mail.example.org today", 1),
    "a valid card number": ("card 4111 1111 1111 1111 please", 1),
    "a card number failing Luhn": ("card 4111 1111 1111 1112 please", 0),
    "a valid IBAN": ("IBAN DE89 3704 0044 0532 0130 00 thanks", 1),
    "an IBAN with a wrong check": ("IBAN DE88 3704 0044 0532 0130 00 thanks", 0),
    "a US SSN": ("my ssn is 123-45-6789", 1),
    "an impossible SSN": ("my ssn is 666-45-6789", 0),
    "an IPv4 address": ("server 10.0.12.255 is down", 1),
    "dotted numbers beyond 255": ("version 999.1.1.1", 0),
    "an international phone number": ("call +44 20 7946 0958", 1),
    "a US phone number": ("call (415) 555-0100 now", 1),
    "a date": ("on 2024-01-05 at noon", 0),
    "a price": ("it costs 1,299.99 dollars", 0),
    "two kinds in one text": ("mail a@b.co or call +1 415 555 0100", 2),
}


@pytest.mark.parametrize("case", list(PII_CASES))
def test_pii_hits_count_the_documented_patterns(case: str) -> None:
    text, hits = PII_CASES[case]
    assert describe([text], build_text_profile(["a", "b"]))["pii_hits"][0] == hits


REFUSALS = {
    "I'm sorry, but I can't help with that.": 1,
    "I’m sorry, but I cannot provide that information.": 1,
    "As an AI language model, I do not have opinions.": 1,
    "i cannot assist with this request": 1,
    "I must decline.": 1,
    "I apologize, but that is not possible.": 1,
    "Sorry to hear about the rain; bring an umbrella.": 0,
    "I can help with that: here is the forecast.": 0,
    "The AI model was trained on weather data.": 0,
}


@pytest.mark.parametrize("text", list(REFUSALS))
def test_refusal_matches_the_documented_patterns_case_insensitively(text: str) -> None:
    assert describe([text], build_text_profile(["a", "b"]))["refusal"][0] == REFUSALS[text]


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_json_valid_checks_the_schema_when_one_is_given() -> None:
    profile = build_text_profile(["a", "b"], json_schema=SCHEMA)
    columns = describe(['{"answer": "yes"}', '{"answer": 3}', '{"other": "x"}', "not json"], profile)
    assert columns["json_valid"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_json_valid_is_absent_when_no_json_is_expected() -> None:
    assert "json_valid" not in describe(["{}"], build_text_profile(["a", "b"]))


# -- usage, missing texts, the profile ---------------------------------------------------------------


def test_token_counts_come_from_usage_under_the_otel_genai_names() -> None:
    usage = [{"prompt_tokens": 12, "completion_tokens": 40}, {"input_tokens": 7, "output_tokens": 3}, None, {"prompt_tokens": True}]
    columns = describe(["a", "b", "c", "d"], build_text_profile(["a", "b"]), usage=usage)
    got = np.stack([columns[INPUT_TOKENS], columns[OUTPUT_TOKENS]])
    np.testing.assert_array_equal(got, [[12.0, 7.0, math.nan, math.nan], [40.0, 3.0, math.nan, math.nan]])


def test_token_columns_are_absent_without_usage() -> None:
    assert INPUT_TOKENS not in describe(["a"], build_text_profile(["a", "b"]))


def test_usage_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="usage has 1 entries for 2 texts"):
        describe(["a", "b"], build_text_profile(["a", "b"]), usage=[None])


def test_a_missing_text_is_missing_in_every_column() -> None:
    columns = describe(["hello", None, float("nan")], build_text_profile(["a", "b"], json_expected=True))
    assert all(
        (v[1] is None and v[2] is None) if v.dtype == object else bool(np.isnan(v[1:]).all()) for v in columns.values()
    ), columns


def test_the_profile_is_plain_data_that_round_trips_through_json() -> None:
    profile = build_text_profile(corpus(np.random.default_rng(1), 200), json_schema=SCHEMA)
    assert TextProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_the_vocabulary_keeps_the_most_frequent_words_up_to_its_bound() -> None:
    texts = ["b b b a a c", "x", "b a c d", "x", "e", "x"]  # the vocabulary is built from the even rows
    assert build_text_profile(texts, max_vocabulary=3).vocabulary == ("b", "a", "c")


def test_a_profile_needs_two_reference_texts() -> None:
    with pytest.raises(ValueError, match="at least 2 texts"):
        build_text_profile(["only one"])


def test_describe_reference_refuses_texts_other_than_the_profiles() -> None:
    profile = build_text_profile(["a", "b", "c"])
    with pytest.raises(ValueError, match="built from 3 texts, got 2"):
        describe_reference(["a", "b"], profile)


def test_the_reference_oov_share_is_out_of_sample_like_a_windows() -> None:
    """In-sample, the reference's OOV share would be ~0 against its own vocabulary; measured against
    the other half's vocabulary it matches what an unseen window of the same texts gets."""
    rng = np.random.default_rng(3)
    reference = corpus(rng, 4000, mean_words=30) + [f"rare{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(600)]
    rng.shuffle(reference)
    profile = build_text_profile(reference)
    window = corpus(rng, 4000, mean_words=30) + [f"rare{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(600)]
    ref_oov = np.nanmean(describe_reference(reference, profile)["oov_share"])
    in_sample = np.nanmean(describe(reference[0::2], profile)["oov_share"])
    win_oov = np.nanmean(describe(window, profile)["oov_share"])
    assert (abs(ref_oov - win_oov) < 0.2 * win_oov, in_sample < 0.2 * win_oov) == (True, True), (ref_oov, in_sample, win_oov)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=20))
def test_character_and_word_descriptors_match_their_definitions_on_any_unicode(texts: list[str]) -> None:
    columns = describe(texts, build_text_profile(["a", "b"]))
    expected = [reference_implementation(t, {"a"}) for t in texts]
    for name in ("chars", "words", "non_ascii_share", "non_letter_share"):  # scripts: by block, checked above
        np.testing.assert_allclose(columns[name], [e[name] for e in expected], rtol=1e-12, equal_nan=True, err_msg=name)
