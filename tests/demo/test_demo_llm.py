"""`driftwatch demo --llm`, run for real as a user would: streaming chat calls through the sidecar,
English prompts then German ones, text descriptor drift found in the second half only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from monitor.app.demo.llm import histogram_quantile

pytestmark = pytest.mark.slow


def _children_of_workdir(workdir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if proc.pid != os.getpid() and "demo" not in argv and any(str(workdir) in a for a in argv):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    workdir = tmp_path_factory.mktemp("demo-llm")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.app.cli", "demo", "--llm", "--records", "400", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "40"},
    )
    return proc.returncode, proc.stdout + proc.stderr, workdir


def _windows(out: str) -> list[tuple[str, str]]:
    """(prompts, dataset drift) of each row of the windows table."""
    return re.findall(r"│ \d+ +│ \d+–\d+ +│ (English|German|both) +│ \d\.\d\d +│ (yes|no) ", out)


def test_the_demo_exits_0(run: tuple[int, str, Path]) -> None:
    code, out, _ = run
    assert code == 0, out


def test_every_call_succeeds_and_every_stream_arrives_whole(run: tuple[int, str, Path]) -> None:
    _, out, _ = run
    assert "chat calls that failed: 0; streamed answers that differed from the model's: 0" in out


def test_the_english_half_does_not_drift(run: tuple[int, str, Path]) -> None:
    _, out, _ = run
    assert [drifted for prompts, drifted in _windows(out) if prompts == "English"] == ["no", "no"]
    assert "descriptors drifted in the English half: none" in out


def test_the_german_half_drifts(run: tuple[int, str, Path]) -> None:
    _, out, _ = run
    assert [drifted for prompts, drifted in _windows(out) if prompts == "German"] == ["yes", "yes"]


def test_the_summary_names_the_language_descriptors(run: tuple[int, str, Path]) -> None:
    _, out, _ = run
    named = out.split("descriptors drifted in the German half: ", 1)[1].splitlines()[0].split(", ")
    assert {"prompt.non_ascii_share", "prompt.oov_share"} <= set(named)


def test_the_llm_metrics_count_every_call(run: tuple[int, str, Path]) -> None:
    _, out, _ = run
    rows = dict(re.findall(r"│ (time to first token \(streamed\)|input tokens per call) +│ (\d+) ", out))
    assert rows == {"time to first token (streamed)": "400", "input tokens per call": "800"}


def test_nothing_outlives_the_demo(run: tuple[int, str, Path]) -> None:
    _, _, workdir = run
    assert _children_of_workdir(workdir) == []


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    # 10 observations: 4 at or below 1, 10 at or below 2; the median (rank 5) is 1/6 into (1, 2].
    assert histogram_quantile(0.5, [(1.0, 4.0), (2.0, 10.0), (float("inf"), 10.0)]) == pytest.approx(1 + 1 / 6)
