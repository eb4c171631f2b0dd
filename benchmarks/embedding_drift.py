"""Embedding drift at 100k x 768: driftwatch's detectors beside Evidently's and Alibi Detect's, same data.

    python3 benchmarks/embedding_drift.py                         # the table in docs/drift-methods.md
    python3 benchmarks/embedding_drift.py --sizes 10000x768       # quick run

Data per size (rows x dims, each side): Gaussian rows with a decaying spectrum (variance 1/i on the
i-th of d random orthonormal directions, like sentence embeddings), float32. Three matrices: the
reference, an unchanged window and a window whose dimensions 7, 300 % d and 701 % d move by 0.15 of
their standard deviation (the "few of 768 dimensions" case). Each method reports its verdict on both
windows: `no` on the unchanged one and `yes` on the shifted one is the right answer.

Every (method, size) runs in a fresh subprocess under a timeout and, for the numpy-based ones, an
address-space cap (`--memory-gib`), so a method that cannot run stops with "timeout" or "out of
memory" instead of taking the machine down; peak = resident high-water mark of that process.
driftwatch: `profile` (prepared once, timed alone) then `test` (median of `--repeats`); its on-demand
MMD on a 2,000 + 2,000 subsample with 500 permutations. Evidently 0.7's embedding drift methods are
called as `EmbeddingsDriftMetric` calls them (`evidently.legacy.metrics.data_drift.embedding_drift_methods`,
defaults: `model` = SGD domain classifier's ROC AUC > 0.55, `ratio` = share of dimensions with normed
Wasserstein >= 0.1 above 0.2, `distance` = Euclidean distance of the mean embeddings > 0.2, `mmd` =
MMD^2 > 0.015 on the full (n+m)^2 kernel matrix). Evidently's MMD is not started where its kernel
matrix alone, (n+m)^2 float64, exceeds the cap: the table shows that estimate. Alibi Detect's
MMDDrift (TensorFlow backend, 100 permutations, p < 0.05) runs in a virtual environment of its own
(numpy < 2), built under ~/.cache/driftwatch-tests the first time (~4 min, ~3 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ALIBI_VERSION = "0.13.0"
ALIBI_REQUIREMENTS = (f"alibi-detect[tensorflow]=={ALIBI_VERSION}", "numpy<2")
SHIFT_SD = 0.15
DEFAULT_SIZES = "10000x768,100000x768,1000000x128"


def shifted_dims(d: int) -> list[int]:
    return sorted({7 % d, 300 % d, 701 % d})


def make_data(rows: int, d: int, seed: int, out: Path) -> None:
    """reference.npy, unchanged.npy and shifted.npy in `out` (float32, rows x d each)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    mixing = ((1.0 / np.sqrt(np.arange(1, d + 1)))[:, None] * basis).astype(np.float32)
    sd = np.sqrt((mixing**2).sum(axis=0))
    for name in ("reference", "unchanged", "shifted"):
        x = np.empty((rows, d), dtype=np.float32)
        for start in range(0, rows, 65536):
            stop = min(start + 65536, rows)
            x[start:stop] = rng.standard_normal((stop - start, d), dtype=np.float32) @ mixing
        if name == "shifted":
            dims = shifted_dims(d)
            x[:, dims] += (SHIFT_SD * sd[dims]).astype(np.float32)
        np.save(out / f"{name}.npy", x)
        del x


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- children ------------------------------------------------------------------------------------

def child_driftwatch(data: Path, repeats: int) -> dict[str, Any]:
    from monitor.drift import embedding

    ref, same, moved = (np.load(data / f"{n}.npy") for n in ("reference", "unchanged", "shifted"))
    embedding.test(embedding.profile(ref[:2000]), same[:2000])  # warm-up: imports, thread pool
    t0 = time.perf_counter()
    prof = embedding.profile(ref)
    prep = time.perf_counter() - t0
    times, verdicts = [], {}
    for _ in range(repeats):
        for name, window in (("unchanged", same), ("shifted", moved)):
            t1 = time.perf_counter()
            res = embedding.test(prof, window)
            if name == "unchanged":
                times.append(time.perf_counter() - t1)
            verdicts[name] = (res.drifted, res.p_value)
    return {"prep": prep, "test": statistics.median(times), "runs": repeats, "verdicts": verdicts,
            "load": os.getloadavg()[0], "peak_mib": _peak_mib()}


def child_driftwatch_mmd(data: Path, repeats: int) -> dict[str, Any]:
    from monitor.drift import embedding

    ref, same, moved = (np.load(data / f"{n}.npy") for n in ("reference", "unchanged", "shifted"))
    times, verdicts = [], {}
    for name, window in (("unchanged", same), ("shifted", moved)):
        t1 = time.perf_counter()
        res = embedding.mmd_test(ref, window)
        times.append(time.perf_counter() - t1)
        verdicts[name] = (res.drifted, res.p_value)
    return {"prep": 0.0, "test": statistics.median(times), "runs": 2, "verdicts": verdicts, "peak_mib": _peak_mib()}


def child_evidently(data: Path, method: str) -> dict[str, Any]:
    import pandas as pd
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as edm

    factories: dict[str, Callable[[], Any]] = {"model": edm.model, "ratio": edm.ratio, "distance": edm.distance, "mmd": edm.mmd}
    ref, same, moved = (np.load(data / f"{n}.npy") for n in ("reference", "unchanged", "shifted"))
    columns = [f"e{i}" for i in range(ref.shape[1])]
    verdicts, times = {}, []
    for name, window in (("unchanged", same), ("shifted", moved)):
        reference_df, current_df = pd.DataFrame(ref, columns=columns), pd.DataFrame(window, columns=columns)
        t1 = time.perf_counter()
        score, drifted, _ = factories[method]()(current_df, reference_df)
        times.append(time.perf_counter() - t1)
        verdicts[name] = (bool(drifted), float(score))
    return {"prep": 0.0, "test": statistics.median(times), "runs": 2, "verdicts": verdicts, "peak_mib": _peak_mib()}


ALIBI_RUNNER = r'''
import json, os, sys, time, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
import numpy as np
from alibi_detect.cd import MMDDrift
data = sys.argv[1]
ref, same, moved = (np.load(os.path.join(data, n + ".npy")) for n in ("reference", "unchanged", "shifted"))
t0 = time.perf_counter()
cd = MMDDrift(ref, backend="tensorflow", p_val=0.05, n_permutations=100)
prep = time.perf_counter() - t0
verdicts, times = {}, []
for name, window in (("unchanged", same), ("shifted", moved)):
    t1 = time.perf_counter()
    out = cd.predict(window)["data"]
    times.append(time.perf_counter() - t1)
    verdicts[name] = (bool(out["is_drift"]), float(out["p_val"]))
peak = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({"prep": prep, "test": sorted(times)[len(times) // 2], "runs": 2, "verdicts": verdicts, "peak_mib": peak}))
'''


def alibi_python() -> Path:
    """The Alibi Detect venv's python, built once (same pattern as tests/infra/nannyml_env.py)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "driftwatch-tests" / f"alibi-detect-{ALIBI_VERSION}"
    python = root / "bin" / "python"
    if (root / ".complete").exists() and python.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    for step in ([sys.executable, "-m", "venv", str(root)],
                 [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *ALIBI_REQUIREMENTS]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"could not build Alibi Detect's environment: {' '.join(step)}\n{done.stderr[-2000:]}")
    (root / ".complete").write_text(" ".join(ALIBI_REQUIREMENTS) + "\n")
    return python


# --- parent --------------------------------------------------------------------------------------

def _run(cmd: list[str], timeout: float, memory_gib: float | None) -> dict[str, Any]:
    def cap() -> None:
        if memory_gib:
            limit = int(memory_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return {"stopped": f"timeout after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        oom = "MemoryError" in done.stderr or "Unable to allocate" in done.stderr or "OOM" in done.stderr or done.returncode == -9
        return {"stopped": ("out of memory: " if oom else "failed: ") + tail[0][:120], "seconds": time.perf_counter() - start}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated ROWSxDIMS per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="driftwatch test repeats (median)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per (method, size)")
    parser.add_argument("--memory-gib", type=float, default=16.0, help="address-space cap per numpy-based method")
    parser.add_argument("--skip", default="", help="comma-separated methods to leave out (e.g. alibi)")
    parser.add_argument("--baseline-max-rows", type=int, default=100_000, help="Evidently/Alibi run up to this many rows")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        data = Path(args.data)
        if args.child == "driftwatch":
            out = child_driftwatch(data, args.repeats)
        elif args.child == "driftwatch-mmd":
            out = child_driftwatch_mmd(data, args.repeats)
        else:
            out = child_evidently(data, args.child.removeprefix("evidently-"))
        print(json.dumps(out))
        return

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(f"embedding drift benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"cap {args.memory_gib:g} GiB address space, {args.timeout:.0f} s per run; shift: {SHIFT_SD} sd in 3 dims")
    print()
    print("| rows × dims (each side) | method | prepare s | test s | unchanged: drift? | 3-dim shift: drift? | peak MiB | note |")
    print("|---|---|---|---|---|---|---|---|")
    for size in (s.strip() for s in args.sizes.split(",") if s.strip()):
        rows, d = (int(v) for v in size.lower().split("x"))
        with tempfile.TemporaryDirectory(prefix="dw-embed-") as tmp:
            make_data(rows, d, args.seed, Path(tmp))
            base = [sys.executable, __file__, "--data", tmp, "--repeats", str(args.repeats), "--child"]
            runs: list[tuple[str, list[str] | None, float | None, str]] = [
                ("driftwatch test", [*base, "driftwatch"], args.memory_gib, "always-on; profile prepared once"),
                ("driftwatch MMD", [*base, "driftwatch-mmd"], args.memory_gib, "2k+2k subsample, 500 permutations"),
            ]
            small = rows <= args.baseline_max_rows
            for method in ("model", "ratio", "distance", "mmd"):
                name = f"evidently {method}"
                if f"evidently-{method}" in skip or "evidently" in skip:
                    continue
                kernel_gib = (2 * rows) ** 2 * 8 / 2**30
                if method == "mmd" and kernel_gib > args.memory_gib:
                    runs.append((name, None, None, f"not started: its kernel matrix alone is {kernel_gib:,.0f} GiB"))
                elif not small:
                    runs.append((name, None, None, f"not run above {args.baseline_max_rows:,} rows"))
                else:
                    runs.append((name, [*base, f"evidently-{method}"], args.memory_gib, ""))
            if "alibi" not in skip:
                kernel_gib = (2 * rows) ** 2 * 4 / 2**30
                if kernel_gib > args.memory_gib:
                    runs.append(("alibi-detect MMDDrift", None, None, f"not started: its kernel matrix alone is {kernel_gib:,.0f} GiB"))
                elif not small:
                    runs.append(("alibi-detect MMDDrift", None, None, f"not run above {args.baseline_max_rows:,} rows"))
                else:
                    script = Path(tmp) / "alibi_runner.py"
                    script.write_text(ALIBI_RUNNER)
                    runs.append(("alibi-detect MMDDrift", [str(alibi_python()), str(script), tmp], None, "TensorFlow backend, 100 permutations"))
            for name, cmd, cap, note in runs:
                if cmd is None:
                    print(f"| {rows:,} × {d} | {name} | | | | | | {note} |")
                    continue
                res = _run(cmd, args.timeout, cap)
                if "stopped" in res:
                    print(f"| {rows:,} × {d} | {name} | | | | | | stopped: {res['stopped']} |", flush=True)
                    continue
                v = res["verdicts"]
                fmt = "{} ({:.3g})"
                print(f"| {rows:,} × {d} | {name} | {res['prep']:.2f} | {res['test']:.2f} | "
                      f"{fmt.format('yes' if v['unchanged'][0] else 'no', v['unchanged'][1])} | "
                      f"{fmt.format('yes' if v['shifted'][0] else 'no', v['shifted'][1])} | {res['peak_mib']:,.0f} | {note} |", flush=True)
    print()
    print(f"load average {os.getloadavg()[0]:.1f} at end; driftwatch test = median of {args.repeats} on the unchanged window; "
          "the others: median of their two runs; values in brackets: p-value (driftwatch, Alibi) or score (Evidently)")


if __name__ == "__main__":
    main()
