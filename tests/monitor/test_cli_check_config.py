"""`driftwatch check-config`: a clear verdict and exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app

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
