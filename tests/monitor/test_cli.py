"""CLI commands with user text and hostile arguments: printed as given, clear errors, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.app.cli import app

runner = CliRunner()


def test_column_and_file_names_are_printed_as_given_not_as_markup(tmp_path: Path) -> None:
    # `[/]` once crashed `drift` (rich MarkupError) and `[red]amount` lost its brackets.
    frame = pd.DataFrame({"[/]": [1.0, 2.0, 3.0] * 20, "[red]amount": [4.0, 5.0, 6.0] * 20})
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur[bold].csv"
    frame.to_csv(ref, index=False)
    frame.to_csv(cur, index=False)
    res = runner.invoke(app, ["drift", str(ref), str(cur)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "[/]" in res.output and "[red]amount" in res.output and "cur[bold].csv" in res.output


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_demo_workdir_that_cannot_be_a_directory_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    workdir = blocker if kind == "a file" else blocker / "sub"
    res = runner.invoke(app, ["demo", "--workdir", str(workdir)])
    assert res.exit_code == 2 and "--workdir" in res.output and "Traceback" not in res.output
