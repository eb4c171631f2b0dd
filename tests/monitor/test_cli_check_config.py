"""`driftwatch check-config`: a clear verdict and exit code, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from monitor.app.cli import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "config.yaml"
runner = CliRunner()


def test_valid_config_passes() -> None:
    res = runner.invoke(app, ["check-config", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    assert "2 model(s)" in res.output


def test_invalid_config_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "version: 1\nmodels:\n  - name: m\n    featurs: []\n    features: [{name: x, type: numerc}]\n"
        "    reference: {path: ref.csv}\n"
    )
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 2
    assert "models[0:m].featurs: unknown key" in res.output
    assert "models[0:m].features[0:x].type" in res.output
    assert "Traceback" not in res.output


def test_missing_reference_file_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels:\n  - name: m\n    features: [{name: x, type: numeric}]\n    reference: {path: ref.csv}\n")
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 2
    assert "models[0:m].reference.path: file not found" in res.output


def test_user_text_in_errors_is_not_taken_for_markup(tmp_path: Path) -> None:
    """Field paths like `models[0:m]` and user input like `[bold]` must reach the user verbatim."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels:\n  - name: churn\n    features: [{name: x, type: numeric}]\n    reference: {path: '[red]ref.csv'}\n")
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 2
    assert "[red]ref.csv" in res.output


def test_a_reference_the_monitor_could_not_use_is_reported(tmp_path: Path) -> None:
    """An unreadable reference, or one without a configured column, would leave `serve` never ready."""
    (tmp_path / "short.csv").write_text("x\n1\n2\n")
    (tmp_path / "binary.parquet").write_bytes(b"\x00not parquet")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "version: 1\nmodels:\n"
        "  - {name: a, features: [{name: x, type: numeric}, {name: y, type: numeric}], reference: {path: short.csv}}\n"
        "  - {name: b, features: [{name: x, type: numeric}], reference: {path: binary.parquet}}\n"
    )
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "models[0:a].reference.path: " in out and "has no column(s) y" in out
    assert "models[1:b].reference.path: cannot read" in out
    assert "Traceback" not in res.output


def test_deeply_nested_yaml_is_a_clear_error(tmp_path: Path) -> None:
    # A process of its own: test runners raise the recursion limit, which the parser's depth depends on.
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels: " + "[" * 3000 + "]" * 3000 + "\n")
    res = subprocess.run([sys.executable, "-m", "monitor.app.cli", "check-config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "nested too deeply" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_a_reference_column_without_usable_values_is_reported(tmp_path: Path) -> None:
    """Such a column can never drift: every window would quietly say "no drift"."""
    (tmp_path / "ref.csv").write_text("x,y,z\nabc,,1\ndef,,2\nghi,,3\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "version: 1\nmodels:\n  - name: m\n    features: [{name: x, type: numeric}, {name: y, type: categorical},"
        " {name: z, type: numeric}]\n    reference: {path: ref.csv}\n"
    )
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 2, res.output
    assert "column x of" in res.output and "no finite number" in res.output
    assert "column y of" in res.output and "no non-missing value" in res.output
    assert "column z" not in res.output


def test_json_output_of_a_valid_config() -> None:
    res = runner.invoke(app, ["check-config", str(EXAMPLE), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0
    assert doc["valid"] is True
    assert doc["errors"] == []


def test_json_output_lists_schema_errors_with_field_paths(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels:\n  - name: m\n    features: [{name: x, type: numerc}]\n    reference: {path: ref.csv}\n")
    res = runner.invoke(app, ["check-config", str(cfg), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 2
    assert doc["valid"] is False
    assert [e["path"] for e in doc["errors"]] == ["models[0:m].features[0:x].type"]


def test_json_output_names_the_column_that_could_never_drift(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("x,y\nabc,1\ndef,2\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels:\n  - name: m\n    features: [{name: y, type: numeric}, {name: x, type: numeric}]\n    reference: {path: ref.csv}\n")
    res = runner.invoke(app, ["check-config", str(cfg), "--json"])
    assert json.loads(res.stdout)["errors"] == [
        {"path": "models[0:m].features[1:x]", "message": f"column x of {tmp_path / 'ref.csv'} has no finite number: it could never drift"}
    ]


def test_a_datetime_column_is_checked_as_date_times(tmp_path: Path) -> None:
    """`type: datetime` accepts ISO 8601 text; a column with none is reported like any other."""
    (tmp_path / "ref.csv").write_text("t,u\n2024-01-01T10:00:00,soon\n2024-01-02T11:30:00,later\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nmodels:\n  - name: m\n    features: [{name: t, type: datetime}, {name: u, type: datetime}]\n    reference: {path: ref.csv}\n")
    res = runner.invoke(app, ["check-config", str(cfg), "--json"])
    assert json.loads(res.stdout)["errors"] == [
        {"path": "models[0:m].features[1:u]", "message": f"column u of {tmp_path / 'ref.csv'} has no date/time: it could never drift"}
    ]
