"""Python twins of the few Prometheus template constructs our annotations use.

promtool unit tests compare rendered annotations exactly, so the generator must predict what
Prometheus renders; `promtool test rules` then proves these twins right. Only the constructs below
are accepted, so an annotation using anything else fails loudly here instead of in promtool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["humanize", "humanize_duration", "humanize_percentage", "query_value", "render"]

_ACTION_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LABEL_RE = re.compile(r"^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$")
_PRINTF_RE = re.compile(r'^printf\s+"(%\.\dg)"\s+\$value$')
_QUERY_BLOCK_RE = re.compile(
    r'\{\{ with printf "([^"\\]*)"((?: \$labels\.[A-Za-z_][A-Za-z0-9_]*)+) \| query \}\}'
    r'\{\{ \. \| first \| value \| printf "(%\.\dg)" \}\}\{\{ else \}\}([^{}]*)\{\{ end \}\}'
)


def _go_g(fmt: str, v: float) -> str:
    """Go's %.Ng for finite floats equals C's (shortest of %e/%f, trailing zeros trimmed)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return fmt % v


def humanize(v: float) -> str:
    """SI prefixes, 4 significant digits: 1234 -> 1.234k, 0.5 -> 500m."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _go_g("%.4g", v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _go_g("%.4g", v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _go_g("%.4g", v) + prefix


def humanize_percentage(v: float) -> str:
    return _go_g("%.4g", v * 100) + "%"


def humanize_duration(v: float) -> str:
    """Seconds as `1d 2h 3m 4s`, `5m 0s` or `42s` (sub-second values are not used by our rules)."""
    if math.isnan(v) or math.isinf(v):
        return _go_g("%.4g", v)
    if v == 0:
        return "0s"
    if abs(v) < 1:
        raise ValueError(f"sub-second durations are not supported here: {v}")
    sign = "-" if v < 0 else ""
    total = int(abs(v))
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return sign + _go_g("%.4g", abs(v)) + "s"


_PIPES = {
    "$value | humanize": humanize,
    "$value | humanizePercentage": humanize_percentage,
    "$value | humanizeDuration": humanize_duration,
}


def query_value(query: str, labels: tuple[str, ...], fmt: str = "%.3g", otherwise: str = "unknown") -> str:
    """A template action printing the first value `query` returns (`%q` in it takes each of `labels`
    in turn, quoted), or `otherwise` when it returns nothing: what an annotation uses to show a series
    other than the alert's own (Prometheus' `query` template function)."""
    if '"' in query or "\\" in query or "{{" in otherwise or "}}" in otherwise:
        raise ValueError(f"query_value: quotes, backslashes and braces are not supported: {query!r}")
    args = " ".join(f"$labels.{name}" for name in labels)
    return (f'{{{{ with printf "{query}" {args} | query }}}}{{{{ . | first | value | printf "{fmt}" }}}}'
            f"{{{{ else }}}}{otherwise}{{{{ end }}}}")


def _go_quote(s: str) -> str:
    if any(c in s for c in '"\\') or not s.isprintable():
        raise ValueError(f"label value {s!r} needs escaping, which the generator does not model")
    return f'"{s}"'


def render(template: str, labels: Mapping[str, str], value: float,
           queries: Mapping[str, float] | None = None) -> str:
    """Render `template` as Prometheus would for an alert with `labels` and `value`; `queries` maps the
    PromQL of each `query_value` action (its labels filled in) to the value Prometheus would find."""

    def block(m: re.Match[str]) -> str:
        names = [a.removeprefix("$labels.") for a in m.group(2).split()]
        pieces = m.group(1).split("%q")
        if len(pieces) != len(names) + 1:
            raise ValueError(f"query_value: {len(pieces) - 1} %q for {len(names)} labels: {m.group(0)}")
        promql = pieces[0] + "".join(_go_quote(labels.get(n, "")) + rest for n, rest in zip(names, pieces[1:], strict=True))
        found = (queries or {}).get(promql)
        return m.group(4) if found is None else _go_g(m.group(3), found)

    template = _QUERY_BLOCK_RE.sub(block, template)

    def action(m: re.Match[str]) -> str:
        body = m.group(1)
        if lm := _LABEL_RE.match(body):
            return labels.get(lm.group(1), "")
        if body in _PIPES:
            return _PIPES[body](value)
        if pm := _PRINTF_RE.match(body):
            return _go_g(pm.group(1), value)
        raise ValueError(f"template construct not supported by the generator: {{{{ {body} }}}}")

    return _ACTION_RE.sub(action, template)
