"""Commands over data files: check-config, drift, report, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

if TYPE_CHECKING:

    from monitor.core.config import Config


from monitor.app.cli.base import app, console, err_console, fail, load_config_or_exit


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="The YAML config to validate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {valid, errors: [{path, message}]} as JSON instead of text.")] = False,
) -> None:
    """Validate a config file; every error is reported with the path of the bad field."""
    import json

    from monitor.core.config import ConfigError, load_config

    try:
        cfg = load_config(config)
        problems = _semantic_problems(cfg) or _reference_problems(cfg)
    except ConfigError as exc:
        cfg, problems = None, exc.errors
    if as_json:
        doc: dict[str, object] = {"valid": not problems, "errors": [{"path": p, "message": m} for p, m in problems]}
        if cfg is not None:
            doc.update(models=len(cfg.models), columns=sum(len(m.columns) for m in cfg.models))
        typer.echo(json.dumps(doc, indent=2))
        if problems:
            raise typer.Exit(2)
        return
    if problems:
        fail(f"{config}: {len(problems)} error(s)\n" + "\n".join(f"  {p}: {m}" for p, m in problems))
    assert cfg is not None
    n_cols = sum(len(m.columns) for m in cfg.models)
    console.print(f"[green]ok[/] {escape(str(config))}: {len(cfg.models)} model(s), {n_cols} monitored column(s)")


def _semantic_problems(cfg: Config) -> list[tuple[str, str]]:
    """A semantic text column without the offline model installed (its reference could not be embedded)."""
    if not any(c.type == "text" and c.options.semantic for m in cfg.models for c in (*m.features, *m.outputs)):
        return []
    from monitor.text.embed import semantic_problems

    return semantic_problems(cfg)


def _reference_problems(cfg: Config) -> list[tuple[str, str]]:
    """(field path, message) for each reference the monitor could not use: it would start but never
    become ready, or a column could never drift (the rule `drift --config` and `report` apply too)."""
    from monitor.drift import build_profile, specs_from_config, unusable_columns
    from monitor.runtime import load_reference

    problems: list[tuple[str, str]] = []
    for i, model in enumerate(cfg.models):
        where, path = f"models[{i}:{model.name}].reference.path", model.reference.path
        if path is None:  # an MLflow model version's artifact: read (and checked) when the monitor starts
            continue
        if not path.exists():
            problems.append((where, f"file not found: {path}"))
            continue
        try:
            reference = load_reference(model, cfg)
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            problems.append((where, f"cannot read {path} ({type(exc).__name__}: {str(exc)[:200]})"))
            continue
        if missing := [c.name for c in model.columns if c.name not in reference.columns]:
            problems.append((where, f"{path} has no column(s) {', '.join(missing)}"))
        specs, settings = specs_from_config(cfg, model)
        present = [s for s in specs if s.name in reference.columns]
        lacks = unusable_columns(build_profile(reference, present, settings))
        # a text column's descriptors are reported at the text column's own path
        fields = [*((f"features[{j}:{c.name}]", d) for j, c in enumerate(model.features) for d in c.descriptors()),
                  *((f"outputs[{j}:{c.name}]", d) for j, c in enumerate(model.outputs) for d in c.descriptors())]
        for field, col in fields:
            if col.name in lacks:
                problems.append((f"models[{i}:{model.name}].{field}", f"column {col.name} of {path} has no {lacks[col.name]}: it could never drift"))
    return problems


# -- commands added by the other modules register below this line ---------------------------------


@app.command("report")
def report(
    reference: Annotated[Path, typer.Option("--reference", help="Reference data, CSV or Parquet.")],
    current: Annotated[Path, typer.Option("--current", help="Current data, CSV or Parquet.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    config: Annotated[Path | None, typer.Option("--config", help="YAML config: columns, types, methods, thresholds (default: every column of both files).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model of the config (optional if it has one).")] = None,
    evidently: Annotated[bool, typer.Option("--evidently/--no-evidently", help="Include Evidently's cross-check.")] = True,
) -> None:
    """Write the HTML drift report of CURRENT vs REFERENCE (offline, one self-contained file).

    Without --config every column of both files is compared, as `driftwatch drift` does. Shows progress on a terminal.
    """
    from monitor.reports.offline import STEPS, ReportInputError, offline_report, progress

    if model is not None and config is None:
        fail("--model needs --config")
    cfg = load_config_or_exit(config) if config is not None else None
    if cfg is not None and model is not None:
        from monitor.core.config import UnknownModel

        try:
            cfg.named(model)
        except UnknownModel as exc:
            fail(f"{config}: {exc.reason}")
    if out.suffix.lower() not in (".html", ".htm"):
        fail(f"--out must be an .html file, got {out}")
    if not out.parent.is_dir():
        fail(f"--out: directory {out.parent} does not exist")
    with progress(err_console, STEPS) as step:
        try:
            html = offline_report(cfg, model, reference, current, step, evidently=evidently, note=_note)
        except ReportInputError as exc:
            fail(str(exc))
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"[green]ok[/] wrote {escape(str(out))} ({len(html) // 1024} KiB)")


def _note(text: str) -> None:
    """A note about the inputs on stderr (stdout stays the result, for pipes)."""
    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


@app.command("drift")
def drift_cmd(
    reference: Annotated[Path, typer.Argument(help="Reference data, CSV or Parquet (by extension).")],
    current: Annotated[Path, typer.Argument(help="Current data, CSV or Parquet (by extension).")],
    config: Annotated[Path | None, typer.Option("--config", help="YAML config: columns, types, methods, thresholds.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model of the config (optional if it has one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON instead of a table.")] = False,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="Exit 1 when dataset drift is found (a CI gate); 0 otherwise.")] = False,
) -> None:
    """Drift of CURRENT against REFERENCE: per-column table (drifted first) and the dataset verdict.

    Without --config every column of both files is a feature, typed by its reference values (ISO 8601 text is a date/time); columns in only one file are named in a note.

    Exits 0 whether or not drift is found, unless --fail-on-drift (then 1 on dataset drift); errors exit 2. Shows progress on a terminal.
    """
    import json

    from rich import box
    from rich.table import Table

    from monitor.reports.offline import (
        DRIFT_STEPS,
        ReportInputError,
        evaluate_inputs,
        input_notes,
        load_inputs,
        progress,
    )

    if model is not None and config is None:
        fail("--model needs --config")
    cfg = load_config_or_exit(config) if config is not None else None
    with progress(err_console, DRIFT_STEPS) as step:
        try:
            inputs = load_inputs(reference, current, cfg, model, step)
            result = evaluate_inputs(inputs, strict=cfg is not None, step=step)
        except ReportInputError as exc:
            fail(str(exc))

    for text in input_notes(inputs, reference, current):
        _note(text)
    code = 1 if fail_on_drift and result.dataset.drifted else 0
    if as_json:
        doc = result.to_dict()
        if cfg is None:
            doc.update(columns_only_in_reference=inputs.only_in_reference, columns_only_in_current=inputs.only_in_current)
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
        raise typer.Exit(code)

    def num(x: float | None) -> str:
        return "—" if x is None or x != x else f"{x:.4g}"

    table = Table(title=f"Drift of {escape(current.name)} against {escape(reference.name)}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    widest = max((len(name) for name in result.features), default=7)  # outputs get " (output)", may fold
    table.add_column("feature", overflow="fold", min_width=min(widest, 24))
    for header in ("type", "method"):
        table.add_column(header, overflow="fold")
    for header in ("score", "p-value", "threshold", "effect"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("drifted", no_wrap=True)
    drifted = result.drifted_features()
    rest = sorted((f for f in result.features.values() if not f.drifted), key=lambda f: f.name)
    for f in (*drifted, *rest):
        p = num(f.p_value) + (f" (adj {num(f.adjusted_p_value)})" if f.adjusted_p_value not in (None, f.p_value) else "")
        name = escape(f.name) + (" (output)" if f.role == "output" else "")
        verdict = "[bold red]yes[/]" if f.drifted else ("[yellow]untested[/]" if f.untested else "no")
        if f.details.get("type_changed"):
            verdict = "[bold red]yes[/] (type changed)"
        floor = f.details.get("min_effect")
        effect = num(f.effect_size) + (f" (≥ {num(floor)})" if isinstance(floor, (int, float)) else "")
        table.add_row(name, f.kind[:3], f.method, num(f.score), p, num(f.threshold), effect, verdict)
    console.print(table)
    ds = result.dataset
    untested = [f for f in result.features.values() if f.untested]
    reasons = "; ".join(f"{escape(f.name)}: {escape(f.untested or '')}" for f in untested)
    if ds.n_features and ds.n_tested == 0:
        console.print(f"Dataset: [yellow]not tested[/] — no column could be tested ({reasons}); "
                      f"{ds.n_reference} reference rows, {ds.n_current} current rows", highlight=False)
    else:
        verdict = "[bold red]DRIFT[/]" if ds.drifted else "[green]no drift[/]"
        console.print(
            f"Dataset: {verdict} — {ds.n_drifted} of {ds.n_features} features drifted ({ds.drift_share:.0%}, "
            f"threshold {ds.threshold:.0%}); {ds.n_reference} reference rows, {ds.n_current} current rows",
            highlight=False,
        )
        if untested:
            console.print(f"[yellow]Not tested[/] — {reasons}", highlight=False)
    if result.prediction is not None:
        pred = result.prediction
        console.print(f"Prediction ({escape(pred.name)}): {'[bold red]drifted[/]' if pred.drifted else 'no drift'}", highlight=False)
    if changed := [f for f in result.features.values() if f.details.get("type_changed")]:
        console.print("[bold red]Type changed[/] — " + "; ".join(
            f"{escape(f.name)}: {f.quality.wrong_type_ratio:.0%} of current values are not {'numbers' if f.kind == 'numeric' else 'categories'}"
            for f in changed), highlight=False)
    raise typer.Exit(code)


@app.command("calibrate")
def calibrate_cmd(
    config: Annotated[Path, typer.Option("--config", help="The YAML config; the model needs `false_alarm_budget`.")],
    model: Annotated[str | None, typer.Option("--model", help="Model of the config (optional if it has one).")] = None,
    within: Annotated[int, typer.Option("--within", min=1, max=100, help="Windows within which a shift must be detected (95%).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calibration table as JSON.")] = False,
) -> None:
    """Per-column thresholds from the model's false-alarm budget, and the smallest shift they catch."""
    import json

    from rich import box
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from monitor.drift import build_profile, specs_from_config
    from monitor.drift.calibration import BudgetSpec, calibrate, calibration_table, plan_from_config, summarize
    from monitor.runtime import load_reference

    cfg = load_config_or_exit(config)
    try:
        specs, settings = specs_from_config(cfg, model)
    except ValueError as exc:
        fail(str(exc))
    model_cfg = cfg.named(model) if model is not None else cfg.models[0]
    budget_cfg = model_cfg.false_alarm_budget
    if budget_cfg is None and any(c.type == "embedding" for c in model_cfg.columns):
        fail(f"model {model_cfg.name!r} has embedding columns: they are decided by their test's level (drift.alpha), "
             "not calibrated, so the model can have no false_alarm_budget (docs/drift-methods.md#embeddings)")
    if budget_cfg is None:
        fail(f"model {model_cfg.name!r} has no false_alarm_budget in {config}; add e.g. `false_alarm_budget: {{alarms: 1, period: 30d}}`")
    try:
        plan = plan_from_config(model_cfg.window, budget_cfg)
        reference = load_reference(model_cfg, cfg)
        profile = build_profile(reference, specs, settings)
    except FileNotFoundError as exc:
        fail(f"reference data not found: {exc.filename or model_cfg.reference.path}")
    except (ValueError, OSError) as exc:
        fail(f"models[{model_cfg.name}]: {exc}")
    budget = BudgetSpec.from_config(budget_cfg, settings)
    n_cols = len(profile.columns)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("resampling the reference", total=n_cols + 1)
        try:
            calibration = calibrate(reference, profile, plan, budget, lambda done, total: bar.update(task, completed=done))
        except ValueError as exc:
            fail(f"models[{model_cfg.name}].false_alarm_budget: {exc}")
        bar.update(task, description=f"simulating shifts (within {within} windows)", completed=0, total=n_cols)
        rows = calibration_table(calibration, profile, within, progress=lambda done, total: bar.update(task, completed=done))
    if as_json:
        typer.echo(json.dumps(summarize(calibration, rows, within), indent=2, allow_nan=False))
        return

    def num(x: float | None, fmt: str = ".3g") -> str:
        return "—" if x is None or x != x else ("∞" if x == float("inf") else format(x, fmt))

    c = calibration.cusum
    table = Table(title=f"Calibrated alarms for {escape(model_cfg.name)}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for header in ("column", "test"):
        table.add_column(header, overflow="fold")
    for header in ("p <", "stat >", "min effect", "false alarms/period", f"shift caught ≤{within} windows"):
        table.add_column(header, justify="right")
    for r in rows:
        stat = "Fisher" if r["single_value"] else {"ks": "KS D", "ks_location_scale": "KS D + ranks"}.get(r["statistic"], "chi²")
        shift = num(r["detectable_shift"], ".2f")
        shift += " std" if r["shift_unit"].startswith("reference std") else " share"
        if r["degenerate"]:
            table.add_row(escape(r["name"]), stat, "—", "—", num(r["min_effect"]), "0", "no usable reference value: not calibrated")
            continue
        limit = f"{r['single_window_statistic']:.0f} differ" if r["single_value"] else num(r["single_window_statistic"])
        table.add_row(escape(r["name"]), stat, num(r["single_window_p_value"]), limit, num(r["min_effect"]),
                      num(r["expected_false_alarms_per_period"]), shift)
    console.print(table)
    b = calibration.budget
    console.print(
        f"Budget: {b.alarms:g} false alert(s) per {format_duration_safe(b.period)} for {n_cols} column(s); window {plan.records} records, "
        f"every {plan.step} (≈{format_duration_safe(plan.interval)}), {calibration.windows_per_period:.0f} windows per period.\n"
        f"CUSUM per column on standardized scores: k = {c.k:.2f}, h = {c.h:.2f}"
        f"{' (h extrapolated beyond the simulated rates)' if c.extrapolated else ''}; drifted = CUSUM ≥ h and effect ≥ min effect "
        f"(normed Wasserstein for numeric, total variation for categorical). See docs/calibration.md.",
        highlight=False,
    )


def format_duration_safe(seconds: float) -> str:
    from monitor.core.units import format_duration

    return format_duration(seconds) if seconds >= 1 else f"{seconds:.3g}s"
