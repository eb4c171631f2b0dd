"""Find the metric names a PromQL expression selects, without a full parser.

Dashboards and rules are checked against the names the exporters define (`monitor/exporter/names.py`,
`monitor/sidecar/metrics.py`; the monitor's tests check those against a live scrape), so we need the names an expression *selects*, not every word in it: function and
aggregation names, label names in matchers and in `by`/`on` lists, keywords, durations, strings and
Grafana variables (`$model`, `${datasource}`, `$__rate_interval`) are skipped. Selectors written as
`{__name__="x"}` count as `x`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Matcher", "PromQLSyntaxError", "Selector", "metric_names", "selectors"]

KEYWORDS = frozenset(
    {
        # aggregation operators
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
        # set and binary-operator keywords, modifiers
        "and", "or", "unless", "atan2", "bool", "offset",
        "by", "without", "on", "ignoring", "group_left", "group_right",
        "inf", "nan",
    }
)
"""Words that are never metric names (compared case-insensitively, as PromQL does)."""

LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$[A-Za-z0-9_]+|\[\[[A-Za-z0-9_:.]+\]\])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,@:(){}\[\]])
    """,
    re.VERBOSE,
)


class PromQLSyntaxError(ValueError):
    """The expression cannot be tokenized (unterminated string, unbalanced brackets, stray character)."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(expr: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            raise PromQLSyntaxError(f"unexpected character {expr[pos]!r} at offset {pos} in {expr!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Token(kind, m.group(), pos))
        pos = m.end()
    return out


def _check_balanced(tokens: list[_Token], expr: str) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[_Token] = []
    for tok in tokens:
        if tok.kind != "op":
            continue
        if tok.text in "([{":
            stack.append(tok)
        elif tok.text in pairs:
            if not stack or stack[-1].text != pairs[tok.text]:
                raise PromQLSyntaxError(f"unbalanced {tok.text!r} at offset {tok.pos} in {expr!r}")
            stack.pop()
    if stack:
        raise PromQLSyntaxError(f"unclosed {stack[-1].text!r} at offset {stack[-1].pos} in {expr!r}")


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def _skip_group(tokens: list[_Token], start: int) -> int:
    """Index just after the bracket group opening at `start`."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].kind == "op" and tokens[i].text in "([{":
            depth += 1
        elif tokens[i].kind == "op" and tokens[i].text in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(tokens)


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects, e.g. `{"up"}` for `absent(up{job="x"}) or up == 0`.

    Raises PromQLSyntaxError for text that is not tokenizable PromQL (with Grafana variables).
    """
    return {s.name for s in selectors(expr) if s.name is not None}


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector: `label op "value"` (value unquoted, Grafana variables kept)."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: its metric name (None for `{...}` without `__name__`) and its matchers."""

    name: str | None
    matchers: tuple[Matcher, ...]

    def matching(self, label: str) -> list[Matcher]:
        return [m for m in self.matchers if m.label == label]


def _matchers(tokens: list[_Token], start: int) -> tuple[tuple[Matcher, ...], int]:
    """The matchers in the braces opening at `start`; index after `}`."""
    out: list[Matcher] = []
    i = start + 1
    while tokens[i].text != "}":
        if tokens[i].kind in ("ident", "string") and i + 2 < len(tokens) and tokens[i + 2].kind == "string":
            label = _unquote(tokens[i].text) if tokens[i].kind == "string" else tokens[i].text
            out.append(Matcher(label, tokens[i + 1].text, _unquote(tokens[i + 2].text)))
            i += 3
            continue
        if tokens[i].text != ",":
            raise PromQLSyntaxError(f"unexpected {tokens[i].text!r} at offset {tokens[i].pos} in a selector")
        i += 1
    return tuple(out), i + 1


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`, in order, e.g. `[Selector("up", (Matcher("job", "=", "x"),))]`
    for `absent(up{job="x"})`. Raises PromQLSyntaxError like `metric_names`."""
    tokens = _tokens(expr)
    _check_balanced(tokens, expr)
    out: list[Selector] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind == "op" and tok.text == "[":
            i = _skip_group(tokens, i)
            continue
        if tok.kind == "op" and tok.text == "{":
            matchers, i = _matchers(tokens, i)
            named = [m.value for m in matchers if m.label == "__name__" and m.op == "="]
            out.append(Selector(named[0] if named else None, matchers))
            continue
        if tok.kind == "ident":
            lowered = tok.text.lower()
            if lowered in LABEL_LIST_KEYWORDS and nxt is not None and nxt.text == "(":
                i = _skip_group(tokens, i + 1)
                continue
            if lowered not in KEYWORDS and not (nxt is not None and nxt.text == "("):
                matchers = ()
                i += 1
                if nxt is not None and nxt.kind == "op" and nxt.text == "{":
                    matchers, i = _matchers(tokens, i)
                out.append(Selector(tok.text, matchers))
                continue
        i += 1
    return out
