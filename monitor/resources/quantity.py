"""Exact parsing of Kubernetes resource quantities (`1234567n`, `250m`, `81920Ki`, `1e3`, `500M`).

metrics-server reports CPU in nanocores and memory in Ki; summing containers in float would drift by
ulps, so quantities become `Fraction`s and only the final exported value is a float. The grammar is
apimachinery's (`pkg/api/resource/quantity.go`):

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
    binarySI: Ki Mi Gi Ti Pi Ei; decimalSI: n u m "" k M G T P E; decimalExponent: e<int> | E<int>
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["parse_quantity"]

_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<exponent>[eE][+-]?\d+)|(?P<decimal>[numkMGTPE]))?$"
)
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_MAX_LEN = 64
_MAX_EXPONENT = 64


def parse_quantity(text: str) -> Fraction:
    """The exact value of a Kubernetes quantity; `ValueError` for anything outside the grammar."""
    if not isinstance(text, str):
        raise ValueError(f"quantity must be a string, got {type(text).__name__}")
    if len(text) > _MAX_LEN:
        raise ValueError(f"quantity too long ({len(text)} characters)")
    m = _QUANTITY_RE.match(text)
    if m is None:
        raise ValueError(f"invalid quantity {text!r}")
    value = Fraction(m["number"])
    if m["binary"]:
        return value * (2 ** _BINARY_SI[m["binary"]])
    if m["exponent"]:
        power = int(m["exponent"][1:])
        if abs(power) > _MAX_EXPONENT:
            raise ValueError(f"quantity exponent out of range in {text!r}")
        return value * Fraction(10) ** power
    if m["decimal"]:
        return value * Fraction(10) ** _DECIMAL_SI[m["decimal"]]
    return value
