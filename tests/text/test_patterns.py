"""PII masking (`mask_pii`): it masks exactly what the PII descriptor counts, invisible characters and
look-alike digits cannot hide a match from it, and hostile inputs cost time linear in their length."""

from __future__ import annotations

import sys
import time
import unicodedata

import pytest

from monitor.text import build_text_profile, describe
from monitor.text.patterns import INVISIBLE, PII_PATTERNS, mask_pii, pii_hits, pii_spans
from tests.text.test_descriptors import PII_CASES

MASKED = {
    "an email": "write to [EMAIL] today",
    "a valid card number": "card [CREDIT_CARD] please",
    "a card number failing Luhn": "card 4111 1111 1111 1112 please",
    "a valid IBAN": "IBAN [IBAN] thanks",
    "an IBAN with a wrong check": "IBAN DE88 3704 0044 0532 0130 00 thanks",
    "a US SSN": "my ssn is [US_SSN]",
    "an impossible SSN": "my ssn is 666-45-6789",
    "an IPv4 address": "server [IPV4] is down",
    "dotted numbers beyond 255": "version 999.1.1.1",
    "an international phone number": "call [PHONE]",
    "a US phone number": "call [PHONE] now",
    "a date": "on 2024-01-05 at noon",
    "a price": "it costs 1,299.99 dollars",
    "two kinds in one text": "mail [EMAIL] or call [PHONE]",
}


@pytest.mark.parametrize("case", list(PII_CASES))
def test_masking_replaces_each_documented_pattern_by_its_kind(case: str) -> None:
    assert mask_pii(PII_CASES[case][0]) == MASKED[case]


@pytest.mark.parametrize("case", list(PII_CASES))
def test_masking_hides_exactly_what_the_descriptor_counts(case: str) -> None:
    text = PII_CASES[case][0]
    counted = describe([text], build_text_profile(["a", "b"]))["pii_hits"][0]
    assert mask_pii(text).count("[") == counted


def test_every_pattern_has_its_mask_token() -> None:
    masked = mask_pii("a@b.co, DE89 3704 0044 0532 0130 00, 4111-1111-1111-1111, 123-45-6789, 10.1.2.3, +1 415 555 0100")
    assert masked == ", ".join(f"[{kind.upper()}]" for kind in PII_PATTERNS)


ZERO_WIDTH = {
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "byte order mark": "\ufeff",
    "right-to-left override": "\u202e",
    "tag character": "\U000e0041",
    "variation selector": "\ufe0f",
    "NUL": "\x00",
}


@pytest.mark.parametrize("name", list(ZERO_WIDTH))
def test_an_invisible_character_inside_an_email_does_not_defeat_masking(name: str) -> None:
    ch = ZERO_WIDTH[name]
    assert mask_pii(f"mail jo{ch}hn.doe@exa{ch}mple.com now") == "mail [EMAIL] now"


@pytest.mark.parametrize("name", list(ZERO_WIDTH))
def test_an_invisible_character_between_card_digits_does_not_defeat_masking(name: str) -> None:
    ch = ZERO_WIDTH[name]
    assert mask_pii(f"card 4111{ch}1111{ch}1111{ch}1111 ok") == "card [CREDIT_CARD] ok"


def test_invisible_characters_outside_a_match_are_kept() -> None:
    assert mask_pii("\u200bhi\u200b a@b.co\u200b") == "\u200bhi\u200b [EMAIL]\u200b"


def test_fullwidth_characters_do_not_defeat_masking() -> None:
    assert mask_pii("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ と ４１１１ １１１１ １１１１ １１１１") == "[EMAIL] と [CREDIT_CARD]"


def test_digits_of_other_scripts_do_not_defeat_masking() -> None:
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in "4111111111111111")
    assert mask_pii(f"رقم {arabic_indic}") == "رقم [CREDIT_CARD]"


def test_the_descriptor_counts_what_invisible_characters_would_hide() -> None:
    assert pii_hits("jo\u200bhn@exa\u200bmple.com, +44\u200b20 7946 0958") == 2


def test_spans_point_into_the_original_text() -> None:
    text = "\u200b\u200bx a\u200b@b.co y"
    (kind, start, end), = pii_spans(text)
    assert (kind, text[start:end]) == ("email", "a\u200b@b.co")


def test_every_format_character_of_unicode_counts_as_invisible() -> None:
    format_chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert [hex(ord(c)) for c in format_chars if not INVISIBLE.fullmatch(c)] == []


def test_masking_a_text_without_pii_returns_it_unchanged() -> None:
    text = "Wie wird das Wetter morgen in München? 🌦️ \u200b"
    assert mask_pii(text) == text


# Inputs that make a backtracking regex quadratic or worse: long runs of one pattern's characters
# that never complete a match. Each is ~1 MB; a quadratic pattern would take hours on them.
HOSTILE = {
    "letters then a digit": "a" * 1_000_000 + "1",
    "digits": "1" * 1_000_000,
    "digits and spaces": "1 " * 500_000,
    "local parts without a domain": "a.b" * 330_000 + "@",
    "at signs": "a@" * 500_000,
    "a domain without a top-level domain": "x@" + "a." * 500_000,
    "dotted numbers": "1." * 500_000,
    "phone fragments": "(12) " * 200_000,
    "IBAN fragments": "DE12 " + "ABCD " * 200_000,
    "zero-width spaces between digits": "1\u200b" * 500_000,
}
HOSTILE_SECONDS = 10.0
"""Generous for a loaded 2-core machine (about 0.1-0.5 s each when idle); quadratic would be hours."""


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_are_masked_in_bounded_time(name: str) -> None:
    start = time.perf_counter()
    mask_pii(HOSTILE[name])
    assert time.perf_counter() - start < HOSTILE_SECONDS


def test_a_long_text_is_masked_throughout() -> None:
    text = ("filler " * 50_000 + "a@b.co ") * 3
    assert mask_pii(text).count("[EMAIL]") == 3


def test_the_descriptor_searches_a_text_whose_only_digits_are_fullwidth() -> None:
    texts = ["カード ４１１１ １１１１ １１１１ １１１１", "メール ａ＠ｂ．ｃｏ"]
    assert describe(texts, build_text_profile(["a", "b"]))["pii_hits"].tolist() == [1.0, 1.0]
