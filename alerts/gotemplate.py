"""Python twins of the few Prometheus template constructs our annotations use.

promtool unit tests compare rendered annotations exactly, so the generator must predict what
Prometheus renders; `promtool test rules` then proves these twins right. Only the constructs below
are accepted, so an annotation using anything else fails loudly here instead of in promtool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["humanize", "humanize_duration", "humanize_percentage", "render"]

_ACTION_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LABEL_RE = re.compile(r"^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$")
_PRINTF_RE = re.compile(r'^printf\s+"(%\.\dg)"\s+\$value$')


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


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """Render `template` as Prometheus would for an alert with `labels` and `value`."""

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
