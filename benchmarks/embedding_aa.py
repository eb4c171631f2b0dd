"""False-alarm rate of the embedding test on unchanged data, by reference and window size.

    python3 benchmarks/embedding_aa.py                        # the table in docs/drift-methods.md
    python3 benchmarks/embedding_aa.py --sizes 500x100 --windows 500

Data: `tests/monitor/runtime/test_embedding_runtime.py`'s vectors (16 dimensions: correlated, four
skewed, two constant, one sparse). For each reference size x window size, a new reference is drawn
every `--per-reference` windows (the rate then includes the spread between references, as a user
with one reference would meet it), every window is unchanged, and the share of windows flagged at
`--alpha` is printed with the family that flagged them and a binomial 99% interval.
This is a measurement, not a target: docs/drift-methods.md says what it shows.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.drift import embedding
from tests.monitor.runtime.test_embedding_runtime import draw


def rate(reference_rows: int, window_rows: int, windows: int, per_reference: int, alpha: float,
         rng: np.random.Generator) -> tuple[int, Counter[str]]:
    """Windows flagged out of `windows`, and by which family (mean, variance, pca)."""
    flagged: Counter[str] = Counter()
    profile = None
    for i in range(windows):
        if i % per_reference == 0:
            profile = embedding.profile(draw(rng, reference_rows))
        assert profile is not None
        result = embedding.test(profile, draw(rng, window_rows), alpha=alpha)
        if result.drifted:
            flagged[min(result.family_p, key=lambda k: result.family_p[k])] += 1
    return sum(flagged.values()), flagged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500x100,500x400,5000x100,5000x1000",
                        help="reference rows x window rows, comma-separated")
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--per-reference", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"alpha {args.alpha}; {args.windows} unchanged windows per row, a new reference every {args.per_reference}")
    print(f"{'reference x window':>20}  {'flagged':>9}  {'rate':>6}  {'99% interval':>15}  families")
    for size in args.sizes.split(","):
        n, m = (int(v) for v in size.split("x"))
        flags, families = rate(n, m, args.windows, args.per_reference, args.alpha, rng)
        low, high = stats.binomtest(flags, args.windows).proportion_ci(0.99)
        print(f"{size:>20}  {flags:>4}/{args.windows:<4}  {flags / args.windows:>6.1%}  {low:>6.1%} – {high:>5.1%}  "
              f"{dict(families)}", flush=True)


if __name__ == "__main__":
    main()
