"""`driftwatch report`: the same report from two files, without a running monitor.

The page is one self-contained file: Evidently's page is inlined (a sandboxed iframe's `srcdoc`) instead
of linked; see monitor/reports/build.py for why it is sandboxed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from monitor.core.config import Config, ModelConfig
from monitor.reports.build import EvidentlySection, render_report
from monitor.reports.evidently_report import plans_from_result, run_evidently
from monitor.reports.source import Evaluation, text_examples
from monitor.reports.view import report_view, with_distributions, with_examples

if TYPE_CHECKING:
    from rich.console import Console

    from monitor.drift import ColumnSpec, DriftResult, EngineSettings

__all__ = ["DRIFT_STEPS", "STEPS", "Inputs", "ReportInputError", "evaluate_inputs", "input_notes", "load_inputs", "offline_report", "progress", "read_table"]

DRIFT_STEPS = ("reading reference", "reading current", "profiling", "evaluating")
STEPS = (*DRIFT_STEPS, "Evidently", "rendering")


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


@dataclass(frozen=True)
class Inputs:
    """Two files read and matched to the columns to compare (from the config, or inferred)."""

    reference: pd.DataFrame
    current: pd.DataFrame
    specs: list[ColumnSpec]
    settings: EngineSettings
    model: str | None
    only_in_reference: list[str]
    """Without a config: columns of the reference the current file lacks (not compared)."""
    only_in_current: list[str]
    """Without a config: columns of the current file the reference lacks (not compared)."""
    absent_in_current: list[str]
    """With a config: the model's columns the current file lacks (evaluated as all missing)."""


def load_inputs(
    reference: Path, current: Path, config: Config | None = None, model: str | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> Inputs:
    """Read both files and decide what to compare: the config's columns (`model` optional when it has
    one model), else every column of both. Raises ReportInputError with a message for the user."""
    from monitor.drift import EngineSettings, infer_specs, specs_from_config

    step(DRIFT_STEPS[0])
    ref = read_table(reference)
    step(DRIFT_STEPS[1])
    cur = read_table(current)
    if config is None:
        ref, cur = ref.rename(columns=str), cur.rename(columns=str)
        try:
            specs = infer_specs(ref, cur)
        except ValueError as exc:
            raise ReportInputError(f"{reference} and {current}: {exc}") from None
        in_ref, in_cur = set(ref.columns), set(cur.columns)
        return Inputs(ref, cur, specs, EngineSettings(), model, [c for c in ref.columns if c not in in_cur],
                      [c for c in cur.columns if c not in in_ref], [])
    try:
        specs, settings = specs_from_config(config, model)
    except ValueError as exc:
        raise ReportInputError(str(exc)) from None
    name = model if model is not None else config.models[0].name
    # `specs_from_config` accepted `name` (a model's name or key), so one model matches it
    ref, cur = _described(next(m for m in config.models if name in (m.name, m.key)), ref, cur, reference)
    names = [s.name for s in specs]
    if missing := [n for n in names if n not in ref.columns]:
        raise ReportInputError(f"{reference}: missing column(s) of model {name!r}: {', '.join(missing)}")
    absent = [n for n in names if n not in cur.columns]
    if len(absent) == len(names):
        raise ReportInputError(f"{current}: none of the columns of model {name!r} ({', '.join(names)})")
    return Inputs(ref, cur, specs, settings, name, [], [], absent)


def _described(model: ModelConfig, ref: pd.DataFrame, cur: pd.DataFrame, reference: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both files as the engine's columns when the model has text columns: the current texts described
    against the reference's vocabularies (`monitor.text.columns`, as the monitor does), the raw texts
    kept for the report's examples; the descriptors of a text column the current file lacks are left
    out, so they count as absent."""
    from monitor.text.columns import describe_reference_frame, model_frame, record_columns

    if not model.text_columns:
        return ref, cur
    try:
        ref, profiles = describe_reference_frame(model, ref, keep_texts=True)
    except ValueError as exc:
        raise ReportInputError(f"{reference}: {exc}") from None
    lacking = {c.name for c in model.text_columns if c.name not in cur.columns}
    records = cur[[c for c in record_columns(model) if c in cur.columns]].to_dict("records")
    absent = [d.name for c in model.text_columns if c.name in lacking for d in c.descriptors()]
    return ref, model_frame(model, records, profiles, keep_texts=True).drop(columns=absent)


def evaluate_inputs(inputs: Inputs, strict: bool, step: Callable[[str], None] = lambda _: None) -> DriftResult:
    """Profile the reference and evaluate the current data.

    `strict` (a config names the columns): a monitored column without one usable reference value is
    an error, the rule `check-config` applies (monitor.drift.unusable_columns).
    """
    from monitor.drift import build_profile, evaluate, unusable_columns

    step(DRIFT_STEPS[2])
    try:
        profile = build_profile(inputs.reference, inputs.specs, inputs.settings)
    except ValueError as exc:
        raise ReportInputError(str(exc)) from None
    if strict and (lacks := unusable_columns(profile)):
        raise ReportInputError("; ".join(f"column {n} of the reference has no {what}: it could never drift" for n, what in lacks.items()))
    step(DRIFT_STEPS[3])
    return evaluate(profile, inputs.current)


def input_notes(inputs: Inputs, reference: Path, current: Path) -> list[str]:
    """Columns that are not compared as the user might expect: absent from CURRENT (with a config),
    or present in only one file (without)."""
    notes = []
    if inputs.absent_in_current:
        notes.append(f"{current} lacks {', '.join(inputs.absent_in_current)}: evaluated as all missing")
    for path, names in ((reference, inputs.only_in_reference), (current, inputs.only_in_current)):
        if names:
            notes.append(f"only {path} has {', '.join(names)}: not compared")
    return notes


@contextmanager
def progress(console: Console, steps: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A transient progress line for `steps` on a terminal; on a pipe or a file nothing at all (no
    control codes in logs). Yields `step(name)`, to call as each step starts."""
    if not console.is_terminal:
        yield lambda _: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(steps[0], total=len(steps))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=steps.index(name))

        yield step
        bar.update(task, completed=len(steps))


def _parsed_datetimes(frame: pd.DataFrame, specs: Sequence[ColumnSpec]) -> pd.DataFrame:
    """Date/time columns held as text as datetimes (UTC), so Evidently sees what a Parquet file holds."""
    from monitor.drift.values import is_time_dtype

    names = [s.name for s in specs if s.datetime and s.name in frame.columns and not is_time_dtype(frame[s.name].dtype)
             and not pd.api.types.is_numeric_dtype(frame[s.name].dtype)]
    if not names:
        return frame
    frame = frame.copy()
    for n in names:
        frame[n] = pd.to_datetime(frame[n], errors="coerce", utc=True, format="ISO8601")
    return frame


def offline_report(
    config: Config | None,
    model: str | None,
    reference: Path,
    current: Path,
    step: Callable[[str], None] = lambda _: None,
    evidently: bool = True,
    note: Callable[[str], None] = lambda _: None,
) -> str:
    """The report's HTML; `step(name)` is called as each of `STEPS` starts (for a progress bar).

    Without a config every column of both files is compared, as `driftwatch drift` does; `note(text)`
    hears what the user should know about the inputs (`input_notes`).
    """
    inputs = load_inputs(reference, current, config, model, step)
    for text in input_notes(inputs, reference, current):
        note(text)
    result = evaluate_inputs(inputs, strict=config is not None, step=step)
    ref, cur, settings = _parsed_datetimes(inputs.reference, inputs.specs), _parsed_datetimes(inputs.current, inputs.specs), inputs.settings
    model = inputs.model or current.stem
    now = time.time()
    ev = Evaluation(model, 1, now, now, 0, 0, len(cur), now, result.to_dict())
    counts = text_examples(config.named(model)) if config is not None else {}
    view = with_examples(with_distributions(report_view(ev, [ev]), ref, cur), ref, cur, counts)
    step(STEPS[4])
    section = None
    if evidently:
        try:
            outcome = run_evidently(ref, cur, plans_from_result(ev.result), settings.dataset_drift_share)
            section = EvidentlySection(scores=outcome.scores, inline_html=outcome.html)
        except Exception as exc:  # e.g. a column empty in the window: our report stands, as on the server
            section = EvidentlySection(scores={}, error=f"{type(exc).__name__}: {exc}")
    step(STEPS[5])
    return render_report(view, evidently=section, subtitle=f"reference {reference.name} vs current {current.name}")
