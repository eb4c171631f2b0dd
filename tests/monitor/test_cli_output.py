"""`driftwatch` output off a terminal is never wrapped, and the CLI follows the usual conventions.

Every run here writes to a pipe, as in CI, `| grep` or `> file`: a path, a note, an error or a
table cell must come out on one line whatever `COLUMNS` says.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from monitor.app.cli import app

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "data" / "churn_reference.csv"
CUR = ROOT / "examples" / "data" / "churn_current.csv"
CONFIG = ROOT / "examples" / "config.yaml"
LONG_COLUMN = "monthly_charges_in_the_customers_billing_currency_after_discounts_and_before_taxes"
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def driftwatch(*args: str, columns: int) -> subprocess.CompletedProcess[str]:
    """Run the installed `driftwatch` entry point with stdout and stderr on pipes."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("driftwatch")), *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": str(columns)},
    )


@pytest.fixture
def long_dir(tmp_path: Path) -> Path:
    """A directory whose path is far longer than any terminal is wide."""
    path = tmp_path / ("a_rather_long_directory_name_" * 6) / "and_then_some_more"
    path.mkdir(parents=True)
    assert len(str(path)) > 200
    return path


def lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    return (res.stdout + res.stderr).splitlines()


@pytest.mark.parametrize("columns", [40, 300])
def test_note_naming_a_long_path_is_one_line(long_dir: Path, columns: int) -> None:
    cur = long_dir / "cur.csv"
    pd.read_csv(CUR).drop(columns=["senior"]).to_csv(cur, index=False)
    res = driftwatch("drift", str(REF), str(cur), "--config", str(CONFIG), "--model", "churn", "--json", columns=columns)
    assert res.returncode == 0, res.stderr
    assert f"note: {cur} lacks senior: evaluated as all missing" in res.stderr.splitlines()


@pytest.mark.parametrize("columns", [40, 300])
def test_error_naming_a_long_path_is_one_line(long_dir: Path, columns: int) -> None:
    missing = long_dir / "no_such_file.csv"
    res = driftwatch("drift", str(missing), str(missing), columns=columns)
    assert res.returncode == 2
    assert any(str(missing) in line for line in res.stderr.splitlines()), res.stderr


@pytest.mark.parametrize("columns", [40, 300])
def test_drift_table_cells_are_not_folded(tmp_path: Path, columns: int) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({LONG_COLUMN: rng.normal(size=300), "region": ["north", "south"] * 150}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({LONG_COLUMN: rng.normal(3, size=300), "region": ["north", "south"] * 150}).to_csv(tmp_path / "cur.csv", index=False)
    res = driftwatch("drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), columns=columns)
    assert res.returncode == 0, res.stderr
    (row,) = [line for line in lines(res) if LONG_COLUMN in line]
    assert row.split()[-1] == "yes"  # the whole row, verdict included, is on that one line


@pytest.mark.parametrize("columns", [40, 300])
def test_calibrate_column_names_are_not_folded(tmp_path: Path, columns: int) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame({LONG_COLUMN: rng.normal(size=2000)}).to_csv(tmp_path / "ref.csv", index=False)
    model = {
        "name": "toy",
        "features": [{"name": LONG_COLUMN, "type": "numeric"}],
        "reference": {"path": "ref.csv"},
        "window": {"records": 400, "step": 200},
        "false_alarm_budget": {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"version": 1, "models": [model]}))
    res = driftwatch("calibrate", "--config", str(tmp_path / "config.yaml"), columns=columns)
    assert res.returncode == 0, res.stderr
    (row,) = [line for line in lines(res) if LONG_COLUMN in line]
    assert row.split()[-1] == "std"  # ends with the detectable shift: the row was not split


def test_calibrate_names_the_numeric_cell_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    pd.DataFrame({"x": rng.normal(size=2000)}).to_csv(tmp_path / "ref.csv", index=False)
    model = {
        "name": "toy",
        "features": [{"name": "x", "type": "numeric"}],
        "reference": {"path": "ref.csv"},
        "window": {"records": 400, "step": 200},
        "false_alarm_budget": {"alarms": 1, "period": "7d", "resamples": 200, "expected_records_per_second": 5},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"version": 1, "models": [model]}))
    res = driftwatch("calibrate", "--config", str(tmp_path / "config.yaml"), columns=200)
    (row,) = [line for line in lines(res) if line.split()[:1] == ["x"]]
    assert "KS D + ranks" in row


def test_on_a_terminal_output_still_fits_the_terminal(long_dir: Path) -> None:
    """The other side of the rule: on a 60-column terminal, tables and verdicts fit 60 columns."""
    cur = long_dir / "cur.csv"
    pd.read_csv(CUR).drop(columns=["senior"]).to_csv(cur, index=False)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("driftwatch")), "drift", str(REF), str(cur), "--config", str(CONFIG), "--model", "churn"],
            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env={**env, "TERM": "xterm"}, timeout=120,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    assert proc.returncode == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    # Notes are soft-wrapped: the terminal folds them, and copying one gives one line.
    assert [line for line in text.splitlines() if len(line) > 60 and not line.startswith("note: ")] == []


def test_version_prints_the_installed_version() -> None:
    res = driftwatch("--version", columns=80)
    assert (res.returncode, res.stdout) == (0, f"driftwatch {importlib.metadata.version('driftwatch')}\n")


def help_text(*args: str, columns: int = 300) -> str:
    """Help as printed to a pipe, by default 300 columns wide (wide enough that no panel needs to wrap)."""
    res = CliRunner().invoke(app, [*args], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)], ids=lambda c: " ".join(c) or "driftwatch")
def test_short_and_long_help_options_print_the_same_help(command: list[str]) -> None:
    assert help_text(*command, "-h") == help_text(*command, "--help")


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)], ids=lambda c: " ".join(c) or "driftwatch")
def test_flags_show_no_value_placeholder(command: list[str]) -> None:
    text = help_text(*command, "--help")
    assert "<bool>" not in text
    assert "BOOLEAN" not in text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_sentences_are_not_broken_across_lines(command: str) -> None:
    """Each paragraph of a command's description and each option's help is on one line."""
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    expected = [" ".join(p.split()) for p in (click_command.help or "").split("\n\n")]
    expected += [" ".join(p.help.split()) for p in click_command.params if getattr(p, "help", None)]
    printed = [" ".join(line.strip(" │").split()) for line in help_text(command, "--help").splitlines()]
    assert [sentence for sentence in expected if not any(sentence in line for line in printed)] == []


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)], ids=lambda c: " ".join(c) or "driftwatch")
def test_help_at_80_columns_is_wrapped_never_cut_short(command: list[str]) -> None:
    """A word too long for its cell would be cropped to `…` (sidecar's spool directory once was)."""
    assert "…" not in help_text(*command, "--help", columns=80)
