"""`driftwatch dashboards` as a user runs it: a real process, files on disk, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config.yaml"
GOLDEN = Path(__file__).parent / "golden"


def driftwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.app.cli", *args], capture_output=True, text=True, timeout=120)


def test_writes_the_golden_dashboards_and_configmaps(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = driftwatch("dashboards", "--config", str(EXAMPLE), "--out", str(out), "--configmaps")
    assert res.returncode == 0, res.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["configmaps.yaml", "driftwatch-model-churn.json", "driftwatch-model-wine.json",
                       "driftwatch-overview.json"]
    for name in written:
        assert (out / name).read_text() == (GOLDEN / name).read_text(), name
    json.loads((out / "driftwatch-overview.json").read_text())


def test_sidecar_label_and_folder_flags(tmp_path: Path) -> None:
    res = driftwatch("dashboards", "--config", str(EXAMPLE), "--out", str(tmp_path), "--configmaps",
                     "--label-key", "grafana.example.com/dashboard", "--label-value", "on",
                     "--folder-annotation-key", "k8s-sidecar-target-directory", "--folder", "/tmp/dashboards/ml",
                     "--namespace", "grafana")
    assert res.returncode == 0, res.stderr
    docs = list(yaml.safe_load_all((tmp_path / "configmaps.yaml").read_text()))
    assert {d["metadata"]["labels"]["grafana.example.com/dashboard"] for d in docs} == {"on"}
    assert {d["metadata"]["annotations"]["k8s-sidecar-target-directory"] for d in docs} == {"/tmp/dashboards/ml"}
    assert {d["metadata"]["namespace"] for d in docs} == {"grafana"}


def test_without_configmaps_flag_only_json(tmp_path: Path) -> None:
    res = driftwatch("dashboards", "--config", str(EXAMPLE), "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "configmaps.yaml").exists()


def test_user_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cases = [
        (["--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)], "no such file"),
        (["--config", str(EXAMPLE), "--out", str(blocker)], "cannot write"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--configmaps", "--label-key", "no spaces"], "invalid label key"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--configmaps", "--label-key", ""], "invalid label key"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--configmaps", "--label-value", ""], "empty label value"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--configmaps", "--folder", ""], "empty folder"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--folder", " "], "empty folder"),  # even without --configmaps
    ]
    for args, message in cases:
        res = driftwatch("dashboards", *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert message in res.stderr
        assert "Traceback" not in res.stderr
