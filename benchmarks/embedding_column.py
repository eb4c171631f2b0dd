"""An embedding column through the drift engine beside the raw detector, same data (issue 17).

    python3 benchmarks/embedding_column.py                    # 100k x 768, the numbers in docs/drift-methods.md
    python3 benchmarks/embedding_column.py --rows 10000       # quick run

The raw detector is `monitor.drift.embedding.test(profile, matrix)` on a float32 matrix. The engine
path is what the monitor and `driftwatch drift` run: `build_profile` on a frame whose column holds the
vectors, then `evaluate(profile, window_frame)`, which turns the column into a matrix
(`monitor.drift.vectors.vector_values`: length and finiteness checks, missing and wrong values
counted), runs the same test and builds the column's result with the window's multiple-testing
correction. The window's column comes in two forms: one float32 array per row (what the monitor's
records hold: ingest keeps each checked vector as float32, and a Parquet list column) and one Python
list of floats per row (a frame built by hand, or a CSV's JSON lists once parsed).
Data: Gaussian rows with a decaying spectrum (benchmarks/embedding_drift.py's `make_data`), the window
unchanged. Each timing is the median of `--repeats` runs; the profile is prepared once per path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.embedding_drift import make_data
from monitor.drift import ColumnSpec, build_profile, embedding, evaluate


def _median(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-lists", action="store_true", help="skip the window of Python lists (~3 GB at 100k x 768)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_data(args.rows, args.dims, 0, Path(tmp))
        ref, window = np.load(Path(tmp) / "reference.npy"), np.load(Path(tmp) / "unchanged.npy")
    spec = [ColumnSpec("vec", "embedding", dimensions=args.dims)]
    embedding.test(embedding.profile(ref[:2000]), window[:2000])  # warm-up: imports, thread pool

    t0 = time.perf_counter()
    raw_profile = embedding.profile(ref)
    raw_prep = time.perf_counter() - t0
    raw = _median(lambda: embedding.test(raw_profile, window), args.repeats)

    t0 = time.perf_counter()
    col_profile = build_profile(pd.DataFrame({"vec": list(ref)}), spec)
    col_prep = time.perf_counter() - t0
    arrays = pd.DataFrame({"vec": list(window)})
    col_arrays = _median(lambda: evaluate(col_profile, arrays), args.repeats)
    p_raw = embedding.test(raw_profile, window).p_value
    p_col = evaluate(col_profile, arrays).features["vec"].p_value

    print(f"{args.rows} x {args.dims}, float32, 2 cores, load {os.getloadavg()[0]:.1f}; median of {args.repeats}")
    print(f"{'path':<52} {'seconds':>8}")
    print(f"{'profile: embedding.profile (raw)':<52} {raw_prep:>8.2f}")
    print(f"{'profile: build_profile (column of arrays)':<52} {col_prep:>8.2f}")
    print(f"{'window: embedding.test (raw matrix)':<52} {raw:>8.2f}")
    print(f"{'window: evaluate, float32 arrays (monitor records)':<52} {col_arrays:>8.2f}")
    if not args.no_lists:
        lists = pd.DataFrame({"vec": window.tolist()})
        col_lists = _median(lambda: evaluate(col_profile, lists), args.repeats)
        print(f"{'window: evaluate, Python lists of floats':<52} {col_lists:>8.2f}")
    print(f"same p-value on both paths: {p_raw == p_col} ({p_raw:.4g})")


if __name__ == "__main__":
    main()
