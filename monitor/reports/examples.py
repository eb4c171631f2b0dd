"""Example texts of a drifted window, for its report (pure: frames in, masked text and HTML out).

A descriptor that drifted says *that* prompts changed (longer, another script, new words); examples
say *which*. The window's texts are ranked by how far they sit along the text column's drifted
descriptors, each measured against the reference's distribution of that descriptor:

- numeric: the text's mid-rank percentile p among the reference's values; when the window as a whole
  moved up (its mean percentile above 0.5 + `DEADBAND`) the score is p, when it moved down 1 - p,
  otherwise (a change of spread) |2p - 1|, the distance from the reference's median;
- categorical: 1 - the reference's share of the text's value (a script the reference never used: 1).

A text's score is the mean over the drifted descriptors (0-1), highest first. Percentiles stop at
the reference's extremes, so texts beyond them tie at 1; those ties go to the text further out (the
mean distance past the reference's range, in reference standard deviations), then to window order.
A text repeated in the window is shown once, with its count. Beside them stand the reference's most
typical texts (lowest |2p - 1| and 1 - share), for contrast. What is shown is PII-masked
(`monitor.text.patterns.mask_pii`, the PII descriptor's own patterns), cut at `EXAMPLE_CHARS`
characters, and invisible or control characters are written `[U+XXXX]`; the page escapes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from monitor.core.descriptors import text_columns_of
from monitor.drift.result import FeatureResult
from monitor.text.patterns import INVISIBLE, mask_pii

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXAMPLE_CHARS", "Example", "TextExamples", "examples_html", "pick_examples", "shown", "text_columns_by_role", "window_examples"]

EXAMPLE_CHARS = 300
"""A shown text is cut here (after masking) and ends with an ellipsis."""
REFERENCE_EXAMPLES = 3
"""Reference texts shown beside the window's (fewer when the window shows fewer)."""
DEADBAND = 0.05
"""A window whose mean percentile is within this of 0.5 moved in spread, not in one direction."""

# Shown as code points too, beyond INVISIBLE: the other control characters (but tab and newline,
# which the page keeps), line and paragraph separators, and lone surrogates (not encodable as UTF-8).
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _code_points(match: re.Match[str]) -> str:
    return "".join(f"[U+{ord(ch):04X}]" for ch in match.group())


def shown(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """A text as a report shows it: PII masked, cut at `limit` characters with an ellipsis, invisible
    and control characters as `[U+XXXX]`. Plain text: escape it for HTML."""
    masked = mask_pii(text)
    cut = masked if len(masked) <= limit else masked[:limit] + "…"
    return _HIDDEN.sub(_code_points, INVISIBLE.sub(_code_points, cut))


@dataclass(frozen=True)
class Example:
    text: str
    """As `shown`: masked, cut, invisible characters as code points (not HTML-escaped)."""
    score: float
    """How far along the drifted descriptors (window), or how far from typical (reference): 0-1."""
    count: int
    """How many texts of its side are exactly this text."""
    values: tuple[tuple[str, float | str | None], ...]
    """The text's value of each drifted descriptor (short names: `chars`, `script`, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": _finite(self.score), "count": self.count,
                "descriptors": {name: _finite(v) if isinstance(v, float) else v for name, v in self.values}}


@dataclass(frozen=True)
class TextExamples:
    """One text column's examples in one window; `note` says why there are none, when there are none."""

    column: str
    role: str
    descriptors: tuple[str, ...]
    """The drifted descriptors the texts are ranked on (short names), in the report's order."""
    current: tuple[Example, ...] = ()
    reference: tuple[Example, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "role": self.role, "descriptors": list(self.descriptors),
                "current": [e.to_dict() for e in self.current], "reference": [e.to_dict() for e in self.reference],
                "note": self.note or None}


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _percentiles(reference: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mid-rank percentile of each value among the reference's finite values (NaN stays NaN)."""
    r = np.sort(reference[np.isfinite(reference)])
    if r.size == 0:
        return np.full(values.size, np.nan)
    p = (np.searchsorted(r, values, "left") + np.searchsorted(r, values, "right")) / (2.0 * r.size)
    return np.where(np.isfinite(values), p, np.nan)


def _numbers(column: pd.Series) -> NDArray[np.float64]:
    import pandas as pd

    return np.asarray(pd.to_numeric(column, errors="coerce"), dtype=np.float64)


@dataclass(frozen=True)
class _Scores:
    current: NDArray[np.float64]
    """How far each window text sits in the drift's direction (0-1)."""
    beyond: NDArray[np.float64]
    """How far past the reference's range, in its standard deviations, in that direction (ties at 1)."""
    reference: NDArray[np.float64]
    """How untypical each reference text is (0: the median, the most common value)."""


def _scores(f: FeatureResult, reference: pd.Series, current: pd.Series) -> _Scores:
    if f.kind == "categorical":
        shares = reference.dropna().astype(str).value_counts(normalize=True).to_dict()

        def untypical(col: pd.Series) -> NDArray[np.float64]:
            return np.array([np.nan if v is None or v != v else 1.0 - shares.get(str(v), 0.0) for v in col.tolist()])

        return _Scores(untypical(current), np.zeros(len(current)), untypical(reference))
    ref, cur = _numbers(reference), _numbers(current)
    p_cur, p_ref = _percentiles(ref, cur), _percentiles(ref, ref)
    shift = float(np.nanmean(p_cur)) - 0.5 if np.isfinite(p_cur).any() else 0.0
    finite = ref[np.isfinite(ref)]
    if finite.size == 0:
        return _Scores(p_cur, np.zeros(cur.size), p_ref)
    scale = float(np.std(finite)) or 1.0
    above, below = (cur - finite.max()) / scale, (finite.min() - cur) / scale
    if shift > DEADBAND:
        toward, beyond = p_cur, above
    elif shift < -DEADBAND:
        toward, beyond = 1.0 - p_cur, below
    else:
        toward, beyond = np.abs(2.0 * p_cur - 1.0), np.fmax(above, below)
    return _Scores(toward, np.clip(np.nan_to_num(beyond), 0.0, None), np.abs(2.0 * p_ref - 1.0))


def _mean(rows: list[NDArray[np.float64]], n: int) -> NDArray[np.float64]:
    if not rows:
        return np.zeros(n)
    stacked = np.vstack(rows)
    counted = np.isfinite(stacked).sum(axis=0)
    total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
    return np.divide(total, counted, out=np.zeros(n), where=counted > 0)


def _value(v: Any) -> float | str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else str(v)


def _chosen(
    texts: pd.Series, frame: pd.DataFrame, order: NDArray[np.int64], scores: NDArray[np.float64],
    descriptors: Sequence[FeatureResult], prefix: int, n: int,
) -> tuple[Example, ...]:
    """The first `n` distinct texts in `order`; masking and cutting only for those."""
    values = texts.tolist()
    seen: set[str] = set()
    out = []
    for i in order:
        text = values[int(i)]
        if not isinstance(text, str) or text in seen:
            continue
        seen.add(text)
        count = int(sum(1 for v in values if v == text))
        out.append(Example(shown(text), float(scores[i]), count,
                           tuple((f.name[prefix:], _value(frame[f.name].iloc[int(i)])) for f in descriptors)))
        if len(out) == n:
            break
    return tuple(out)


def pick_examples(
    column: str, features: Sequence[FeatureResult], reference: pd.DataFrame | None, current: pd.DataFrame | None, n: int,
) -> TextExamples:
    """The examples of text column `column` (its raw texts under that name in both frames, its
    descriptors as `<column>.<descriptor>`); `features`: the window's results, in report order."""
    prefix = len(column) + 1
    mine = [f for f in features if f.name.startswith(column + ".")]
    drifted = [f for f in mine if f.drifted]
    role = mine[0].role if mine else "feature"
    names = tuple(f.name[prefix:] for f in drifted)
    if not drifted:
        return TextExamples(column, role, names, note=f"No descriptor of {column} drifted in this window.")
    if current is None or reference is None or column not in current.columns or column not in reference.columns:
        return TextExamples(column, role, names, note="The window's texts are no longer stored (retention): no examples.")
    usable = [f for f in drifted if f.name in current.columns and f.name in reference.columns]
    scores = [_scores(f, reference[f.name], current[f.name]) for f in usable]
    cur_score = _mean([s.current for s in scores], len(current))
    beyond = _mean([s.beyond for s in scores], len(current))
    ref_score = _mean([s.reference for s in scores], len(reference))
    cur_order = np.lexsort((np.arange(len(current)), -beyond, -cur_score))
    ref_order = np.lexsort((np.arange(len(reference)), ref_score))
    return TextExamples(
        column, role, names,
        current=_chosen(current[column], current, cur_order, cur_score, usable, prefix, n),
        reference=_chosen(reference[column], reference, ref_order, ref_score, usable, prefix, min(n, REFERENCE_EXAMPLES)),
    )


def window_examples(
    features: Sequence[FeatureResult], reference: pd.DataFrame | None, current: pd.DataFrame | None, counts: Mapping[str, int],
) -> tuple[TextExamples, ...]:
    """Every text column's examples (`counts`: how many each shows; 0 leaves a column out)."""
    columns = text_columns_by_role(features)
    return tuple(pick_examples(c, features, reference, current, counts[c]) for c in columns if counts.get(c, 0) > 0)


def text_columns_by_role(features: Sequence[FeatureResult]) -> dict[str, list[str]]:
    """The text columns among the results and their descriptor columns (`text_columns_of`): the
    model's inputs (prompts) first, then its outputs (completions), each in the results' order."""
    roles = {f.name: f.role for f in features}
    found = text_columns_of(roles)
    return dict(sorted(found.items(), key=lambda kv: roles[kv[1][0]] != "feature"))


# -- HTML ------------------------------------------------------------------------------------------


def _fmt(v: float | str | None) -> str:
    if v is None:
        return "missing"
    if isinstance(v, str):
        return escape(v)
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def _items(examples: Sequence[Example], side: str) -> str:
    if not examples:
        return '<p class="muted">no texts</p>'
    items = []
    for e in examples:
        values = " · ".join(f"{escape(name)} {_fmt(v)}" for name, v in e.values)
        repeat = f" · ×{e.count}" if e.count > 1 else ""
        score = f" · score {e.score:.2f}" if side == "current" else ""
        items.append(f'<li><p class="text">{escape(e.text)}</p><p class="meta">{values}{repeat}{score}</p></li>')
    return f'<ol class="texts {side}">{"".join(items)}</ol>'


def examples_html(sections: Sequence[TextExamples]) -> str:
    """One card per text column: the window's texts furthest along the drifted descriptors, beside
    the reference's most typical ones. Everything from traffic is escaped."""
    out = []
    for s in sections:
        what = "completions" if s.role == "output" else "prompts"
        head = (f'<section class="card examples" id="examples-{escape(s.column)}" data-text-column="{escape(s.column)}">'
                f"<h2>Example {what} from the drifted window: <code>{escape(s.column)}</code></h2>")
        if s.note:
            out.append(f'{head}<p class="sub">{escape(s.note)}</p></section>')
            continue
        out.append(
            f'{head}<p class="sub">The window\'s texts furthest along the drifted descriptors '
            f"({escape(', '.join(s.descriptors))}), each measured against the reference's distribution; beside them "
            f"the reference's most typical texts. PII is masked ([EMAIL], [PHONE], …), texts are cut at {EXAMPLE_CHARS} "
            "characters, invisible characters are shown as [U+XXXX].</p>"
            f'<div class="grid examples"><div><h3>this window</h3>{_items(s.current, "current")}</div>'
            f'<div><h3>reference</h3>{_items(s.reference, "reference")}</div></div></section>'
        )
    return "".join(out)
