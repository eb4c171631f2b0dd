"""`driftwatch report` end to end, as a user runs it (a real subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.core.config import load_config
from monitor.drift import detect
from monitor.reports.view import ranked
from tests.reports.memory_source import CONFIG, DATA


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "monitor.app.cli", "report", "--config", str(CONFIG), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_writes_one_self_contained_report_with_the_drifted_features(tmp_path: Path) -> None:
    ref, cur = DATA / "churn_reference.csv", DATA / "churn_current.csv"
    cur_parquet = tmp_path / "current.parquet"
    pd.read_csv(cur).to_parquet(cur_parquet)
    out = tmp_path / "churn.html"
    r = _run("--model", "churn", "--reference", str(ref), "--current", str(cur_parquet), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout.replace("\n", "")
    html = out.read_text(encoding="utf-8")
    result = detect(pd.read_csv(ref), pd.read_csv(cur), load_config(CONFIG), "churn")
    expected = [f.name for f in ranked(result) if f.drifted]
    found = re.search(r'id="drifted-names">([^<]*)<', html)
    assert found is not None and found.group(1).split(", ") == expected
    assert "reference churn_reference.csv vs current current.parquet" in html
    assert '<iframe class="evidently"' in html and "srcdoc=" in html  # Evidently inlined, no second file
    assert html.count('<span class="muted">✓</span>') == 8  # all 8 columns' scores agree with Evidently's
    assert html.count('class="dist" data-feature=') == 8  # a distribution plot per column


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    ref = DATA / "churn_reference.csv"
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("tenure_months,contract\n")
    cases = [
        (("--model", "nope", "--reference", str(ref), "--current", str(ref), "--out", str(tmp_path / "a.html")), "no model 'nope' is configured"),
        (("--model", "churn", "--reference", str(tmp_path / "missing.csv"), "--current", str(ref), "--out", str(tmp_path / "a.html")), "no such file"),
        (("--model", "churn", "--reference", str(ref), "--current", str(bad), "--out", str(tmp_path / "a.html")), "not a readable Parquet file"),
        (("--model", "churn", "--reference", str(empty), "--current", str(ref), "--out", str(tmp_path / "a.html")), "no rows"),
        (("--model", "churn", "--reference", str(DATA / "wine_reference.csv"), "--current", str(ref), "--out", str(tmp_path / "a.html")), "missing column(s) of model 'churn'"),
        (("--model", "churn", "--reference", str(ref), "--current", str(DATA / "wine_reference.csv"), "--out", str(tmp_path / "a.html")), "none of the columns of model 'churn'"),
        (("--model", "churn", "--reference", str(tmp_path), "--current", str(ref), "--out", str(tmp_path / "a.html")), "is a directory"),
        (("--model", "churn", "--reference", str(ref), "--current", str(ref), "--out", str(tmp_path / "a.txt")), "must be an .html file"),
        (("--model", "churn", "--reference", str(ref), "--current", str(ref), "--out", str(tmp_path / "no" / "a.html")), "does not exist"),
    ]
    runner = CliRunner()
    for args, message in cases:  # in-process: the same command, without a Python start-up per case
        r = runner.invoke(app, ["report", "--config", str(CONFIG), *args, "--no-evidently"])
        assert r.exit_code == 2, (args, r.output)
        assert message in " ".join(r.output.split()), (message, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit)
    assert not (tmp_path / "a.html").exists()


def test_a_column_empty_in_current_still_writes_the_report_and_says_why_evidently_could_not(tmp_path: Path) -> None:
    """Evidently refuses an all-empty column; the report must still be written (as the server does), not a traceback."""
    ref = DATA / "churn_reference.csv"
    cur = tmp_path / "current.csv"
    pd.read_csv(DATA / "churn_current.csv").head(300).assign(tenure_months=None).to_csv(cur, index=False)
    out = tmp_path / "churn.html"
    r = CliRunner().invoke(app, ["report", "--config", str(CONFIG), "--model", "churn", "--reference", str(ref),
                                 "--current", str(cur), "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert "Evidently could not build its report for this window" in html
    assert "tenure_months" in html
