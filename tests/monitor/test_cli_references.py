"""`driftwatch reference set|show` as a real process against a real monitor (uvicorn in a thread)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_helpers import serve_in_thread, shifted_reference
from test_references import WRITE, config_at

from monitor.app.api import create_app


@pytest.fixture()
def monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    with serve_in_thread(create_app(config_at(tmp_path))) as url:
        yield url


def driftwatch(*args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
    env_args = ["--token-env", "DW_REF_TOKEN"] if token else []
    return subprocess.run([sys.executable, "-m", "monitor.app.cli", "reference", *args, *env_args],
                          capture_output=True, text=True, timeout=120)


def reference_file(tmp_path: Path, shift: float = 3.0, drop: tuple[str, ...] = ()) -> Path:
    path = tmp_path / f"ref-{shift}-{len(drop)}.csv"
    shifted_reference(shift).drop(columns=list(drop)).to_csv(path, index=False)
    return path


def test_set_makes_the_file_current(monitor: str, tmp_path: Path) -> None:
    done = driftwatch("set", "toy", str(reference_file(tmp_path)), "--monitor", monitor)
    assert (done.returncode, "reference #1 (file," in done.stdout) == (0, True), done.stderr


def test_setting_the_same_file_again_says_nothing_changed(monitor: str, tmp_path: Path) -> None:
    path = reference_file(tmp_path)
    driftwatch("set", "toy", str(path), "--monitor", monitor)
    assert "already current" in driftwatch("set", "toy", str(path), "--monitor", monitor).stdout


def test_show_names_the_current_reference(monitor: str, tmp_path: Path) -> None:
    driftwatch("set", "toy", str(reference_file(tmp_path)), "--monitor", monitor)
    assert "judged against reference #1 (file," in driftwatch("show", "toy", "--monitor", monitor).stdout


def test_show_before_any_upload_names_the_configured_reference(monitor: str) -> None:
    assert "judged against the configured reference" in driftwatch("show", "toy", "--monitor", monitor).stdout


def test_a_refused_reference_exits_1_with_the_columns_reasons(monitor: str, tmp_path: Path) -> None:
    done = driftwatch("set", "toy", str(reference_file(tmp_path, drop=("f1",))), "--monitor", monitor)
    assert (done.returncode, "'column': 'f1', 'reason': 'missing'" in done.stderr) == (1, True), done.stderr


def test_without_a_token_it_exits_1_unauthorized(monitor: str, tmp_path: Path) -> None:
    done = driftwatch("set", "toy", str(reference_file(tmp_path)), "--monitor", monitor, token=False)
    assert (done.returncode, "(401)" in done.stderr) == (1, True), done.stderr


def test_a_file_and_mlflow_together_are_a_usage_error(tmp_path: Path) -> None:
    done = driftwatch("set", "toy", str(reference_file(tmp_path)), "--mlflow", "wine:1", token=False)
    assert (done.returncode, "exactly one of FILE and --mlflow" in done.stderr) == (2, True), done.stderr


def test_a_malformed_mlflow_version_is_a_usage_error() -> None:
    done = driftwatch("set", "toy", "--mlflow", "wine", token=False)
    assert (done.returncode, "expected NAME:VERSION" in done.stderr) == (2, True), done.stderr
