"""An embedding column's card on the report page: the on-demand MMD check beside the always-on test's
verdict, and the dimensions and principal components that moved most (from the stored result)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from monitor.drift.result import FeatureResult
from monitor.reports.distributions import Distribution, Scatter
from monitor.reports.page import fmt_num

__all__ = ["embedding_numbers", "mmd_line"]


def mmd_line(d: Distribution | None) -> str:
    """One sentence: what the MMD permutation test says of this window (or why it did not run)."""
    if d is None or not isinstance(d.shape, Scatter):
        return ""
    sc = d.shape
    verdict = "differ" if sc.mmd_drifted else "do not differ"
    return (
        f'<p class="note mmd">MMD check: the distributions {verdict} (MMD² {fmt_num(sc.mmd2)}, permutation p {fmt_num(sc.mmd_p)}, '
        f"{sc.permutations} permutations of {sc.mmd_rows[0]} reference and {sc.mmd_rows[1]} window vectors)</p>"
    )


def _rows(items: object, cells: tuple[tuple[str, str], ...]) -> str:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping):
            row = "".join(
                f"<td{' class=num' if key != 'component' else ''}>"
                f"{escape(str(item.get(key))) if key in ('component', 'dimension') else fmt_num(item.get(key))}</td>"
                for key, _ in cells
            )
            out.append(f"<tr>{row}</tr>")
    head = "".join(f"<th>{escape(label)}</th>" for _, label in cells)
    return f"<table><tr>{head}</tr>{''.join(out)}</table>" if out else ""


def embedding_numbers(f: FeatureResult) -> str:
    """The always-on test's families and its most shifted dimensions and components."""
    family = f.details.get("family_p")
    fams = "".join(
        f"<tr><td>{escape(str(k))}</td><td class=num>{fmt_num(v)}</td></tr>" for k, v in family.items()
    ) if isinstance(family, Mapping) else ""
    dims = _rows(f.details.get("top_dimensions"), (
        ("dimension", "dimension"), ("mean_shift_sd", "mean shift (sd)"), ("variance_ratio", "variance ratio"), ("adjusted_p", "adjusted p")))
    comps = _rows(f.details.get("top_components"), (("component", "component"), ("ks", "KS D"), ("adjusted_p", "adjusted p")))
    families = f"<table><tr><th>family</th><th class=num>p</th></tr>{fams}</table>" if fams else ""
    return families + dims + comps or "<p>no test ran on this window</p>"
