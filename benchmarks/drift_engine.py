"""driftwatch's drift engine against Evidently's DataDriftPreset on the same data, side by side.

    python3 benchmarks/drift_engine.py                    # 10k, 100k and 1M rows (Evidently at 1M: minutes)
    python3 benchmarks/drift_engine.py --sizes 10000      # quick run

Data: 20 numeric + 5 categorical columns, reference and current of N rows each; 6 numeric and 2
categorical columns shifted. The comparison runs driftwatch in its `evidently` mode, so both engines
use the same automatic methods (reference > 1000 rows: normed Wasserstein and Jensen-Shannon,
identical definitions); a third row times driftwatch's own defaults (permutation tests with an
effect gate, docs/drift-methods.md) on the same data, whose scores are p-values and not compared. Each (engine, size) runs in a fresh
subprocess so peak memory is its own: the kernel's resident high-water mark is reset after the data
is built (/proc/self/clear_refs) and read after the run. Times are medians over repeats after a
warm-up run on a small slice (Evidently runs once at >= 1M rows). driftwatch's time is
build_profile + evaluate, both also shown alone. Both engines also run on a window of 0.9 N rows
against the same reference: equal sizes let normed Wasserstein take a one-pass shortcut, and real
windows rarely have the reference's exact size, so the speed-up is reported for both windows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_NUMERIC, N_CATEGORICAL = 20, 5
SHIFTED_NUMERIC = {"n00", "n03", "n06", "n09", "n12", "n15"}
SHIFTED_CATEGORICAL = {"c0", "c3"}
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"], dtype=object)


def make_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames of n rows; the shifted columns move by ~0.2-0.5 std or ~15% share."""
    rng = np.random.default_rng(seed)

    def frame(current: bool) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for i in range(N_NUMERIC):
            name = f"n{i:02d}"
            shift = 1.0 if current and name in SHIFTED_NUMERIC else 0.0
            kind = i % 4
            if kind == 0:
                cols[name] = rng.normal(0.3 * shift, 1.0 + 0.2 * shift, n)
            elif kind == 1:
                cols[name] = rng.lognormal(0.3 * shift, 0.8, n)
            elif kind == 2:
                cols[name] = rng.uniform(0.0, 1.0 + 0.5 * shift, n) * 100
            else:
                cols[name] = rng.poisson(40 + 6 * shift, n).astype(np.float64)
        base = np.array([0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04])
        moved = np.array([0.1, 0.2, 0.15, 0.12, 0.1, 0.08, 0.1, 0.15])
        for j in range(N_CATEGORICAL):
            name = f"c{j}"
            shares = moved if current and name in SHIFTED_CATEGORICAL else base
            cols[name] = CATEGORIES[rng.choice(len(CATEGORIES), n, p=shares / shares.sum())]
        return pd.DataFrame(cols)

    return frame(False), frame(True)


def _reset_peak() -> int:
    """Reset the resident high-water mark; returns the current RSS in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_kib("VmRSS") * 1024


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def windows(cur: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The current data at the reference's size and 10% shorter (no equal-size W1 shortcut there)."""
    return {"N": cur, "0.9N": cur.iloc[: int(len(cur) * 0.9)]}


def child_driftwatch(n: int, seed: int, repeats: int, mode: str = "evidently") -> dict[str, Any]:
    from monitor.drift import EngineSettings, build_profile, evaluate, infer_specs

    ref, cur = make_data(n, seed)
    specs = infer_specs(ref, cur)
    settings = EngineSettings(auto=mode)  # type: ignore[arg-type]
    evaluate(build_profile(ref.iloc[:500], specs, settings), cur.iloc[:500])  # warm-up: lazy imports, first-call costs
    base = _reset_peak()
    profile_times: list[float] = []
    evaluate_times: dict[str, list[float]] = {name: [] for name in windows(cur)}
    for _ in range(repeats):
        t0 = time.perf_counter()
        profile = build_profile(ref, specs, settings)
        profile_times.append(time.perf_counter() - t0)
        results = {}
        for name, window in windows(cur).items():
            t1 = time.perf_counter()
            results[name] = evaluate(profile, window)
            evaluate_times[name].append(time.perf_counter() - t1)
    peak = _status_kib("VmHWM") * 1024 - base
    return {
        "profile": statistics.median(profile_times),
        "repeats": repeats,
        "peak_bytes": peak,
        "methods": {name: f.method for name, f in results["N"].features.items()},
        "windows": {
            name: {
                "evaluate": statistics.median(times),
                "total": statistics.median(p + e for p, e in zip(profile_times, times, strict=True)),
                "scores": {col: f.score for col, f in results[name].features.items()},
                "drifted": sorted(f.name for f in results[name].drifted_features()),
            }
            for name, times in evaluate_times.items()
        },
    }


def child_evidently(n: int, seed: int, repeats: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - t0
    ref, cur = make_data(n, seed)
    numeric = [c for c in ref.columns if c.startswith("n")]
    categorical = [c for c in ref.columns if c.startswith("c")]

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> list[dict[str, Any]]:
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition), Dataset.from_pandas(reference, data_definition=definition)
        )
        return snapshot.dict()["metrics"]

    run(ref.iloc[:2000], cur.iloc[:2000])  # warm-up: lazy imports, first-call costs
    base = _reset_peak()
    out: dict[str, Any] = {}
    for name, window in windows(cur).items():
        times = []
        for _ in range(repeats):
            t1 = time.perf_counter()
            metrics = run(ref, window)
            times.append(time.perf_counter() - t1)
        out[name] = {"total": statistics.median(times), **_evidently_verdicts(metrics)}
    peak = _status_kib("VmHWM") * 1024 - base
    return {"repeats": repeats, "import": import_s, "peak_bytes": peak, "windows": out}


def _evidently_verdicts(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    scores, drifted = {}, []
    for m in metrics:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            scores[cfg["column"]] = float(m["value"])
            if float(m["value"]) >= float(cfg["threshold"]):  # distances at this size: drift when >= threshold
                drifted.append(cfg["column"])
    return {"scores": scores, "drifted": sorted(drifted)}


def _run_child(engine: str, n: int, seed: int, repeats: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", engine, "--size", str(n), "--seed", str(seed), "--repeats", str(repeats)]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compare(window: str, ev: dict[str, Any], dw: dict[str, Any], methods: dict[str, str]) -> None:
    """One line per window: speed-up, largest score difference and whether the drifted columns agree."""
    diffs = {c: abs(dw["scores"][c] - ev["scores"][c]) for c in ev["scores"]}
    worst = max(diffs, key=lambda c: diffs[c])
    same = dw["drifted"] == ev["drifted"]
    print(
        f"{'':>9}  window {window:<4}  speed-up {ev['total'] / dw['total']:.0f}x (evaluate alone {ev['total'] / dw['evaluate']:.0f}x); "
        f"largest |score diff| {diffs[worst]:.2e} ({worst}, {methods[worst]}); "
        f"same drifted columns: {'yes' if same else 'NO'} ({len(dw['drifted'])}: {', '.join(dw['drifted'])})"
    )
    if not same:
        print(f"{'':>9}  evidently drifted: {', '.join(ev['drifted'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="driftwatch repeats (median)")
    parser.add_argument("--evidently-repeats", type=int, default=3, help="Evidently repeats below 1M rows (1 at >= 1M)")
    parser.add_argument("--child", choices=["driftwatch", "driftwatch-defaults", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "evidently":
            print(json.dumps(child_evidently(args.size, args.seed, args.repeats)))
        else:
            mode = "driftwatch" if args.child == "driftwatch-defaults" else "evidently"
            print(json.dumps(child_driftwatch(args.size, args.seed, args.repeats, mode)))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"drift engine benchmark: {N_NUMERIC} numeric + {N_CATEGORICAL} categorical columns, N rows per side; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    header = (
        f"{'rows':>9}  {'engine':<10}  {'profile s':>9}  {'evaluate s':>10}  {'eval 0.9N s':>11}  {'total s':>8}  "
        f"{'total 0.9N s':>12}  {'runs':>4}  {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        ev = _run_child("evidently", n, args.seed, args.evidently_repeats if n < 1_000_000 else 1)
        dw = _run_child("driftwatch", n, args.seed, args.repeats)
        defaults = _run_child("driftwatch-defaults", n, args.seed, args.repeats)
        e, d, f = ev["windows"], dw["windows"], defaults["windows"]
        print(
            f"{n:>9,}  {'evidently':<10}  {'':>9}  {'':>10}  {'':>11}  {e['N']['total']:>8.3f}  {e['0.9N']['total']:>12.3f}  "
            f"{ev['repeats']:>4}  {ev['peak_bytes'] / 2**20:>8.1f}"
        )
        print(
            f"{n:>9,}  {'driftwatch':<10}  {dw['profile']:>9.3f}  {d['N']['evaluate']:>10.3f}  {d['0.9N']['evaluate']:>11.3f}  "
            f"{d['N']['total']:>8.3f}  {d['0.9N']['total']:>12.3f}  {dw['repeats']:>4}  {dw['peak_bytes'] / 2**20:>8.1f}"
        )
        print(
            f"{n:>9,}  {'dw default':<10}  {defaults['profile']:>9.3f}  {f['N']['evaluate']:>10.3f}  {f['0.9N']['evaluate']:>11.3f}  "
            f"{f['N']['total']:>8.3f}  {f['0.9N']['total']:>12.3f}  {defaults['repeats']:>4}  {defaults['peak_bytes'] / 2**20:>8.1f}"
            f"  (same drifted columns as Evidently: {'yes' if f['N']['drifted'] == e['N']['drifted'] else 'no'})"
        )
        for window in e:
            _compare(window, e[window], d[window], dw["methods"])
    print("evidently import (not in the times above): "
          f"{ev['import']:.1f} s; times are wall-clock medians, peak = resident high-water mark above the loaded data")


if __name__ == "__main__":
    main()
