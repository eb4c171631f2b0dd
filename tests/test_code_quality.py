"""The tree stays lint- and type-clean: `ruff check .` and `mypy monitor dashboards alerts retrain`
from the repo root (their config is in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_finds_nothing() -> None:
    res = subprocess.run([sys.executable, "-m", "mypy", "monitor", "dashboards", "alerts", "retrain"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_tracked_file_holds_a_merge_conflict_marker() -> None:
    found = subprocess.run(["git", "grep", "-n", "-E", "^(<<<<<<<|>>>>>>>) "], cwd=ROOT, capture_output=True, text=True)
    assert found.stdout == ""


def test_test_modules_have_unique_names() -> None:
    """The test directories are not packages, so pytest imports each test module by its file name:
    two `test_x.py` in different directories stop the whole run at collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
