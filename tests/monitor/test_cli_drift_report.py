"""`driftwatch report` works like `drift` (no config needed for two files), and both show progress
on a terminal only: a pipe or a log file gets the result and nothing else."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.app.cli import app

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "data" / "churn_reference.csv"
CUR = ROOT / "examples" / "data" / "churn_current.csv"

runner = CliRunner()


def test_report_needs_no_config_for_two_files(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--reference", str(REF), "--current", str(CUR), "--out", str(out), "--no-evidently"])
    assert res.exit_code == 0, res.output
    assert 'id="drifted-names">churn_probability' in out.read_text(encoding="utf-8")


def test_report_model_is_optional_when_the_config_has_one(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"models:\n  - name: churn\n    features: [{{name: tenure_months, type: numeric}}]\n    reference: {{path: {REF}}}\n")
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--config", str(config), "--reference", str(REF), "--current", str(CUR), "--out", str(out), "--no-evidently"])
    assert res.exit_code == 0, res.output
    assert 'id="drifted-names">tenure_months<' in out.read_text(encoding="utf-8")


def test_report_model_must_be_named_when_the_config_has_several(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--config", str(ROOT / "examples" / "config.yaml"), "--reference", str(REF),
                              "--current", str(CUR), "--out", str(out), "--no-evidently"])
    assert res.exit_code == 2
    assert "the config has 2 models (wine, churn); name one" in res.stderr


def _command(name: str, tmp_path: Path) -> list[str]:
    if name == "drift":
        return [sys.executable, "-m", "monitor.app.cli", "drift", str(REF), str(CUR)]
    return [sys.executable, "-m", "monitor.app.cli", "report", "--reference", str(REF), "--current", str(CUR),
            "--out", str(tmp_path / "r.html"), "--no-evidently"]


def _quiet_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}


@pytest.mark.parametrize("name", ["drift", "report"])
def test_no_progress_on_a_pipe(name: str, tmp_path: Path) -> None:
    res = subprocess.run(_command(name, tmp_path), capture_output=True, text=True, timeout=120, env=_quiet_env())
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""


@pytest.mark.parametrize("name", ["drift", "report"])
def test_progress_on_a_terminal(name: str, tmp_path: Path) -> None:
    """stderr is a pseudo-terminal, as in an interactive shell."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(_command(name, tmp_path), stdout=subprocess.PIPE, stderr=terminal,
                            env={**_quiet_env(), "COLUMNS": "120", "TERM": "xterm"})
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        seen += chunk
    proc.communicate(timeout=60)
    os.close(controller)
    assert proc.returncode == 0
    assert "reading reference" in seen.decode("utf-8", "replace")


def test_report_names_columns_in_only_one_file(tmp_path: Path) -> None:
    """As `drift` does: a column the other file lacks is not compared, and the user is told."""
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text("x,old\n" + "".join(f"{i},{i}\n" for i in range(30)))
    cur.write_text("x\n" + "".join(f"{i}\n" for i in range(30)))
    res = runner.invoke(app, ["report", "--reference", str(ref), "--current", str(cur), "--out", str(tmp_path / "r.html"), "--no-evidently"])
    assert res.exit_code == 0, res.output
    assert f"only {ref} has old: not compared" in res.stderr
