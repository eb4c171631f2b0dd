"""`driftwatch serve` with the example config keeps what only reports, fleet mode and Kubernetes need
out of the idle process (docs/architecture.md, "The idle process").

A real `driftwatch serve` on 127.0.0.1, started as the command starts it, lists its `sys.modules`
once it is ready (every reference profiled) and its evaluation loop has turned a few times with no
traffic; then it stops itself with SIGTERM. Twice: on a fresh store, and restarted over a store
that holds an evaluated wine window and its performance (restored at start-up). One fact per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.benchmark_modules import load_benchmark
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
IDLE_SECONDS = 3.0
"""After /readyz: the example's evaluation loop (set to 1s here) turns about three times."""

# Runs as `python -c`: the monitor in the main thread exactly as `driftwatch serve` runs it; a thread
# waits for /readyz, lets it idle, writes the module list and sends SIGTERM (a graceful stop).
_SCRIPT = """
import json, os, signal, sys, threading, time, urllib.request
config, port, out, idle = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def watch():
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    time.sleep(idle)
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
sys.argv = ["driftwatch", "serve", "--config", config, "--host", "127.0.0.1", "--port", port]
from monitor.app.cli import main
main()
"""

ONLY_ON_DEMAND = ["pandas", "scipy", "pyarrow", "evidently", "psycopg", "confluent_kafka", "kubernetes", "matplotlib", "plotly"]


def _idle_listing(config: Path, env: dict[str, str]) -> set[str]:
    out = config.parent / "modules.json"
    out.unlink(missing_ok=True)
    res = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(config), str(free_port()), str(out), str(IDLE_SECONDS)],
        capture_output=True, text=True, timeout=180, env=env, cwd=config.parent,
    )
    assert res.returncode == 0 and out.exists(), res.stdout + res.stderr
    return set(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def listings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The idle monitor's modules on a fresh store, and after a restart over an evaluated window."""
    tmp = tmp_path_factory.mktemp("idle")
    shutil.copytree(EXAMPLES / "data", tmp / "data")
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["server"]["evaluation_interval"] = "1s"
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = str(tmp / "no-kubeconfig")  # outside a cluster, as on a laptop or in CI
    out = {"fresh": _idle_listing(path, env)}
    bench = load_benchmark("idle_rss")  # its wine traffic, until the first window is evaluated
    port = free_port()
    proc = bench.serve(path, port, tmp / "monitor.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            bench.wait_ready(client, proc)
            bench.first_evaluation(client)
    finally:
        proc.terminate()
        proc.wait(30)
    out["restarted"] = _idle_listing(path, env)
    return out


@pytest.mark.parametrize("store", ["fresh", "restarted"])
def test_the_listing_is_of_a_serving_monitor(listings: dict[str, set[str]], store: str) -> None:
    assert "monitor.runtime.monitor" in listings[store]


@pytest.mark.parametrize("store", ["fresh", "restarted"])
@pytest.mark.parametrize("module", ONLY_ON_DEMAND)
def test_the_idle_monitor_has_not_imported(listings: dict[str, set[str]], store: str, module: str) -> None:
    assert module not in listings[store]
