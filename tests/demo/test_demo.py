"""`driftwatch demo`, the README's first command, run for real as a user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow


def _children_of_workdir(workdir: Path) -> list[psutil.Process]:
    """Processes whose command line mentions the demo's workdir (the model server, monitor, sidecar)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if proc.pid != os.getpid() and "demo" not in argv and any(str(workdir) in a for a in argv):
            found.append(proc)
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `driftwatch demo` in tmp_path; whatever the test does, nothing it started outlives it."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.app.cli", "demo", "--workdir", str(tmp_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "40"},  # a pipe: nothing may be wrapped at 40 columns
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the demo stops its children on Ctrl-C
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for leftover in _children_of_workdir(tmp_path):
        leftover.kill()


def test_demo_detects_drift_retrains_and_stops_everything(
    tmp_path: Path, demo: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = demo("--records", "600")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "inference errors seen by the client: 0" in out
    assert "dataset drift first detected in window" in out
    # The drifted phase starts at record 601: no window made only of unchanged records may flag drift.
    first = out.split("dataset drift first detected in window", 1)[1]
    first_record = int(first.split("(records ", 1)[1].split("–", 1)[0])
    assert first_record + 400 > 600
    for shifted in ("alcohol", "flavanoids", "color_intensity", "proline"):
        assert shifted in out
    assert "DriftwatchDatasetDrift (critical)" in out
    assert "retraining run wine-retrain-" in out and ": succeeded, exit status 0" in out
    log = next((tmp_path / "retrain-logs").glob("*.log")).read_text()
    assert "retraining wine on drifted features:" in log
    # The loop closes: the retrained version serves every request after the switch, the reference set
    # for it judges its own track from its first record, and those windows are quiet.
    assert "model version 2 serves now (requests answered: 100 by version 2)" in out
    assert re.search(r"its own reference, reference #1 \(file, [^)]+\) \(2000 rows\), judges its windows from its first record", out), out
    assert "windows after the switch are quiet: 2 window(s) judged against reference #1" in out
    # The retraining log's tail is printed whole, one line per log line, however long.
    printed = out.splitlines()
    assert [line for line in log.splitlines() if f"  │ {line}" not in printed] == []
    # Each window's drifted-input count is the drift share beside it; outputs are named apart.
    table = out.split("inference errors seen by the client", 1)[0]
    rows = re.findall(r"│ (\d\.\d\d) +│ yes +│ (\d+) of (\d+): .*\(\+ outputs? ([\w, ]+)\)", table)
    assert rows, table
    assert [share for share, n, of, _ in rows if f"{int(n) / int(of):.2f}" != share] == []
    # The alert lines say what the generated rules would do: outputs count as drifted columns too.
    _, n, _, outputs = rows[-1]
    n_out = len(outputs.split(", "))
    assert (
        f"DriftwatchFeatureDrift (warning) would fire after 30m for {int(n) + n_out} column(s) "
        f"({n} input features, {n_out} output{'s' * (n_out > 1)})"
    ) in out
    # The flagged columns say which way their number points: the demo's default tests are all p-values,
    # flagged only past the effect gate too.
    flagged = out.split("columns flagged in the latest window", 1)[1].split("alert ", 1)[0]
    tests = [line for line in flagged.splitlines() if " wasserstein_test " in line or " chisquare_test " in line]
    assert tests, flagged
    assert [line for line in tests if "p-value ↓ (lower = drift)" not in line or "effect ≥" not in line] == []
    # The monitor is gone once the demo returns, so it prints no links that would be dead by then.
    assert "/reports/wine/" not in out and "driftwatch demo --keep-running" in out
    assert _children_of_workdir(tmp_path) == []


def test_keep_running_stops_everything_on_ctrl_c(tmp_path: Path, demo: Callable[..., subprocess.Popen[str]]) -> None:
    proc = demo("--records", "400", "--keep-running")
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "still running" in line or time.monotonic() > deadline:
            break
    assert any("still running" in line for line in seen), "".join(seen)
    names = {" ".join(p.cmdline()) for p in _children_of_workdir(tmp_path)}
    assert any("model_server" in n for n in names) and any(" serve " in n for n in names), names
    assert any(" sidecar " in n for n in names), names
    # While it runs, the links it printed work.
    (link,) = re.findall(r"report of the latest window: (\S+)", "".join(seen))
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert _children_of_workdir(tmp_path) == []


def test_ctrl_c_while_traffic_flows_exits_130_and_stops_everything(
    tmp_path: Path, demo: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = demo("--records", "400")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed once the model server, monitor and sidecar are up
    assert first.startswith("driftwatch demo: model "), first
    assert len(_children_of_workdir(tmp_path)) >= 3
    time.sleep(1.0)  # into the traffic phase, which starts right after that line
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "interrupted; everything the demo started has been stopped." in rest
    assert _children_of_workdir(tmp_path) == []
