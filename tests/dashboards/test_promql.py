"""dashboards.promql.metric_names: the names an expression selects, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.promql import KEYWORDS, Matcher, PromQLSyntaxError, Selector, metric_names, selectors


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="driftwatch"} == 0 or absent(up{job="driftwatch"})', {"up"}),
        ("sum by (model, reason) (rate(driftwatch_events_rejected_total[5m])) > 0", {"driftwatch_events_rejected_total"}),
        ("sum(rate(a_total[$__rate_interval])) by (le, phase)", {"a_total"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]) * on (instance) group_left () "
            'clamp_max(count by (instance) (y_total{model="$model"}), 1)))',
            {"x_bucket", "y_total"},
        ),
        ("time() - driftwatch_last_evaluation_timestamp_seconds{model=~\"$model\"}", {"driftwatch_last_evaluation_timestamp_seconds"}),
        ('{__name__="by_name", job="x"}', {"by_name"}),
        ('a{label="}{ with braces, \\"quotes\\" and by (x)"} unless b', {"a", "b"}),
        ("a offset 5m and b @ start() or c[1h:5m]", {"a", "b", "c"}),
        ("max_over_time(a[1h30m]) / ignoring (pod) group_right (gpu) b", {"a", "b"}),
        ("SUM BY (model) (a) AND ON (model) B", {"a", "B"}),
        ('label_replace(a, "dst", "$1", "src", "(.*)") # trailing comment with fake_metric', {"a"}),
        ("topk(10, a) > bool 0.5e3", {"a"}),
        ("vector(1) + scalar(recording:rule:rate5m)", {"recording:rule:rate5m"}),
        ("a{x=`raw } string`} + 0x1F - Inf * NaN", {"a"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    "expr",
    ['up{job="x}', "rate(a[5m]", "a)", 'a{job="x"]', "a ; b", "a{job='unterminated}"],
)
def test_malformed_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        metric_names(expr)


_names = st.from_regex(r"\A[a-z_][a-z0-9_:]{0,20}\Z").filter(lambda n: n not in KEYWORDS)


@given(a=_names, b=_names, label=_names, value=st.text(max_size=20))
def test_names_survive_any_surrounding_syntax(a: str, b: str, label: str, value: str) -> None:
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    expr = f'sum by ({label}) (rate({a}{{{label}="{quoted}"}}[5m])) / on ({label}) group_left () {b}'
    assert metric_names(expr) == {a, b}


def test_selectors_and_their_matchers() -> None:
    found = selectors('sum by (model) (rate(a{x="1",y=~"$y"}[5m])) / on (model) b unless {__name__="c"}')
    assert found == [
        Selector("a", (Matcher("x", "=", "1"), Matcher("y", "=~", "$y"))),
        Selector("b", ()),
        Selector("c", (Matcher("__name__", "=", "c"),)),
    ]


def test_selectors_inside_label_values_and_functions() -> None:
    (found,) = selectors('histogram_quantile(0.5, sum by (le) (x_bucket{model="m", phase!="up"}))')
    assert found.matching("phase") == [Matcher("phase", "!=", "up")]
