"""Virtual environments of their own for cross-check libraries that must not enter ours (NannyML's
pins conflict with ours; `tokenizers` brings huggingface_hub): created once under
`$XDG_CACHE_HOME/driftwatch-tests/<name>` (or ~/.cache/...) with `python -m venv` and pip. A
`.complete` marker written last makes an interrupted install start over instead of being reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def env_dir(name: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftwatch-tests" / name


def isolated_python(name: str, requirements: tuple[str, ...]) -> Path:
    """The venv's python, creating the venv if it is absent or incomplete; RuntimeError with pip's
    output when the install fails (no network, no wheel for this Python, …)."""
    root = env_dir(name)
    python = root / "bin" / "python"
    if (root / ".complete").exists() and python.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(root)],
             [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"could not build the {name} environment in {root}: {' '.join(step)} exited "
                               f"{done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    (root / ".complete").write_text(" ".join(requirements) + "\n")
    return python
