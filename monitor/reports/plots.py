"""Score-history and distribution plots as inline SVG.

Reports must render offline (no JS CDN, no network in a cluster's private zone), so plots are
hand-written SVG: per feature, the score of each recent window as a line, the threshold as a dashed
line, drifted windows as red dots; the reference vs the window (overlaid histograms for numbers,
side-by-side bars for categories); and, for models with ground truth, the headline metric per window
(realized, estimated with its band, reference, thresholds) above each window's labelled share. Output is deterministic (fixed rounding, no ids from counters or
clocks) so reports can be golden-tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TypeVar

from monitor.reports.distributions import Bars, Distribution, Histogram, QuantileSteps, Scatter
from monitor.reports.performance_view import PerfPoint

__all__ = [
    "CURRENT_COLOUR", "REFERENCE_COLOUR", "HistoryPoint", "ScoreSeries", "distribution_svg", "history_svg", "performance_svg",
]

OK_COLOUR = "#2f7d5b"
DRIFT_COLOUR = "#c8372d"
LINE_COLOUR = "#3b5b92"
GRID_COLOUR = "#e3e6eb"
TEXT_COLOUR = "#4a5261"
REFERENCE_COLOUR = "#9aa5b8"
CURRENT_COLOUR = "#2b6cb0"

PANEL_W = 320
PANEL_H = 150
PAD_L, PAD_R, PAD_T, PAD_B = 52, 14, 28, 30


@dataclass(frozen=True)
class HistoryPoint:
    """One evaluated window's value for a feature (`value` is None when the window lacked it)."""

    label: str
    value: float | None
    drifted: bool


@dataclass(frozen=True)
class ScoreSeries:
    """A feature's scores across windows; `lower_is_drift` for p-value tests (plotted on a log axis)."""

    feature: str
    method: str
    threshold: float
    lower_is_drift: bool
    points: tuple[HistoryPoint, ...]
    quantity: str = ""
    """What is plotted when the method alone does not say (e.g. `BH-adjusted p`), shown in the title."""


TITLE_CHARS = 22
"""A panel title longer than this is cut (full name on hover) so it cannot run into the next panel."""


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _fmt(x: float) -> str:
    """Compact, stable number formatting for coordinates and tick labels."""
    return f"{x:.1f}"


def _tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000 or abs(v) < 0.001:
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.4g}"


def _nice_step(span: float) -> float:
    """A 1-2-2.5-5 x 10^k step giving about three intervals over `span`."""
    raw = span / 3
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _axis(series: ScoreSeries) -> tuple[float, float, bool, list[float]]:
    """(low, high, log, ticks) for the y axis, always including the threshold line.

    p-values go on a log axis with one tick per decade (drift sits below the line); distances on
    a linear axis from 0 with round ticks.
    """
    values = [p.value for p in series.points if p.value is not None and math.isfinite(p.value)]
    if series.lower_is_drift:
        logs = [math.log10(max(v, 1e-12)) for v in [*values, series.threshold]]
        low = float(min(math.floor(min(logs)), -2))
        every = max(1, math.ceil(-low / 4))
        return low, 0.0, True, [float(k) for k in range(0, int(low) - 1, -every) if k >= low]
    top = max([*values, series.threshold]) * 1.1
    step = _nice_step(top if top > 0 else 1.0)
    high = step * math.ceil(top / step) if top > 0 else 3 * step
    return 0.0, high, False, [step * k for k in range(round(high / step) + 1)]


def _panel(series: ScoreSeries, x0: float, y0: float) -> list[str]:
    low, high, log, ticks = _axis(series)
    inner_w = PANEL_W - PAD_L - PAD_R
    inner_h = PANEL_H - PAD_T - PAD_B

    def y_of(v: float) -> float:
        t = math.log10(max(v, 1e-12)) if log else v
        frac = (t - low) / (high - low) if high > low else 0.0
        return y0 + PAD_T + inner_h * (1.0 - min(max(frac, 0.0), 1.0))

    n = len(series.points)

    def x_of(i: int) -> float:
        return x0 + PAD_L + (inner_w * (i / (n - 1)) if n > 1 else inner_w / 2)

    out = [
        f'<g class="panel" data-feature="{escape(series.feature)}">',
        f'<text x="{_fmt(x0 + PAD_L)}" y="{_fmt(y0 + 17)}" class="ptitle">{escape(_clip(series.feature, TITLE_CHARS))}'
        f'<tspan class="pmethod"> · {escape(series.method)}{f" · {escape(series.quantity)}" if series.quantity else ""}</tspan>'
        f"<title>{escape(series.feature)}</title></text>",
    ]
    for t in ticks:
        v = 10**t if log else t
        y = y0 + PAD_T + inner_h * (1.0 - (t - low) / (high - low))
        out.append(f'<line x1="{_fmt(x0 + PAD_L)}" x2="{_fmt(x0 + PAD_L + inner_w)}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{GRID_COLOUR}"/>')
        out.append(f'<text x="{_fmt(x0 + PAD_L - 6)}" y="{_fmt(y + 4)}" class="tick" text-anchor="end">{_tick_label(v)}</text>')
    ty = y_of(series.threshold)
    out.append(
        f'<line x1="{_fmt(x0 + PAD_L)}" x2="{_fmt(x0 + PAD_L + inner_w)}" y1="{_fmt(ty)}" y2="{_fmt(ty)}" '
        f'stroke="{DRIFT_COLOUR}" stroke-width="1.2" stroke-dasharray="5 4"/>'
    )
    side = "below" if series.lower_is_drift else "above"
    out.append(
        f'<text x="{_fmt(x0 + PAD_L + inner_w)}" y="{_fmt(ty - 4)}" class="thr" text-anchor="end">'
        f"threshold {_tick_label(series.threshold)} (drift {side})</text>"
    )
    coords = [(x_of(i), y_of(p.value)) for i, p in enumerate(series.points) if p.value is not None and math.isfinite(p.value)]
    if len(coords) > 1:
        path = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{LINE_COLOUR}" stroke-width="1.8"/>')
    for i, p in enumerate(series.points):
        if p.value is None or not math.isfinite(p.value):
            continue
        colour = DRIFT_COLOUR if p.drifted else OK_COLOUR
        out.append(
            f'<circle cx="{_fmt(x_of(i))}" cy="{_fmt(y_of(p.value))}" r="3.6" fill="{colour}" stroke="#fff" stroke-width="1">'
            f"<title>window {escape(p.label)}: {p.value:.6g}{' — drifted' if p.drifted else ''}</title></circle>"
        )
    base = y0 + PAD_T + inner_h + 16
    shown = range(n) if n <= 6 else sorted({0, n // 2, n - 1})
    for i in shown:
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        out.append(f'<text x="{_fmt(x_of(i))}" y="{_fmt(base)}" class="tick" text-anchor="{anchor}">{escape(series.points[i].label)}</text>')
    out.append("</g>")
    return out


def history_svg(series: Sequence[ScoreSeries], columns: int = 3) -> str:
    """Small multiples, `columns` panels per row; an empty string when there is nothing to plot."""
    if not series:
        return ""
    columns = max(1, min(columns, len(series)))
    rows = math.ceil(len(series) / columns)
    width, height = PANEL_W * columns, PANEL_H * rows
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="history" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="drift score per feature across recent windows">',
        "<style>"
        f".ptitle{{font:600 12px system-ui,sans-serif;fill:#1d2330}}"
        f".pmethod{{font-weight:400;fill:{TEXT_COLOUR}}}"
        f".tick{{font:10px system-ui,sans-serif;fill:{TEXT_COLOUR}}}"
        f".thr{{font:10px system-ui,sans-serif;fill:{DRIFT_COLOUR}}}"
        "</style>",
    ]
    for k, s in enumerate(series):
        parts.extend(_panel(s, PANEL_W * (k % columns), PANEL_H * (k // columns)))
    parts.append("</svg>")
    return "\n".join(parts)


# -- distributions ---------------------------------------------------------------------------------

DIST_W = 360
DIST_PAD_L, DIST_PAD_R, DIST_PAD_T, DIST_PAD_B = 40, 12, 26, 30
BAR_LABEL_W, BAR_ROW_H, BAR_VALUE_W = 112, 24, 44
BAR_LABEL_CHARS = 16
DIST_STYLE = (
    "<style>"
    f".tick{{font:10px system-ui,sans-serif;fill:{TEXT_COLOUR}}}"
    f".lbl{{font:11px system-ui,sans-serif;fill:#1d2330}}"
    "</style>"
)


def _pct_label(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.095 or x == 0 else f"{100 * x:.1f}%"


def _legend(x: float, y: float) -> list[str]:
    return [
        f'<rect x="{_fmt(x)}" y="{_fmt(y - 8)}" width="10" height="10" fill="{REFERENCE_COLOUR}"/>',
        f'<text x="{_fmt(x + 14)}" y="{_fmt(y + 1)}" class="tick">reference</text>',
        f'<rect x="{_fmt(x + 76)}" y="{_fmt(y - 8)}" width="10" height="10" fill="{CURRENT_COLOUR}" fill-opacity="0.45" stroke="{CURRENT_COLOUR}"/>',
        f'<text x="{_fmt(x + 90)}" y="{_fmt(y + 1)}" class="tick">this window</text>',
    ]


def _svg(d: Distribution, height: float, body: list[str], what: str) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dist" data-feature="{escape(d.feature)}" viewBox="0 0 {DIST_W} {_fmt(height)}" '
        f'width="{DIST_W}" height="{_fmt(height)}" role="img" aria-label="{escape(what)} of {escape(d.feature)}: reference vs this window">',
        DIST_STYLE, *body, "</svg>",
    ])


def _histogram_svg(d: Distribution, h: Histogram) -> str:
    height = 170.0
    inner_w, inner_h = DIST_W - DIST_PAD_L - DIST_PAD_R, height - DIST_PAD_T - DIST_PAD_B
    top = max([*h.reference, *h.current, 1e-9]) * 1.1
    n = len(h.reference)
    x0, y_base = DIST_PAD_L, DIST_PAD_T + inner_h

    def y(v: float) -> float:
        return y_base - inner_h * v / top

    bw = inner_w / n
    out = _legend(x0, 14)
    for frac in (0.0, 0.5, 1.0):
        yy = y_base - inner_h * frac
        out.append(f'<line x1="{_fmt(x0)}" x2="{_fmt(x0 + inner_w)}" y1="{_fmt(yy)}" y2="{_fmt(yy)}" stroke="{GRID_COLOUR}"/>')
        out.append(f'<text x="{_fmt(x0 - 5)}" y="{_fmt(yy + 4)}" class="tick" text-anchor="end">{_pct_label(top * frac)}</text>')
    for i, v in enumerate(h.reference):
        if v > 0:
            out.append(f'<rect x="{_fmt(x0 + i * bw)}" y="{_fmt(y(v))}" width="{_fmt(bw)}" height="{_fmt(y_base - y(v))}" fill="{REFERENCE_COLOUR}" fill-opacity="0.75"/>')
    steps = [f"{_fmt(x0)},{_fmt(y_base)}"]
    for i, v in enumerate(h.current):
        steps += [f"{_fmt(x0 + i * bw)},{_fmt(y(v))}", f"{_fmt(x0 + (i + 1) * bw)},{_fmt(y(v))}"]
    steps.append(f"{_fmt(x0 + inner_w)},{_fmt(y_base)}")
    out.append(f'<polygon points="{" ".join(steps)}" fill="{CURRENT_COLOUR}" fill-opacity="0.22" stroke="{CURRENT_COLOUR}" stroke-width="1.5"/>')
    lo, hi = h.edges[0], h.edges[-1]
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        out.append(
            f'<text x="{_fmt(x0 + inner_w * frac)}" y="{_fmt(y_base + 16)}" class="tick" text-anchor="{anchor}">'
            f"{_tick_label(lo + (hi - lo) * frac)}</text>"
        )
    return _svg(d, height, out, "histograms")


def _steps_svg(d: Distribution, q: QuantileSteps) -> str:
    height = 170.0
    inner_w, inner_h = DIST_W - DIST_PAD_L - DIST_PAD_R, height - DIST_PAD_T - DIST_PAD_B
    xs = [v for v, _ in (*q.reference, *q.current)]
    lo, hi = min(xs), max(xs)
    span = hi - lo if hi > lo else 1.0
    x0, y_base = DIST_PAD_L, DIST_PAD_T + inner_h

    def pt(v: float, p: float) -> str:
        return f"{_fmt(x0 + inner_w * (v - lo) / span)},{_fmt(y_base - inner_h * p)}"

    out = _legend(x0, 14)
    for p in (0.0, 0.5, 1.0):
        yy = y_base - inner_h * p
        out.append(f'<line x1="{_fmt(x0)}" x2="{_fmt(x0 + inner_w)}" y1="{_fmt(yy)}" y2="{_fmt(yy)}" stroke="{GRID_COLOUR}"/>')
        out.append(f'<text x="{_fmt(x0 - 5)}" y="{_fmt(yy + 4)}" class="tick" text-anchor="end">{_pct_label(p)}</text>')
    for points, colour in ((q.reference, REFERENCE_COLOUR), (q.current, CURRENT_COLOUR)):
        out.append(f'<polyline points="{" ".join(pt(v, p) for v, p in points)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        out.append(
            f'<text x="{_fmt(x0 + inner_w * frac)}" y="{_fmt(y_base + 16)}" class="tick" text-anchor="{anchor}">'
            f"{_tick_label(lo + span * frac)}</text>"
        )
    return _svg(d, height, out, "cumulative shares")


def _bars_svg(d: Distribution, b: Bars) -> str:
    rows = list(zip(b.labels, b.reference, b.current, strict=True))
    if b.other_reference >= 0.0005 or b.other_current >= 0.0005:
        rows.append(("(other)", b.other_reference, b.other_current))
    height = 26.0 + BAR_ROW_H * len(rows) + 6
    bar_w = DIST_W - BAR_LABEL_W - BAR_VALUE_W
    top = max([*b.reference, *b.current, b.other_reference, b.other_current, 1e-9])
    out = _legend(BAR_LABEL_W, 14)
    for k, (label, r, c) in enumerate(rows):
        y0 = 26.0 + BAR_ROW_H * k
        out.append(
            f'<text x="{_fmt(BAR_LABEL_W - 6)}" y="{_fmt(y0 + 14)}" class="lbl" text-anchor="end">{escape(_clip(label, BAR_LABEL_CHARS))}'
            f"<title>{escape(label)}: reference {100 * r:.1f}%, this window {100 * c:.1f}%</title></text>"
        )
        for j, (share, colour, opacity) in enumerate(((r, REFERENCE_COLOUR, "0.9"), (c, CURRENT_COLOUR, "0.75"))):
            yy = y0 + 3 + j * 9
            out.append(
                f'<rect x="{_fmt(BAR_LABEL_W)}" y="{_fmt(yy)}" width="{_fmt(max(bar_w * share / top, 0.5))}" height="8" '
                f'fill="{colour}" fill-opacity="{opacity}"/>'
            )
            out.append(f'<text x="{_fmt(BAR_LABEL_W + bar_w * share / top + 4)}" y="{_fmt(yy + 7.5)}" class="tick">{_pct_label(share)}</text>')
    return _svg(d, height, out, "shares")


def _scatter_svg(d: Distribution, sc: Scatter) -> str:
    """Both sides' vectors on the reference's first two principal components: grey reference dots
    under blue window dots, the axes labelled with the share of the reference's variance they hold."""
    height = 230.0
    inner_w, inner_h = DIST_W - DIST_PAD_L - DIST_PAD_R, height - DIST_PAD_T - DIST_PAD_B
    xs = [p[0] for p in (*sc.reference, *sc.current)]
    ys = [p[1] for p in (*sc.reference, *sc.current)]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    x0, y_base = DIST_PAD_L, DIST_PAD_T + inner_h

    def pt(p: tuple[float, float]) -> tuple[str, str]:
        return _fmt(x0 + inner_w * (p[0] - x_lo) / x_span), _fmt(y_base - inner_h * (p[1] - y_lo) / y_span)

    out = _legend(x0, 14)
    out.append(f'<rect x="{_fmt(x0)}" y="{_fmt(DIST_PAD_T)}" width="{_fmt(inner_w)}" height="{_fmt(inner_h)}" fill="none" stroke="{GRID_COLOUR}"/>')
    for side, colour, opacity in ((sc.reference, REFERENCE_COLOUR, "0.55"), (sc.current, CURRENT_COLOUR, "0.6")):
        cls = "ref" if side is sc.reference else "cur"
        out += [f'<circle class="{cls}" cx="{x}" cy="{y}" r="2" fill="{colour}" fill-opacity="{opacity}"/>' for x, y in map(pt, side)]
    out.append(f'<text x="{_fmt(x0 + inner_w / 2)}" y="{_fmt(y_base + 18)}" class="tick" text-anchor="middle">'
               f"PC1 ({sc.explained[0]:.0%} of the reference's variance)</text>")
    out.append(f'<text x="{_fmt(x0 - 8)}" y="{_fmt(DIST_PAD_T + inner_h / 2)}" class="tick" text-anchor="middle" '
               f'transform="rotate(-90 {_fmt(x0 - 8)} {_fmt(DIST_PAD_T + inner_h / 2)})">PC2 ({sc.explained[1]:.0%})</text>')
    return _svg(d, height, out, "principal-component scatter")


def distribution_svg(d: Distribution) -> str:
    """One column's reference vs window plot; an empty string when there is nothing to draw."""
    if isinstance(d.shape, Histogram):
        return _histogram_svg(d, d.shape)
    if isinstance(d.shape, Bars):
        return _bars_svg(d, d.shape)
    if isinstance(d.shape, QuantileSteps):
        return _steps_svg(d, d.shape)
    if isinstance(d.shape, Scatter):
        return _scatter_svg(d, d.shape)
    return ""


# -- performance -----------------------------------------------------------------------------------

REALIZED_COLOUR = "#1d2330"
ESTIMATED_COLOUR = CURRENT_COLOUR
EST_THRESHOLD_COLOUR = "#a86400"
PERF_W = 960
PERF_MAIN_H, PERF_COV_H = 290, 104
PERF_PAD_L, PERF_PAD_R, PERF_PAD_T = 56, 16, 62
_T = TypeVar("_T")


def _perf_axis(values: Sequence[float]) -> tuple[float, float, list[float]]:
    """(low, high, ticks) around every plotted value, with a little air and round ticks."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.02 * max(abs(hi), 1e-9), 1e-6)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    step = _nice_step(hi - lo)
    first = math.ceil(lo / step)
    ticks = [step * k for k in range(first, math.floor(hi / step) + 1)]
    return lo, hi, ticks


def _runs(points: Sequence[PerfPoint], value: Callable[[PerfPoint], _T | None]) -> list[list[tuple[int, _T]]]:
    """(index, value) of consecutive windows that have a value: lines break where a window has none."""
    runs: list[list[tuple[int, _T]]] = []
    for i, p in enumerate(points):
        v = value(p)
        if v is None:
            continue
        if runs and runs[-1][-1][0] == i - 1:
            runs[-1].append((i, v))
        else:
            runs.append([(i, v)])
    return runs


def _perf_legend(y: float) -> list[str]:
    x = PERF_PAD_L
    items = [
        f'<line x1="{x}" x2="{x + 18}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{REALIZED_COLOUR}" stroke-width="2"/>'
        f'<circle cx="{x + 9}" cy="{_fmt(y)}" r="3.5" fill="{REALIZED_COLOUR}"/>'
        f'<text x="{x + 24}" y="{_fmt(y + 4)}" class="tick">realized (dot size: labelled share)</text>',
        f'<rect x="{x + 214}" y="{_fmt(y - 6)}" width="18" height="12" fill="{ESTIMATED_COLOUR}" fill-opacity="0.15"/>'
        f'<line x1="{x + 214}" x2="{x + 232}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{ESTIMATED_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>'
        f'<text x="{x + 238}" y="{_fmt(y + 4)}" class="tick">estimated (CBPE) and its band</text>',
        f'<line x1="{x + 420}" x2="{x + 438}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{REFERENCE_COLOUR}" stroke-width="2"/>'
        f'<text x="{x + 444}" y="{_fmt(y + 4)}" class="tick">reference</text>',
        f'<line x1="{x + 510}" x2="{x + 528}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{DRIFT_COLOUR}" stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{x + 534}" y="{_fmt(y + 4)}" class="tick">realized threshold</text>',
        f'<line x1="{x + 640}" x2="{x + 658}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{EST_THRESHOLD_COLOUR}" stroke-width="1.5" stroke-dasharray="1.5 2.5"/>'
        f'<text x="{x + 664}" y="{_fmt(y + 4)}" class="tick">estimated threshold</text>',
        f'<rect x="{x + 784}" y="{_fmt(y - 6)}" width="12" height="12" fill="{DRIFT_COLOUR}" fill-opacity="0.12"/>'
        f'<text x="{x + 802}" y="{_fmt(y + 4)}" class="tick">degraded</text>',
    ]
    return items


def performance_svg(metric: str, higher_is_better: bool, reference: float | None, points: Sequence[PerfPoint]) -> str:
    """The headline metric per window: realized (dot size = labelled share), the estimate and its band,
    the reference, each window's thresholds (they depend on its size), degraded windows shaded; below
    it, the labelled share per window. An empty string when no window has a value to plot."""
    values = [v for p in points for v in (p.realized, p.estimated, p.threshold_realized, p.threshold_estimated, *(p.band or ())) if v is not None]
    if not values:
        return ""
    low, high, ticks = _perf_axis([*values, *([reference] if reference is not None else [])])
    n = len(points)
    inner_w = PERF_W - PERF_PAD_L - PERF_PAD_R
    top, inner_h = PERF_PAD_T, PERF_MAIN_H - PERF_PAD_T - 22
    step = inner_w / n
    height = PERF_MAIN_H + PERF_COV_H

    def x_of(i: int) -> float:
        return PERF_PAD_L + step * (i + 0.5)

    def y_of(v: float) -> float:
        return top + inner_h * (1.0 - (v - low) / (high - low))

    better = "higher is better" if higher_is_better else "lower is better"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="performance" viewBox="0 0 {PERF_W} {height}" width="{PERF_W}" height="{height}" '
        f'role="img" aria-label="{escape(metric)} per window: realized, estimated with its band, reference and thresholds; labelled share below">',
        "<style>"
        f".ptitle{{font:600 12px system-ui,sans-serif;fill:#1d2330}}"
        f".tick{{font:10px system-ui,sans-serif;fill:{TEXT_COLOUR}}}"
        f".thr{{font:10px system-ui,sans-serif;fill:{DRIFT_COLOUR}}}"
        "</style>",
        *_perf_legend(36),
    ]
    for i, p in enumerate(points):  # degraded windows shaded behind everything, saying which judgement
        if p.degraded:
            which = " and ".join(w for w, flag in (("realized", p.realized_degraded), ("estimated", p.estimated_degraded)) if flag)
            out.append(
                f'<rect class="degraded" data-window="{p.window_id}" x="{_fmt(PERF_PAD_L + step * i)}" y="{top}" width="{_fmt(step)}" '
                f'height="{_fmt(inner_h)}" fill="{DRIFT_COLOUR}" fill-opacity="0.12"><title>window {p.window_id}: {which} degraded</title></rect>'
            )
            if n <= 16:
                out.append(f'<text x="{_fmt(x_of(i))}" y="{top - 4}" class="thr" text-anchor="middle">{which} degraded</text>')
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{PERF_PAD_L}" x2="{PERF_PAD_L + inner_w}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{GRID_COLOUR}"/>')
        out.append(f'<text x="{PERF_PAD_L - 6}" y="{_fmt(y + 4)}" class="tick" text-anchor="end">{_tick_label(round(t, 10))}</text>')
    out.append(f'<text x="{PERF_PAD_L}" y="14" class="ptitle">{escape(metric)}<tspan class="tick"> · {better}</tspan></text>')
    for bands in _runs(points, lambda p: p.band):  # the band: an area over consecutive windows, a bar for a lone one
        if len(bands) == 1:
            i, (lo, hi) = bands[0]
            out.append(f'<rect class="band" x="{_fmt(x_of(i) - 5)}" y="{_fmt(y_of(hi))}" width="10" height="{_fmt(y_of(lo) - y_of(hi))}" fill="{ESTIMATED_COLOUR}" fill-opacity="0.15"/>')
            continue
        upper = [f"{_fmt(x_of(i))},{_fmt(y_of(b[1]))}" for i, b in bands]
        lower = [f"{_fmt(x_of(i))},{_fmt(y_of(b[0]))}" for i, b in reversed(bands)]
        out.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{ESTIMATED_COLOUR}" fill-opacity="0.15"/>')
    if reference is not None:
        y = y_of(reference)
        out.append(f'<line class="reference" x1="{PERF_PAD_L}" x2="{PERF_PAD_L + inner_w}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{REFERENCE_COLOUR}" stroke-width="1.5"/>')
        out.append(f'<text x="{PERF_PAD_L + 4}" y="{_fmt(y - 4)}" class="tick">reference {reference:.4g}</text>')
    half = min(step * 0.4, 40.0)
    for i, p in enumerate(points):  # thresholds are per window: each is computed at that window's size
        for value, colour, dash, what in ((p.threshold_realized, DRIFT_COLOUR, "4 3", "realized"),
                                          (p.threshold_estimated, EST_THRESHOLD_COLOUR, "1.5 2.5", "estimated")):
            if value is None:
                continue
            y = y_of(value)
            out.append(
                f'<line class="threshold-{what}" x1="{_fmt(x_of(i) - half)}" x2="{_fmt(x_of(i) + half)}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"><title>window {p.window_id}: {what} threshold {value:.4g}</title></line>'
            )
    for run in _runs(points, lambda p: p.estimated):
        if len(run) > 1:
            path = " ".join(f"{_fmt(x_of(i))},{_fmt(y_of(v))}" for i, v in run)
            out.append(f'<polyline points="{path}" fill="none" stroke="{ESTIMATED_COLOUR}" stroke-width="1.8" stroke-dasharray="5 3"/>')
    for run in _runs(points, lambda p: p.realized):
        if len(run) > 1:
            path = " ".join(f"{_fmt(x_of(i))},{_fmt(y_of(v))}" for i, v in run)
            out.append(f'<polyline points="{path}" fill="none" stroke="{REALIZED_COLOUR}" stroke-width="2"/>')
    for i, p in enumerate(points):
        if p.estimated is not None:
            band = f", {p.band[0]:.4g}–{p.band[1]:.4g}" if p.band else ""
            bad = " — degraded" if p.estimated_degraded else ""
            colour = DRIFT_COLOUR if p.estimated_degraded else ESTIMATED_COLOUR
            out.append(
                f'<circle class="estimated" data-window="{p.window_id}" cx="{_fmt(x_of(i))}" cy="{_fmt(y_of(p.estimated))}" r="3.2" '
                f'fill="#fff" stroke="{colour}" stroke-width="1.8"><title>window {p.window_id}: estimated {escape(metric)} '
                f"{p.estimated:.4g}{band}{bad}</title></circle>"
            )
        if p.realized is not None:
            judged = {True: " — degraded", False: "", None: " — not judged (too few labels)"}[p.realized_degraded]
            colour = DRIFT_COLOUR if p.realized_degraded else REALIZED_COLOUR
            out.append(
                f'<circle class="realized" data-window="{p.window_id}" cx="{_fmt(x_of(i))}" cy="{_fmt(y_of(p.realized))}" '
                f'r="{_fmt(2.5 + 4.5 * math.sqrt(p.coverage))}" fill="{colour}" fill-opacity="{0.4 + 0.6 * p.coverage:.2f}" stroke="#fff" stroke-width="1">'
                f"<title>window {p.window_id}: realized {escape(metric)} {p.realized:.4g} ({p.n_labelled} of {p.n_records} labelled){judged}</title></circle>"
            )
    # the labelled share per window
    cov_top = PERF_MAIN_H + 32
    cov_h = PERF_COV_H - 54
    out.append(f'<text x="{PERF_PAD_L}" y="{cov_top - 18}" class="ptitle">labelled share<tspan class="tick"> · of each window\'s records</tspan></text>')
    for frac in (0.0, 1.0):
        y = cov_top + cov_h * (1 - frac)
        out.append(f'<line x1="{PERF_PAD_L}" x2="{PERF_PAD_L + inner_w}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{GRID_COLOUR}"/>')
        out.append(f'<text x="{PERF_PAD_L - 6}" y="{_fmt(y + 4)}" class="tick" text-anchor="end">{100 * frac:.0f}%</text>')
    bar = min(step * 0.6, 28.0)
    for i, p in enumerate(points):
        h = cov_h * min(p.coverage, 1.0)
        out.append(
            f'<rect class="coverage" data-window="{p.window_id}" x="{_fmt(x_of(i) - bar / 2)}" y="{_fmt(cov_top + cov_h - h)}" width="{_fmt(bar)}" '
            f'height="{_fmt(h)}" fill="{REALIZED_COLOUR}" fill-opacity="0.55"><title>window {p.window_id}: {p.n_labelled} of {p.n_records} labelled</title></rect>'
        )
        if n <= 16:
            label = "no labels" if p.n_labelled == 0 else _pct_label(p.coverage)
            out.append(f'<text x="{_fmt(x_of(i))}" y="{_fmt(cov_top + cov_h - h - 3)}" class="tick" text-anchor="middle">{label}</text>')
    shown = range(n) if n <= 12 else sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})
    for i in shown:
        out.append(f'<text x="{_fmt(x_of(i))}" y="{_fmt(cov_top + cov_h + 15)}" class="tick" text-anchor="middle">#{points[i].window_id}</text>')
    out.append("</svg>")
    return "\n".join(out)
