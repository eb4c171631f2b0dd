"""`driftwatch alerts` as a user runs it: a real process, files on disk, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config.yaml"
GOLDEN = Path(__file__).parent / "golden" / "example"


def driftwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.app.cli", *args], capture_output=True, text=True, timeout=120)


def test_writes_rules_tests_and_prometheus_rule(tmp_path: Path) -> None:
    res = driftwatch("alerts", "--config", str(EXAMPLE), "--out", str(tmp_path), "--crd",
                     "--label", "release=kube-prometheus-stack")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alertmanager-inhibit.yaml", "prometheusrule.yaml", "rules.test.yaml", "rules.yaml"]
    for name in ("rules.yaml", "rules.test.yaml", "prometheusrule.yaml"):
        assert (tmp_path / name).read_text() == (GOLDEN / name).read_text(), name


def test_crd_flags_and_default_without_crd(tmp_path: Path) -> None:
    res = driftwatch("alerts", "--config", str(EXAMPLE), "--out", str(tmp_path / "a"), "--crd", "--name", "ml-drift",
                     "--namespace", "obs", "--label", "team=ml", "--label", "release=prom")
    assert res.returncode == 0, res.stderr
    meta = yaml.safe_load((tmp_path / "a" / "prometheusrule.yaml").read_text())["metadata"]
    assert meta["name"] == "ml-drift"
    assert meta["namespace"] == "obs"
    assert meta["labels"]["team"] == "ml"
    assert meta["labels"]["release"] == "prom"
    res = driftwatch("alerts", "--config", str(EXAMPLE), "--out", str(tmp_path / "b"))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["alertmanager-inhibit.yaml", "rules.test.yaml", "rules.yaml"]


def test_user_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("version: 1\nmodels: []\n")
    cases = [
        (["--config", str(bad_config), "--out", str(tmp_path)], "models"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--crd", "--label", "novalue"], "KEY=VALUE"),
        (["--config", str(EXAMPLE), "--out", str(tmp_path), "--crd", "--name", "UPPER"], "invalid PrometheusRule name"),
        (["--config", str(EXAMPLE), "--out", str(bad_config)], "cannot write"),
    ]
    for args, message in cases:
        res = driftwatch("alerts", *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert message in res.stderr
        assert "Traceback" not in res.stderr
