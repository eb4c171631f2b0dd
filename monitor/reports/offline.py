"""`driftwatch report`: the same report from two files, without a running monitor.

The page is one self-contained file: Evidently's page is inlined (a sandboxed iframe's `srcdoc`) instead
of linked; see monitor/reports/build.py for why it is sandboxed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from monitor.config import Config
from monitor.reports.build import EvidentlySection, render_report
from monitor.reports.evidently_report import plans_from_result, run_evidently
from monitor.reports.source import Evaluation
from monitor.reports.view import report_view

__all__ = ["STEPS", "ReportInputError", "offline_report", "read_table"]

STEPS = ("read reference", "read current", "drift engine", "Evidently", "render")


class ReportInputError(ValueError):
    """An input file that cannot be used; the message is for the user."""


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (by suffix) as a DataFrame, with a clear error for anything else."""
    if path.is_dir():
        raise ReportInputError(f"{path}: is a directory, expected a CSV or Parquet file")
    if not path.is_file():
        raise ReportInputError(f"{path}: no such file")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        kind = "Parquet" if parquet else "CSV"
        raise ReportInputError(f"{path}: not a readable {kind} file ({type(exc).__name__}: {str(exc)[:200]})") from None
    if frame.empty:
        raise ReportInputError(f"{path}: no rows")
    return frame


def offline_report(
    config: Config,
    model: str,
    reference: Path,
    current: Path,
    step: Callable[[str], None] = lambda _: None,
    evidently: bool = True,
) -> str:
    """The report's HTML; `step(name)` is called as each of `STEPS` starts (for a progress bar)."""
    from monitor.drift import build_profile, evaluate, specs_from_config

    cfg = config.model(model)
    step(STEPS[0])
    ref = read_table(reference)
    step(STEPS[1])
    cur = read_table(current)
    missing = [c.name for c in cfg.columns if c.name not in ref.columns]
    if missing:
        raise ReportInputError(f"{reference}: missing column(s) of model {model!r}: {', '.join(missing)}")
    if not any(c.name in cur.columns for c in cfg.columns):
        raise ReportInputError(f"{current}: none of the columns of model {model!r} ({', '.join(c.name for c in cfg.columns)})")
    step(STEPS[2])
    specs, settings = specs_from_config(config, model)
    result = evaluate(build_profile(ref, specs, settings), cur)
    now = time.time()
    ev = Evaluation(model, 1, now, now, 0, 0, len(cur), now, result.to_dict())
    view = report_view(ev, [ev])
    step(STEPS[3])
    section = None
    if evidently:
        try:
            outcome = run_evidently(ref, cur, plans_from_result(ev.result), settings.dataset_drift_share)
            section = EvidentlySection(scores=outcome.scores, inline_html=outcome.html)
        except Exception as exc:  # e.g. a column empty in the window: our report stands, as on the server
            section = EvidentlySection(scores={}, error=f"{type(exc).__name__}: {exc}")
    step(STEPS[4])
    return render_report(view, evidently=section, subtitle=f"reference {reference.name} vs current {current.name}")
