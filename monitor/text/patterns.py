"""The documented regexes behind the refusal and PII descriptors (docs/text.md lists them), and the
PII masking of the texts a report shows, which finds exactly what the PII descriptor counts.

Refusals are matched case-insensitively anywhere in a text; a text is a refusal when any pattern
matches. PII candidates are found by one alternation, tried left to right at each position (so an
email's digits are never also a phone number), and a candidate that carries a checksum counts only
when the checksum holds: credit-card numbers by Luhn, IBANs by ISO 13616 mod-97. The PII patterns
search a folded copy of the text (`pii_spans`): invisible characters removed, so a zero-width space
inside an email cannot hide it, and fullwidth forms and other scripts' digits read as ASCII; the
spans found are mapped back onto the original text. Every pattern runs in time linear in the text's
length (the email's local part may start only where a run of its characters starts).
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
import unicodedata

_APOS = "['\u2019]"  # ASCII and typographic apostrophes: models emit both

REFUSAL_PATTERNS: dict[str, str] = {
    "sorry_but_cannot": rf"\bI{_APOS}?m sorry,? but I (?:can{_APOS}?t|cannot|won{_APOS}?t|am unable|am not able)",
    "apologize_but": r"\bI apologi[sz]e,? but\b",
    "as_an_ai": r"\bas an AI\b",
    "cannot_help": rf"\bI (?:can{_APOS}?t|cannot|won{_APOS}?t|am unable to|am not able to) (?:help|assist|provide|comply|fulfil|do that|answer that)",
    "unable_to_help": rf"\bI{_APOS}m (?:unable|not able) to (?:help|assist|provide|comply|fulfil)",
    "must_decline": r"\bI must (?:decline|refuse)\b",
    "against_policy": r"\b(?:this|that|your) request (?:violates|goes against|is against)\b",
}
REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS.values()), re.IGNORECASE)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
PII_PATTERNS: dict[str, str] = {
    "email": r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    "credit_card": r"\b\d(?:[ -]?\d){12,18}\b",
    "us_ssn": r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b",
    "ipv4": rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b",
    "phone": r"(?<![\w+])(?!\d{3}-\d{2}-\d{4}\b)\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,4}(?!\w)",
}
PII = re.compile("|".join(f"(?P<{name}>{p})" for name, p in PII_PATTERNS.items()))
# E.164 allows at most 15 digits; fewer than 9 is a date, a price or a count. A number shaped like a
# US SSN (3-2-4 with dashes) is never a phone number, even when it is not a valid SSN.
PHONE_DIGITS = (9, 15)

# Characters that render as nothing: every format character (Unicode category Cf: zero-width spaces
# and joiners, bidi controls, the soft hyphen, tags...), variation selectors, fillers that look
# blank, and the C0/C1 control characters that are not whitespace. They are removed before the PII
# patterns search a text, and a report shows them as `[U+XXXX]`.
INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef]+"
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")


@functools.cache
def fold_table() -> dict[int, int]:
    """Fullwidth ASCII (U+FF01-FF5E), the small commercial at and full stop, and every script's
    decimal digits as their ASCII characters: one character for one, so positions do not move."""
    table = {c: c - 0xFF01 + 0x21 for c in range(0xFF01, 0xFF5F)} | {0xFE6B: ord("@"), 0xFE52: ord(".")}
    for c in range(0x80, sys.maxunicode + 1):
        ch = chr(c)
        if ch.isdecimal():
            table[c] = 0x30 + unicodedata.decimal(ch)
    return table


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries (ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: 15 to 34 characters, and the rearranged number is 1 modulo 97."""
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _counts(kind: str, value: str) -> bool:
    """A candidate of a checksummed or length-bounded kind counts only when it holds."""
    if kind == "credit_card":
        return luhn_valid(value.replace(" ", "").replace("-", ""))
    if kind == "iban":
        return iban_valid(value)
    if kind == "phone":
        return PHONE_DIGITS[0] <= sum(ch.isdigit() for ch in value) <= PHONE_DIGITS[1]
    return True


@functools.cache
def _needs_folding() -> re.Pattern[str]:
    """Any character `_folded` would remove or replace (one C-speed scan decides most texts)."""
    keys = sorted(fold_table())
    ranges, start, prev = [], keys[0], keys[0]
    for c in [*keys[1:], -1]:
        if c != prev + 1:
            ranges.append(re.escape(chr(start)) + ("" if prev == start else "-" + re.escape(chr(prev))))
            start = c
        prev = c
    return re.compile(INVISIBLE.pattern[:-2] + "".join(ranges) + "]")


def _folded(text: str) -> tuple[str, list[int], list[int]]:
    """The text without invisible characters, folded to ASCII where one character reads as another;
    and the segments that map it back: folded[k[i]:] starts at text[o[i]:]."""
    if (text.isascii() and not _ASCII_CONTROL.search(text)) or not _needs_folding().search(text):
        return text, [0], [0]
    pieces: list[str] = []
    kept, origin, pos, n = [0], [0], 0, 0
    for gap in INVISIBLE.finditer(text):
        pieces.append(text[pos : gap.start()])
        n += gap.start() - pos
        pos = gap.end()
        kept.append(n)
        origin.append(pos)
    pieces.append(text[pos:])
    return "".join(pieces).translate(fold_table()), kept, origin


def pii_spans(text: str) -> list[tuple[str, int, int]]:
    """Each PII match as (kind, start, end) in `text` (each once; checksummed kinds only when valid).

    Matched on the folded copy (`_folded`), so invisible characters inside a match are part of its
    span: masking the span removes them too."""
    folded, kept, origin = _folded(text)
    spans = []
    for match in PII.finditer(folded):
        kind = match.lastgroup or ""
        if not _counts(kind, match.group()):
            continue
        start, last = match.start(), match.end() - 1
        i, j = bisect.bisect_right(kept, start) - 1, bisect.bisect_right(kept, last) - 1
        spans.append((kind, origin[i] + start - kept[i], origin[j] + last - kept[j] + 1))
    return spans


def pii_hits(text: str) -> int:
    """How many PII patterns a text holds (each match once; checksummed kinds only when valid)."""
    return len(pii_spans(text))


def mask_pii(text: str) -> str:
    """The text with each PII match replaced by its kind in capitals: `[EMAIL]`, `[IBAN]`,
    `[CREDIT_CARD]`, `[US_SSN]`, `[IPV4]`, `[PHONE]`: exactly what `pii_hits` counts."""
    out: list[str] = []
    pos = 0
    for kind, start, end in pii_spans(text):
        out += (text[pos:start], f"[{kind.upper()}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)
