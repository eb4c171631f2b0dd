"""The README's two commands: `scripts/setup.sh` makes and fills the project's virtual environment.

setup.sh is run for real, on a small stand-in project in a directory whose path is longer than a
kernel's `#!` line (127 bytes), so the console scripts it installs must still start; the whole
driftwatch install is exercised by CI itself, which reaches the suite only through it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup.sh"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "standin"
version = "{version}"
requires-python = ">=3.11,<3.12"

[project.scripts]
standin = "standin:main"
"""


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block, "the Quick start section has no bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_the_readme_quick_start_is_two_commands() -> None:
    assert len(quick_start_commands()) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_every_script_the_quick_start_names_exists(index: int) -> None:
    scripts = re.findall(r"scripts/[\w.-]+", quick_start_commands()[index])
    assert scripts and all((REPO / s).is_file() for s in scripts)


def test_the_quick_start_runs_the_demo_from_the_virtual_environment() -> None:
    assert ".venv/bin/driftwatch demo" in quick_start_commands()[0]


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-module project at a path longer than a `#!` line, with setup.sh copied in."""
    root = tmp_path_factory.mktemp("setup") / ("a-checkout-at-a-long-path-" * 6)
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, root / "scripts" / "setup.sh")
    (root / "pyproject.toml").write_text(PYPROJECT.format(version="1.0"))
    (root / "standin.py").write_text("def main() -> None:\n    print('standin runs')\n")
    return root


def run_setup(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def first_run(standin: Path) -> subprocess.CompletedProcess[str]:
    return run_setup(standin)


def test_setup_succeeds(first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stderr


def test_setup_installs_a_console_script_that_starts_at_a_long_path(standin: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    script = standin / ".venv" / "bin" / "standin"
    assert len(str(script)) > 127
    res = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert res.stdout == "standin runs\n", res.stderr


def test_a_second_setup_installs_nothing(standin: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    again = run_setup(standin)
    assert (again.returncode, again.stderr) == (0, "")


def test_a_changed_pyproject_is_installed_again(standin: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    (standin / "pyproject.toml").write_text(PYPROJECT.format(version="2.0"))
    res = run_setup(standin)
    assert "installing" in res.stderr
    version = subprocess.run([str(standin / ".venv" / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('standin'))"],
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == "2.0"
