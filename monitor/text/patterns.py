"""The documented regexes behind the refusal and PII descriptors (docs/text.md lists them).

Refusals are matched case-insensitively anywhere in a text; a text is a refusal when any pattern
matches. PII candidates are found by one alternation, tried left to right at each position (so an
email's digits are never also a phone number), and a candidate that carries a checksum counts only
when the checksum holds: credit-card numbers by Luhn, IBANs by ISO 13616 mod-97.
"""

from __future__ import annotations

import re

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
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
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


def pii_hits(text: str) -> int:
    """How many PII patterns a text holds (each match once; checksummed kinds only when valid)."""
    hits = 0
    for match in PII.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "credit_card":
            hits += luhn_valid(value.replace(" ", "").replace("-", ""))
        elif kind == "iban":
            hits += iban_valid(value)
        elif kind == "phone":
            n_digits = sum(ch.isdigit() for ch in value)
            hits += PHONE_DIGITS[0] <= n_digits <= PHONE_DIGITS[1]
        else:
            hits += 1
    return hits
