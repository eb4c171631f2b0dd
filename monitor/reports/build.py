"""The HTML of drift reports (pure: views in, a self-contained HTML string out).

Everything is inline (CSS, SVG) so a report renders offline and can be mailed as one file. Every value
from data (feature and category names, model names) is escaped in our markup, and our pages run no
script, so their Content-Security-Policy forbids it. Evidently's page is NOT safe: it embeds the
window's data (category values from model traffic) raw inside its own `<script>` blocks, so a value
like `</script><script>...` runs. It is therefore only ever shown in a sandboxed frame (a unique
opaque origin: no access to the monitor's APIs or to this page) under a policy that allows its
inline scripts but no network. Output depends only on the inputs, so pages are golden-tested.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from monitor.core.names import report_path
from monitor.drift.result import FeatureResult
from monitor.reports.distributions import Distribution
from monitor.reports.embedding_card import embedding_numbers, mmd_line
from monitor.reports.evidently_report import EvidentlyScore, definition_note
from monitor.reports.examples import examples_html, text_columns_by_role
from monitor.reports.page import (
    CSS,
    EVIDENTLY_CSP,
    FRAME_SANDBOX,
    PAGE_CSP,
    badge,
    fmt_num,
    fmt_pct,
    fmt_ts,
    page,
)
from monitor.reports.performance_view import PerformanceView, PerfPoint
from monitor.reports.plots import (
    distribution_svg,
    history_svg,
    performance_svg,
)
from monitor.reports.view import IndexRow, ReportView, decision_value, effect_size

__all__ = [
    "AGREEMENT_TOLERANCE", "EvidentlySection",
    "render_agreement", "render_error", "render_index", "render_report",
]

AGREEMENT_TOLERANCE = 1e-6

@dataclass(frozen=True)
class EvidentlySection:
    """Evidently's part of a page: its scores for the agreement column, and its page by URL or inline.

    On the server both are separate URLs the page frames (`url`: Evidently's page, about 4 MB;
    `agreement_url`: our per-column comparison), so the report answers before Evidently has run;
    offline they are inlined (the page through `srcdoc`) so the report stays one file. `error`
    replaces them when Evidently could not run.
    """

    scores: Mapping[str, EvidentlyScore]
    url: str | None = None
    inline_html: str | None = None
    error: str | None = None
    agreement_url: str | None = None


def _verdict_badge(f: FeatureResult) -> str:
    return '<span class="badge none">not tested</span>' if f.untested is not None else badge(f.drifted)


def _verdict(f: FeatureResult) -> str:
    """A column that could not be tested says so and why, rather than passing for "no drift"."""
    if f.untested is not None:
        return f'<span class="badge none" title="{escape(f.untested)}">not tested</span> <span class="muted">{escape(f.untested)}</span>'
    return badge(f.drifted)


def _rule(f: FeatureResult) -> str:
    if not f.is_test:
        return f"≥ {fmt_num(f.threshold)}"
    floor = f.details.get("min_effect")
    gate = f" and effect ≥ {fmt_num(floor)}" if isinstance(floor, (int, float)) else ""
    return f"p &lt; {fmt_num(f.threshold)}{gate}"


def _agreement(f: FeatureResult, ev: EvidentlySection) -> str:
    if ev.error is not None:
        return '<td class="muted">—</td>'
    s = ev.scores.get(f.name)
    if s is None:
        return '<td class="muted">not run</td>'
    ours = f.score
    note = definition_note(f.kind, f.method)
    if note is not None:
        return f'<td class="num"><span title="{escape(note)}">{fmt_num(s.score)} <span class="muted">({escape(s.method)}; defined differently)</span></span></td>'
    same = not math.isnan(ours) and math.isfinite(s.score) and abs(ours - s.score) <= AGREEMENT_TOLERANCE * max(1.0, abs(ours))
    mark = '<span class="muted">✓</span>' if same else f'<span class="warn">differs by {fmt_num(abs(ours - s.score))}</span>'
    return f'<td class="num">{fmt_num(s.score)} {mark}</td>'


def _effect(f: FeatureResult) -> str:
    e = effect_size(f)
    if math.isnan(e.value):
        return '<td class="num effect muted">n/a</td>'
    if math.isinf(e.value):
        return f'<td class="num effect hi">{escape(e.label)}</td>'
    return f'<td class="num effect{" hi" if f.drifted else ""}">{fmt_num(e.value, 3)}<small>{escape(e.label)}</small></td>'


def _p_values(f: FeatureResult) -> str:
    """A test's raw p-value (what the score metric exports) and the adjusted one its verdict uses."""
    if not f.is_test:
        return '<td class="num pv muted">—</td>'
    if f.adjusted_p_value is not None and f.p_value is not None:
        return f'<td class="num pv">{fmt_num(f.p_value)}<small>adjusted {fmt_num(f.adjusted_p_value)}</small></td>'
    return f'<td class="num pv">{fmt_num(decision_value(f))}</td>'


def _columns_table(view: ReportView) -> str:
    head = (
        "<tr><th>#</th><th>column</th><th>role</th><th>method</th><th class=num>effect size</th>"
        "<th class=num>p-value</th><th class=num>drift when</th><th>verdict</th></tr>"
    )
    rows = []
    for i, f in enumerate(view.columns, start=1):
        rows.append(
            f'<tr class="{"drifted" if f.drifted else "ok"}" data-feature="{escape(f.name)}">'
            f'<td class="num">{i}</td><td class="name"><strong>{escape(f.name)}</strong></td><td>{escape(f.role)}</td>'
            f"<td>{escape(f.method)}</td>{_effect(f)}{_p_values(f)}<td class=num>{_rule(f)}</td>"
            f"<td>{_verdict(f)}</td></tr>"
        )
    return f'<div class="tablewrap"><table class="columns">{head}{"".join(rows)}</table></div>'


def _quantile_card(f: FeatureResult) -> str:
    d = f.details
    ref, cur = d.get("reference") or {}, d.get("current") or {}
    labels = [str(k) for k in (ref.get("quantiles") or {})]
    rows = "".join(
        f"<tr><td>p{escape(q)}</td><td class=num>{fmt_num(_get(ref.get('quantiles'), q))}</td><td class=num>{fmt_num(_get(cur.get('quantiles'), q))}</td></tr>"
        for q in labels
    )
    rows += "".join(
        f"<tr><td>{label}</td><td class=num>{fmt_num(_get(ref, key))}</td><td class=num>{fmt_num(_get(cur, key))}</td></tr>"
        for key, label in (("mean", "mean"), ("std", "std"), ("min", "min"), ("max", "max"))
    )
    return f"<table><tr><th></th><th class=num>reference</th><th class=num>current</th></tr>{rows}</table>"


def _get(mapping: object, key: str) -> float | None:
    if not isinstance(mapping, Mapping):
        return None
    v = mapping.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _category_card(f: FeatureResult) -> str:
    """Shares of the most frequent categories (the engine keeps the top ones), widest bars first."""
    rows = []
    for item in f.details.get("categories") or []:
        r, c = _get(item, "reference") or 0.0, _get(item, "current") or 0.0
        rows.append(
            f"<tr><td>{escape(str(item.get('value')))}</td>"
            f'<td class=num>{fmt_pct(r)} <span class="bar ref" style="width:{round(60 * r)}px"></span></td>'
            f'<td class=num>{fmt_pct(c)} <span class="bar cur" style="width:{round(60 * c)}px"></span></td></tr>'
        )
    new = int(f.details.get("new_categories") or 0)
    note = f'<p class="warn">{new} categor{"y" if new == 1 else "ies"} never seen in the reference</p>' if new else ""
    return f"<table><tr><th>category</th><th class=num>reference</th><th class=num>current</th></tr>{''.join(rows)}</table>{note}"


def _distribution_cards(view: ReportView) -> str:
    """A card per column: the reference-vs-window plot, and the numbers behind it one click away;
    a text column's descriptors are grouped under its name, after the other columns (prompts first)."""
    texts = text_columns_by_role(view.columns)
    grouped = {name for names in texts.values() for name in names}
    plain = _cards(view, [f for f in view.columns if f.name not in grouped])
    groups = "".join(
        f'<div class="textgroup" data-text-column="{escape(col)}"><h3>{escape(col)} <span class="muted">'
        f"· text descriptors</span></h3>{_cards(view, [f for f in view.columns if f.name in names])}</div>"
        for col, names in texts.items()
    )
    return plain + groups


def _cards(view: ReportView, columns: Sequence[FeatureResult]) -> str:
    if not columns:
        return ""
    pictures: dict[str, Distribution] = {d.feature: d for d in view.distributions}
    cards = []
    for f in columns:
        d = pictures.get(f.name)
        svg = distribution_svg(d) if d is not None else ""
        note = d.note if d is not None else "the window's records were not read for this page"
        numbers = embedding_numbers(f) if f.kind == "embedding" else _category_card(f) if "categories" in f.details else _quantile_card(f)
        e = effect_size(f)
        effect = escape(f.method) if math.isnan(e.value) else (
            f"{escape(f.method)} · {escape(e.label)}" if math.isinf(e.value) else f"{escape(f.method)} · effect {fmt_num(e.value, 3)} ({escape(e.label)})"
        )
        cards.append(
            f'<div class="card" data-feature="{escape(f.name)}"><h3><span>{escape(f.name)}</span> {_verdict_badge(f)}</h3>'
            f'<p class="eff">{effect}</p>{svg}{mmd_line(d)}'
            + (f'<p class="note">{escape(note)}</p>' if note else "")
            + f"<details><summary>numbers</summary>{numbers}</details></div>"
        )
    return f'<div class="grid dists">{"".join(cards)}</div>'


def _quality_table(view: ReportView) -> str:
    def cell(x: float) -> str:
        return f'<td class="num{" warn" if not math.isnan(x) and x > 0 else ""}">{fmt_pct(x)}</td>'

    rows = "".join(
        f"<tr><td>{escape(f.name)}</td>{cell(f.quality.missing_ratio)}{cell(f.quality.out_of_range_ratio)}"
        f"{cell(f.quality.new_category_ratio) if f.kind == 'categorical' else '<td class=num>—</td>'}"
        f"{cell(f.quality.wrong_type_ratio)}<td class=num>{f.n_current}</td></tr>"
        for f in view.result.features.values()
    )
    return (
        "<table><tr><th>column</th><th class=num>missing</th><th class=num>out of range</th>"
        f"<th class=num>new category</th><th class=num>wrong type</th><th class=num>values</th></tr>{rows}</table>"
    )


def _windows(view: ReportView, base: str) -> str:
    links = []
    for w in reversed(view.history):
        cls = "current" if w.window_id == view.window.window_id else ("drift" if w.drifted else "")
        links.append(
            f'<li><a class="{cls}" href="{escape(report_path(view.model, w.window_id, base))}" '
            f'title="{fmt_ts(w.start)} – {fmt_ts(w.end)}">#{w.window_id}</a></li>'
        )
    return f'<ul class="windows">{"".join(links)}</ul>'


def _agreement_table(view: ReportView, ev: EvidentlySection) -> str:
    """Per column: driftwatch's number beside Evidently's for the same method (✓ when equal)."""
    rows = "".join(
        f'<tr data-feature="{escape(f.name)}"><td class="name">{escape(f.name)}</td><td>{escape(f.method)}</td>'
        f"<td class=num>{fmt_num(f.score)}</td>{_agreement(f, ev)}</tr>"
        for f in view.columns
    )
    return (
        '<div class="tablewrap"><table class="agreement"><tr><th>column</th><th>method</th>'
        f"<th class=num>driftwatch</th><th class=num>Evidently</th></tr>{rows}</table></div>"
    )


AGREEMENT_ROW_PX = 36
"""Height of a row of the framed agreement table, to size its frame (our pages run no script to do it)."""


def _evidently(view: ReportView, ev: EvidentlySection | None) -> str:
    if ev is None:
        return ""
    if ev.error is not None:
        inner = f'<p class="warn">Evidently could not build its report for this window: {escape(ev.error)}</p>'
    elif ev.inline_html is not None:
        inner = (
            _agreement_table(view, ev)
            + f'<iframe class="evidently" title="Evidently data drift report" sandbox="{FRAME_SANDBOX}" srcdoc="{escape(ev.inline_html, quote=True)}"></iframe>'
        )
    else:
        frame = ""
        if ev.agreement_url:
            height = AGREEMENT_ROW_PX * (len(view.result.features) + 1) + 16
            frame = (
                f'<iframe class="agreement" title="driftwatch and Evidently, column by column" loading="lazy" '
                f'style="height:{height}px" src="{escape(ev.agreement_url)}"></iframe>'
            )
        inner = (
            f'<p class="sub">Evidently runs after this page has been served (its first run in the monitor takes a few seconds); '
            f'it opens separately too: <a href="{escape(ev.url or "")}">{escape(ev.url or "")}</a></p>{frame}'
            f'<iframe class="evidently" title="Evidently data drift report" sandbox="{FRAME_SANDBOX}" loading="lazy" src="{escape(ev.url or "")}"></iframe>'
        )
    return (
        '<section class="card" id="evidently"><h2>Evidently data drift report</h2>'
        '<p class="sub">Run with the same per-column methods and thresholds as driftwatch, as a cross-check: '
        "each column's number beside driftwatch's (✓ when equal), then Evidently's own page.</p>"
        f"{inner}</section>"
    )


# -- performance -----------------------------------------------------------------------------------

OUTCOME_MEANING = {
    "joined": "matched to its prediction and counted in its window",
    "duplicate": "the event already had its labels (the first label wins)",
    "unknown_id": "no captured event with that id (never captured, or deleted by retention)",
    "too_late": "the prediction was older than the model's label_delay",
    "event_rejected": "the event was rejected at capture: no records to judge",
    "count_mismatch": "not one label per record of the event",
    "invalid": "in a batch refused whole",
}


def _judged(flag: bool | None, ok: str, bad: str, not_judged: str) -> str:
    if flag is None:
        return f'<span class="badge none">{escape(not_judged)}</span>'
    return f'<span class="badge drift">{escape(bad)}</span>' if flag else f'<span class="badge ok">{escape(ok)}</span>'


def _perf_status(perf: PerformanceView, w: PerfPoint) -> str:
    """The table's window in words: which window, whether labels exist, and both verdicts."""
    notes = []
    if not perf.is_report_window:
        notes.append(f'<p class="note">This window has no stored performance; the table shows window #{w.window_id}, the newest before it.</p>')
    if perf.estimate_only:
        notes.append(
            f'<p class="warn" id="estimate-only">No labels yet for window #{w.window_id}: the estimate alone (CBPE, from the '
            "model's own probabilities). Realized values appear as labels arrive.</p>"
        )
    if w.pending_refresh:
        notes.append('<p class="note">Labels arrived since these numbers were computed: the window is being judged again.</p>')
    realized = (
        '<span class="badge none">no labels</span>' if w.n_labelled == 0
        else _judged(w.realized_degraded, "not degraded", "degraded", "too few labels to judge")
    )
    estimated = _judged(w.estimated_degraded, "not degraded", "degraded", "not judged")
    coverage = f"{w.n_labelled} of {w.n_records}" + (f" ({fmt_pct(w.coverage)})" if w.n_records else "")
    excluded = (
        f'<div><dt>left out (no label or prediction)</dt><dd class="warn">{perf.n_excluded}</dd></div>' if perf.n_excluded else ""
    )
    return (
        f'<dl class="stats" id="perf-status" data-window="{w.window_id}">'
        f'<div><dt>window</dt><dd>#{w.window_id}</dd></div>'
        f'<div><dt>realized {escape(perf.metric)}</dt><dd id="perf-realized">{realized}</dd></div>'
        f'<div><dt>estimated {escape(perf.metric)}</dt><dd id="perf-estimated">{estimated}</dd></div>'
        f'<div><dt>labelled records</dt><dd id="perf-coverage">{coverage}</dd></div>{excluded}</dl>'
        + "".join(notes)
    )


def _perf_metrics_table(perf: PerformanceView) -> str:
    level = f"{100 * perf.band_level:.0f}%"
    rows = []
    for m in perf.metrics:
        est = fmt_num(m.estimated) if m.estimated is not None else '<span class="muted">not estimable</span>'
        if m.band is not None:
            est += f"<small>{level} band {fmt_num(m.band[0])}–{fmt_num(m.band[1])}</small>"
        realized = fmt_num(m.realized) if m.realized is not None else '<span class="muted">—</span>'
        delta = (
            f"{m.realized - m.reference:+.4f}" if m.realized is not None and m.reference is not None
            else '<span class="muted">—</span>'
        )
        name = f"<strong>{escape(m.name)}</strong><small>headline</small>" if m.headline else escape(m.name)
        rows.append(
            f'<tr data-metric="{escape(m.name)}"><td class="name">{name}</td><td class="num realized">{realized}</td>'
            f'<td class="num estimated">{est}</td><td class="num reference">{fmt_num(m.reference)}</td><td class="num">{delta}</td></tr>'
        )
    return (
        '<div class="tablewrap"><table class="perf-metrics"><tr><th>metric</th><th class=num>realized</th>'
        "<th class=num>estimated</th><th class=num>reference</th><th class=num>realized − reference</th></tr>"
        f"{''.join(rows)}</table></div>"
    )


def _perf_classes_table(perf: PerformanceView) -> str:
    if not perf.classes:
        return ""
    rows = "".join(
        f'<tr data-class="{escape(c.label)}"><td class="name">{escape(c.label)}</td><td class=num>{fmt_num(c.precision, 3)}</td>'
        f"<td class=num>{fmt_num(c.recall, 3)}</td><td class=num>{fmt_num(c.f1, 3)}</td>"
        f"<td class=num>{'n/a' if c.support is None else c.support}</td></tr>"
        for c in perf.classes
    )
    return (
        "<div><h3>Per class (realized, from this window's labels)</h3>"
        '<div class="tablewrap"><table class="perf-classes"><tr><th>class</th><th class=num>precision</th><th class=num>recall</th>'
        f"<th class=num>F1</th><th class=num>labels</th></tr>{rows}</table></div></div>"
    )


def _perf_outcomes_table(perf: PerformanceView) -> str:
    rows = "".join(
        f'<tr data-outcome="{escape(o)}"><td title="{escape(OUTCOME_MEANING.get(o, ""))}">{escape(o)}'
        f"<small class=muted> {escape(OUTCOME_MEANING.get(o, ''))}</small></td>"
        f'<td class="num{" warn" if n and o != "joined" else ""}">{n}</td></tr>'
        for o, n in perf.label_outcomes
    )
    return (
        "<div><h3>Labels received for this model (all windows)</h3>"
        f'<div class="tablewrap"><table class="perf-outcomes"><tr><th>outcome</th><th class=num>labels</th></tr>{rows}</table></div></div>'
    )


def _performance(view: ReportView) -> str:
    """Realized vs estimated performance over the windows and this window's numbers; nothing for a
    model without ground truth (no `performance` section in its config)."""
    perf = view.performance
    if perf is None:
        return ""
    head = '<section class="card" id="performance"><h2>Performance</h2>'
    if perf.window is None:
        return (
            f'{head}<p class="sub" id="perf-none">No window up to this one has been judged yet: performance is computed '
            "when a window is evaluated and again as its labels arrive.</p>"
            f'<div class="grid perf">{_perf_outcomes_table(perf)}</div></section>'
        )
    direction = "higher" if perf.higher_is_better else "lower"
    return (
        f'{head}<p class="sub">The headline metric, {escape(perf.metric)} ({direction} is better), over the last '
        f"{len(perf.points)} window(s): realized from the labels received so far (dot size and the lower panel: the "
        "share of the window's records with a label), estimated by CBPE from the model's own probabilities before any "
        "label arrives, with its band; the grey line is the labelled reference, the short dashed lines each window's "
        "degradation thresholds (computed at that window's size, so they move), shaded windows are degraded. "
        "Hover a point for its numbers.</p>"
        f"{_perf_status(perf, perf.window)}"
        f'<div class="plot">{performance_svg(perf.metric, perf.higher_is_better, perf.reference, perf.points)}</div>'
        f"{_perf_metrics_table(perf)}"
        f'<div class="grid perf">{_perf_classes_table(perf)}{_perf_outcomes_table(perf)}</div></section>'
    )


def _share_note(view: ReportView) -> str:
    """Why the drift share here and Evidently's "share of drifted columns" differ for the same columns."""
    ds = view.result.dataset
    outputs = [f for f in view.result.features.values() if f.role != "feature"]
    if not outputs:
        return (
            f'<p class="note" id="share-note">Drift share = drifted features / features ({ds.n_drifted} of {ds.n_features}). '
            "This model has no output columns, so Evidently's share of drifted columns is the same number.</p>"
        )
    n_all = len(view.result.features)
    drifted_all = sum(f.drifted for f in view.result.features.values())
    names = ", ".join(f"{f.name} ({'drifted' if f.drifted else 'no drift'})" for f in outputs)
    return (
        f'<p class="note" id="share-note">Drift share = drifted <em>input features</em> / input features '
        f"({ds.n_drifted} of {ds.n_features}). The model's outputs, {escape(names)}, are prediction drift and not "
        f"counted. Evidently's report counts every column it is given, outputs included: "
        f"{drifted_all} of {n_all} = {fmt_num(drifted_all / n_all, 3)}, so its share can differ while every column agrees.</p>"
    )


def render_report(
    view: ReportView, base: str = "/reports", evidently: EvidentlySection | None = None, subtitle: str | None = None
) -> str:
    """The report page of one window; `subtitle` replaces the window's time range (offline reports)."""
    ds, w = view.result.dataset, view.window
    drifted_names = ", ".join(f.name for f in view.drifted) or "none"
    prediction = view.result.prediction
    pred = (
        f"<div><dt>prediction ({escape(prediction.name)})</dt><dd>{badge(prediction.drifted)}</dd></div>"
        if prediction is not None else ""
    )
    # an offline report (a subtitle) compares two files: no stored reference judged it
    judged = "" if subtitle else f' · <span id="reference">judged against {escape(view.judged_against)}</span>'
    body = f"""
<h1>{escape(view.model)} <span class="muted">· window #{w.window_id}</span></h1>
<p class="sub">{escape(subtitle) if subtitle else f"{fmt_ts(w.start)} – {fmt_ts(w.end)}"} · {w.n_records} records · evaluated {fmt_ts(w.evaluated_at)}{judged}</p>
<section class="card verdict" id="verdict">
  {badge(ds.drifted, "big")}
  <dl class="stats">
    <div><dt>drifted features</dt><dd>{ds.n_drifted} of {ds.n_features}</dd></div>
    <div><dt>drift share</dt><dd>{fmt_num(ds.drift_share, 3)}</dd></div>
    <div><dt>dataset drift at</dt><dd>≥ {fmt_num(ds.threshold, 3)}</dd></div>
    <div><dt>reference rows</dt><dd>{ds.n_reference}</dd></div>
    {pred}
  </dl>
  {_share_note(view)}
</section>
{_performance(view)}
<section class="card" id="drifted"><h2>Columns, largest effect first</h2>
<p class="sub">Drifted: <strong id="drifted-names">{escape(drifted_names)}</strong>. Drifted columns come first, each group
ranked by effect size: the distance for distance methods; for tests a standardized effect named under it (KS D,
Cramér's V, …), because a p-value shrinks with the number of rows however small the change. Distances drift at or
above their threshold; tests when their p-value (Benjamini–Hochberg adjusted across the window when enabled) is below
it. The p-value column gives the raw p-value, as <code>driftwatch_feature_drift_p_value</code> exports it, and the
adjusted one the verdict uses.</p>
{_columns_table(view)}</section>
{examples_html(view.examples)}
<section class="card" id="history"><h2>Score history</h2>
<p class="sub">Each column's score over the last {len(view.history)} window(s); the dashed red line is the threshold, red dots are drifted windows.
For tests the plot shows the p-value the verdict compares with the threshold (its panel says which: Benjamini–Hochberg
adjusted when that correction is on), so it can be higher than the raw p-value the score metric exports.</p>
<div class="plot">{history_svg(view.series)}</div></section>
<section class="card" id="distributions"><h2>Distributions</h2>
<p class="sub">Reference (grey) vs this window (blue) for every column, in the table's order: overlaid histograms on
shared bins for numbers (the outer bins hold the last 0.5% tails), shares side by side for categories and for numbers
with few distinct values. "numbers" opens the quantiles or category shares behind each plot.</p>
{_distribution_cards(view)}</section>
<section class="card" id="quality"><h2>Data quality</h2>{_quality_table(view)}</section>
<section class="card" id="windows"><h2>Windows</h2>{_windows(view, base)}</section>
{_evidently(view, evidently)}
"""
    crumbs = [("reports", f"{base}/"), (view.model, f"{base}/{view.model}"), (f"window #{w.window_id}", None)]
    # A srcdoc frame inherits this page's policy, so an inlined Evidently page needs its policy here;
    # this page itself still runs no script and the frame stays sandboxed.
    csp = EVIDENTLY_CSP if evidently is not None and evidently.inline_html is not None else PAGE_CSP
    return page(f"{view.model} · window #{w.window_id} · driftwatch", crumbs, body, base, csp)


def render_index(rows: Sequence[IndexRow], base: str = "/reports") -> str:
    """The list of models with their latest verdict."""
    trs = []
    for r in rows:
        link = f'<a class="model" href="{escape(report_path(r.model, base=base))}">{escape(r.model)}</a>'
        if r.latest is None:
            trs.append(f'<tr class="ok"><td>{link}</td><td>{badge(None)}</td><td colspan=3 class="muted">not evaluated yet</td></tr>')
            continue
        w = r.latest
        trs.append(
            f'<tr class="{"drifted" if w.drifted else "ok"}" data-model="{escape(r.model)}"><td>{link}</td><td>{badge(w.drifted)}</td>'
            f"<td>{escape(', '.join(r.top_features)) or '<span class=muted>none</span>'}</td>"
            f"<td>#{w.window_id} · {fmt_ts(w.start)} – {fmt_ts(w.end)}</td><td class=num>{w.n_records}</td></tr>"
        )
    body = (
        '<h1>Drift reports</h1><p class="sub">The latest evaluated window of each model. '
        f'JSON for scripts: <a href="{escape(base)}/?format=json">{escape(base)}/?format=json</a></p>'
        '<section class="card"><table><tr><th>model</th><th>latest verdict</th><th>drifted columns</th>'
        f"<th>window</th><th class=num>records</th></tr>{''.join(trs)}</table></section>"
    )
    return page("drift reports · driftwatch", [("reports", None)], body, base)


def render_error(status: int, title: str, message: str, base: str = "/reports") -> str:
    body = f'<h1>{escape(title)}</h1><section class="card"><p>{escape(message)}</p><p><a href="{escape(base)}/">All reports</a></p></section>'
    return page(f"{status} {title} · driftwatch", [("reports", f"{base}/"), (str(status), None)], body, base)


def render_agreement(view: ReportView, evidently: EvidentlySection) -> str:
    """The framed column-by-column comparison with Evidently (served apart so the report need not wait)."""
    if evidently.error is not None:
        body = f'<p class="warn">Evidently could not build its report for this window: {escape(evidently.error)}</p>'
    else:
        body = _agreement_table(view, evidently)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{escape(PAGE_CSP)}">'
        f"<title>{escape(view.model)} · window #{view.window.window_id} · driftwatch vs Evidently</title>"
        f"<style>{CSS} body {{ background: #fff; }}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
