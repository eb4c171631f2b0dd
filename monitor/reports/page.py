"""The frame every report page shares: its style sheet, its Content-Security-Policies, the page
shell, and how numbers and times are written for people."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from monitor.reports.plots import CURRENT_COLOUR, DRIFT_COLOUR, OK_COLOUR, REFERENCE_COLOUR

__all__ = ["CSS", "EVIDENTLY_CSP", "EVIDENTLY_HEADER_CSP", "FRAME_SANDBOX", "PAGE_CSP", "badge", "fmt_num", "fmt_pct", "fmt_ts", "page"]

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; base-uri 'none'; form-action 'none'"
"""Our pages: inline CSS and SVG, frames of our own Evidently URL, and no script at all."""

EVIDENTLY_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; base-uri 'none'; form-action 'none'"
)
"""What Evidently's self-contained page needs to render (checked in Chromium), and no network at all:
a script injected through its data cannot fetch or send anything. Served with `sandbox allow-scripts`
(EVIDENTLY_HEADER_CSP); offline it is the outer page's policy, which the `srcdoc` frame inherits."""

EVIDENTLY_HEADER_CSP = f"sandbox allow-scripts; {EVIDENTLY_CSP}"
"""The served Evidently page's header: a unique opaque origin even when opened directly, not framed."""

FRAME_SANDBOX = "allow-scripts"
"""Evidently's frames: scripts run, but never with allow-same-origin (that would undo the sandbox)."""

CSS = f"""
:root {{ --drift: {DRIFT_COLOUR}; --ok: {OK_COLOUR}; --ink: #1d2330; --muted: #5d6676; --line: #e3e6eb;
  --bg: #f6f7f9; --card: #fff; --warn: #a86400; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }}
header.top {{ background: #1d2330; color: #fff; padding: 14px 32px; display: flex; align-items: baseline; gap: 16px; }}
header.top a {{ color: #fff; text-decoration: none; font-weight: 700; letter-spacing: .02em; }}
header.top .crumbs {{ color: #aab3c2; }}
header.top .crumbs a {{ color: #dfe5ee; font-weight: 500; }}
main {{ max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }}
h1 {{ font-size: 24px; margin: 0 0 4px; }}
h2 {{ font-size: 17px; margin: 0 0 12px; }}
h3 {{ font-size: 14px; margin: 0 0 8px; }}
.sub {{ color: var(--muted); margin: 0 0 18px; }}
.card {{ background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin: 0 0 18px; }}
.verdict {{ display: flex; align-items: center; gap: 18px; flex-wrap: wrap; }}
.verdict .note {{ flex-basis: 100%; margin: 0; }}
.badge {{ display: inline-block; white-space: nowrap; border-radius: 999px; padding: 2px 10px; font-size: 12px; font-weight: 700;
  letter-spacing: .03em; text-transform: uppercase; }}
.badge.drift {{ background: #fbe9e7; color: var(--drift); }}
.badge.ok {{ background: #e6f3ec; color: var(--ok); }}
.badge.none {{ background: #eceef2; color: var(--muted); }}
.verdict .big {{ font-size: 18px; padding: 6px 16px; }}
.stats {{ display: flex; gap: 28px; flex-wrap: wrap; margin: 0; }}
.stats div {{ min-width: 110px; }}
.stats dt {{ color: var(--muted); font-size: 12px; }}
.stats dd {{ margin: 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }}
table {{ border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }}
th, td {{ text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }}
th {{ color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }}
td.num, th.num {{ text-align: right; white-space: nowrap; }}
td.name {{ overflow-wrap: anywhere; min-width: 8em; }}
td.name strong {{ font-weight: 600; }}
.effect small, .pv small {{ display: block; color: var(--muted); font-size: 11px; white-space: normal; }}
.tablewrap {{ overflow-x: auto; }}
.perf-metrics small, .perf-outcomes small {{ display: block; color: var(--muted); font-size: 11px; font-weight: 400; white-space: normal; }}
.grid.perf {{ margin-top: 16px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 24px; }}
#performance .stats {{ margin: 0 0 10px; }}
.note {{ color: var(--muted); font-size: 13px; margin: 12px 0 0; }}
.dists .card h3 {{ overflow-wrap: anywhere; display: flex; justify-content: space-between; gap: 8px; align-items: baseline; }}
.dists .card .eff {{ color: var(--muted); font-size: 12px; margin: 0 0 6px; }}
.dists svg {{ width: 100%; height: auto; display: block; }}
.dists details {{ margin-top: 6px; font-size: 13px; }}
.dists summary {{ cursor: pointer; color: var(--muted); }}
tr.drifted td:first-child {{ border-left: 3px solid var(--drift); }}
tr.ok td:first-child {{ border-left: 3px solid transparent; }}
.hi {{ color: var(--drift); font-weight: 600; }}
.warn {{ color: var(--warn); font-weight: 600; }}
.muted {{ color: var(--muted); }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px; }}
.grid .card {{ margin: 0; }}
.bar {{ display: inline-block; height: 8px; border-radius: 2px; vertical-align: middle; }}
.bar.ref {{ background: {REFERENCE_COLOUR}; }}
.bar.cur {{ background: {CURRENT_COLOUR}; }}
.plot {{ overflow-x: auto; }}
.plot svg {{ max-width: 100%; height: auto; }}
.windows {{ display: flex; flex-wrap: wrap; gap: 6px; padding: 0; margin: 0; list-style: none; }}
.windows a {{ display: inline-block; padding: 3px 9px; border: 1px solid var(--line); border-radius: 6px;
  text-decoration: none; color: var(--ink); font-size: 13px; }}
.windows a.drift {{ border-color: #f0c4be; background: #fdf3f1; }}
.windows a.current {{ background: #1d2330; color: #fff; border-color: #1d2330; }}
iframe.agreement {{ width: 100%; border: 0; display: block; margin: 0 0 14px; }}
iframe.evidently {{ width: 100%; height: 1400px; border: 1px solid var(--line); border-radius: 8px; background: #fff; }}
.textgroup h3 {{ margin: 18px 0 8px; }}
.grid.examples {{ grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 24px; }}
.examples h3 {{ margin: 0 0 6px; font-size: 14px; }}
ol.texts {{ margin: 0; padding-left: 22px; }}
ol.texts li {{ margin: 0 0 10px; }}
ol.texts .text {{ margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; background: #f6f7f9;
  border-radius: 6px; padding: 6px 8px; }}
ol.texts.current .text {{ border-left: 3px solid {CURRENT_COLOUR}; }}
ol.texts.reference .text {{ border-left: 3px solid {REFERENCE_COLOUR}; }}
ol.texts .meta {{ margin: 2px 0 0; color: var(--muted); font-size: 12px; }}
a {{ color: #2b5fb3; }}
footer {{ color: var(--muted); font-size: 12px; text-align: center; padding: 12px; }}
"""


def fmt_ts(t: float) -> str:
    """A stored stamp for people; one no date can show (a store from before ingest bounded them) as its number."""
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"{t:.6g} s since 1970"


def fmt_num(x: float | None, digits: int = 4) -> str:
    """Numbers for people: 4 significant digits, tiny p-values in scientific notation, n/a for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e6:
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def fmt_pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def page(title: str, crumbs: Sequence[tuple[str, str | None]], body: str, base: str, csp: str = PAGE_CSP) -> str:
    trail = " / ".join(f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text) for text, href in crumbs)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f'<header class="top"><a href="{escape(base)}/">driftwatch</a><span class="crumbs">{trail}</span></header>\n'
        f"<main>\n{body}\n</main>\n<footer>generated by driftwatch</footer>\n</body></html>\n"
    )


def badge(drifted: bool | None, extra: str = "") -> str:
    if drifted is None:
        return f'<span class="badge none {extra}">no data</span>'
    return f'<span class="badge drift {extra}">drift</span>' if drifted else f'<span class="badge ok {extra}">no drift</span>'
