"""Kubernetes quantities are parsed exactly, as apimachinery defines them."""

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity as k8s_parse_quantity

from monitor.resources.quantity import parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234567n", Fraction(1234567, 10**9)),
        ("250m", Fraction(1, 4)),
        ("2", Fraction(2)),
        ("0", Fraction(0)),
        ("81920Ki", Fraction(81920 * 1024)),
        ("1Gi", Fraction(2**30)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("5e-3", Fraction(5, 1000)),
        ("500M", Fraction(500 * 10**6)),
        ("3k", Fraction(3000)),
        ("1E", Fraction(10**18)),
        ("2Ei", Fraction(2 * 2**60)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("+7u", Fraction(7, 10**6)),
        ("-1m", Fraction(-1, 1000)),
    ],
)
def test_hand_cases(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


def test_sum_of_nanocores_is_exact_where_float_is_not() -> None:
    parts = ["100000001n"] * 10
    assert sum(parse_quantity(p) for p in parts) == Fraction(1000000010, 10**9)
    assert sum(float(k8s_parse_quantity(p)) for p in parts) != 1.00000001  # float accumulation drifts


@pytest.mark.parametrize(
    "text", ["", "Ki", "1Ki ", " 1", "1K", "1ki", "1mi", "1.2.3", "1e", "1e+", "abc", "1 Gi", "NaN", "Infinity", "1_000", "1e999999", "1" * 100]
)
def test_rejects_text_outside_the_grammar(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_quantity(5)  # type: ignore[arg-type]


_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(lambda t: f"{t[0]}.{t[1]}"),
)
_suffixes = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-2", "E6"])


@given(number=_numbers, suffix=_suffixes)
def test_agrees_with_the_kubernetes_client(number: str, suffix: str) -> None:
    with localcontext() as ctx:
        ctx.prec = 100  # the client computes in Decimal; give it enough digits to be exact too
        expected = Fraction(k8s_parse_quantity(number + suffix))
    assert parse_quantity(number + suffix) == expected
    assert isinstance(k8s_parse_quantity(number + suffix), Decimal)
