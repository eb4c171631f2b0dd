"""Golden-file comparison shared by every test of a generated artifact.

Generated files (dashboards, rules, Job manifests, reports, CLI JSON) must be byte-for-byte
deterministic; a change is accepted deliberately with `DRIFTWATCH_UPDATE_GOLDEN=1`.
"""

from __future__ import annotations

import os
from pathlib import Path


def assert_golden(path: Path, text: str) -> None:
    """Compare `text` with the golden file at `path`; DRIFTWATCH_UPDATE_GOLDEN=1 rewrites it."""
    if os.environ.get("DRIFTWATCH_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with DRIFTWATCH_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from its golden file (run with DRIFTWATCH_UPDATE_GOLDEN=1 if the change is intended)"
    )
