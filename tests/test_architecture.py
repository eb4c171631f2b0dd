"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject.toml) are kept.

The contracts are also shown to bite: the same check on a copy of the tree with one wrong import
added, inside a function where a lazy import would hide it from a reader, fails and names it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("monitor", "retrain", "alerts", "dashboards")
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [LINT_IMPORTS, "--no-cache", *(arg for c in contracts for arg in ("--contract", c))]
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept() -> None:
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("monitor/runtime/ingest.py", "from retrain.policy import WindowEvaluation", "layers"),
        ("monitor/core/config.py", "from monitor.drift import detect", "layers"),
        ("monitor/drift/engine.py", "from monitor.app.cli import app", "layers"),
        ("monitor/reports/view.py", "import retrain.controller", "peers"),
        ("monitor/sidecar/client.py", "import pandas", "sidecar"),
        ("dashboards/queries.py", "from monitor.runtime import Monitor", "generators"),
    ],
)
def test_a_wrong_import_inside_a_function_breaks_its_contract(tree_copy: Path, module: str, statement: str, contract: str) -> None:
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _wrong_import() -> None:\n    {statement}  # noqa\n")
    try:
        res = lint_imports(tree_copy, contract)
    finally:
        path.write_text(original)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BROKEN" in res.stdout
