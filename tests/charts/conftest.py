"""Real helm against the chart: rendering, linting and validating every object it produces."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "driftwatch"

Render = Callable[..., list[dict[str, Any]]]


def find_helm() -> str:
    found = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not os.access(found, os.X_OK):
        pytest.fail("helm not found on PATH or in .tools/bin: run `bash scripts/fetch-helm.sh`")
    return found


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("helm")
    env = dict(os.environ)
    env.update({
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    })
    return env


@pytest.fixture(scope="session")
def helm(helm_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = find_helm()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, *args], env=helm_env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def render(helm: Callable[..., subprocess.CompletedProcess[str]], tmp_path_factory: pytest.TempPathFactory) -> Render:
    """`helm template` with values (a dict, written to a file) and extra flags; the parsed objects."""
    folder = tmp_path_factory.mktemp("values")

    def run(values: dict[str, Any] | None = None, *flags: str, release: str = "dw", namespace: str = "driftwatch") -> list[dict[str, Any]]:
        args = ["template", release, str(CHART), "--namespace", namespace, *flags]
        if values:
            path = folder / f"values-{len(list(folder.iterdir()))}.yaml"
            path.write_text(yaml.safe_dump(values))
            args += ["--values", str(path)]
        out = helm(*args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return run
