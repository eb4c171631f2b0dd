"""alerts.gotemplate: the Python twins of Prometheus' humanize functions (values from its own tests)."""

from __future__ import annotations

import math

import pytest

from alerts.gotemplate import humanize, humanize_duration, humanize_percentage, query_value, render


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (1, "1"), (1234567, "1.235M"), (0.001234, "1.234m"), (12345, "12.35k"), (-2500, "-2.5k"),
     (0.5, "500m"), (1e-7, "100n"), (math.inf, "+Inf"), (math.nan, "NaN")],
)
def test_humanize(value: float, text: str) -> None:
    assert humanize(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0s"), (1, "1s"), (42.5, "42.5s"), (60, "1m 0s"), (3600, "1h 0m 0s"), (93784, "1d 2h 3m 4s"),
     (-3600, "-1h 0m 0s"), (2700.9, "45m 0s")],
)
def test_humanize_duration(value: float, text: str) -> None:
    assert humanize_duration(value) == text


@pytest.mark.parametrize(("value", "text"), [(0, "0%"), (0.1234, "12.34%"), (0.5, "50%"), (1, "100%"), (0.525, "52.5%")])
def test_humanize_percentage(value: float, text: str) -> None:
    assert humanize_percentage(value) == text


def test_render() -> None:
    template = 'Model {{ $labels.model }}: {{ $value | humanizePercentage }}, {{ printf "%.3g" $value }} ({{$labels.absent}})'
    assert render(template, {"model": "wine"}, 0.4) == "Model wine: 40%, 0.4 ()"


@pytest.mark.parametrize("construct", ["{{ $value | humanize1024 }}", "{{ .Labels.model }}", '{{ query "up" }}'])
def test_unsupported_constructs_fail_loudly(construct: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        render(construct, {}, 1.0)


def test_query_value_renders_what_the_query_finds() -> None:
    template = "threshold " + query_value("max(x{model=%q,kind=%q})", ("model", "kind"))
    found = {'max(x{model="wine",kind="realized"})': 0.80512}
    assert render(template, {"model": "wine", "kind": "realized"}, 1.0, found) == "threshold 0.805"


def test_query_value_says_unknown_when_the_query_finds_nothing() -> None:
    template = "threshold " + query_value("max(x{model=%q})", ("model",))
    assert render(template, {"model": "wine"}, 1.0, {}) == "threshold unknown"
